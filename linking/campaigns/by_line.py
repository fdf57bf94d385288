"""LINE as a campaign channel: who can be reached there, and what the message says.

Reachable: a LINE user ID on the legacy record, a friend of the Official Account now
(follow/unfollow webhooks, linking.line), and not opted out: the record's own "no",
an unsubscribe or complaint from its email address (a bounce says nothing about
LINE), or a unified ID that said no to marketing (on that address or bound to that
LINE user). Pushing is in sending.py.
"""

from django.db.models import Exists, OuterRef, Q
from django.utils import translation
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext as _

from linking.campaigns.content import fill, link_url, wanted_language
from linking.campaigns.models import Campaign, Delivery, Suppression
from linking.line import client
from linking.line.models import LineFriend
from linking.marketing import marketing_allowed
from linking.models import Language, LegacyAccount

_LINK_SALT = "linking.campaigns.by_line.link"


def reachable() -> Q:
    """On a row with line_user_id and email_key (a legacy account, or a delivery):
    may get a LINE message now."""
    friend = LineFriend.objects.filter(line_user_id=OuterRef("line_user_id"), is_friend=True)
    consenting = friend.filter(Q(customer__isnull=True) | Q(customer__marketing_email_consent=True))
    refused = Suppression.objects.filter(email_key=OuterRef("email_key")).exclude(
        reason=Suppression.Reason.BOUNCED
    )
    by_address = Q(email_key="") | (~Q(Exists(refused)) & marketing_allowed(OuterRef("email_key")))
    return ~Q(line_user_id="") & Q(Exists(consenting)) & by_address


def friend_now() -> Q:
    """On a row with line_user_id: a friend of the Official Account now."""
    return Q(
        Exists(LineFriend.objects.filter(line_user_id=OuterRef("line_user_id"), is_friend=True))
    )


def retry_key(delivery: Delivery) -> str:
    """The X-Line-Retry-Key of a delivery: the same for every try, so LINE delivers
    it once however often a crashed sender's successor pushes it again."""
    return client.retry_key("campaign", delivery.campaign_id, delivery.step, delivery.account_id)


def link_token(delivery: Delivery) -> str:
    """The personal link's token, derived from the delivery (keyed with SECRET_KEY):
    a push retried after a crash carries the same link as the one LINE may already
    have delivered, so that link keeps working. Only its hash is stored."""
    return salted_hmac(_LINK_SALT, str(delivery.pk), algorithm="sha256").hexdigest()


def language_for(account: LegacyAccount, campaign: Campaign) -> str:
    """The language of the account's LINE message: the one it wants, Japanese when
    the campaign has no English LINE text."""
    if wanted_language(account) == Language.EN and campaign.line_text_en:
        return Language.EN
    return Language.JA


def text(
    campaign: Campaign, account: LegacyAccount, *, link: str, language: str | None = None
) -> str:
    """The LINE message to one legacy account, in its language unless one is given."""
    language = language or language_for(account, campaign)
    template = campaign.line_text_en if language == Language.EN else campaign.line_text_ja
    service = account.service
    with translation.override(language):
        values = {
            "name": account.name or _("customer"),
            "service": service.name,
            "member_number": account.masked_external_id,
            "incentive": service.incentive,
            "link": link,
            "service_link": service.link_page_url or link,
        }
    return fill(template, values)


def message(campaign: Campaign, delivery: Delivery) -> str:
    """The LINE message of one delivery, with its personal link."""
    return text(campaign, delivery.account, link=link_url(link_token(delivery)))
