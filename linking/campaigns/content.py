"""What a campaign email says: placeholders filled for one legacy account, in its
language, with the sender footer, built as one EmailMultiAlternatives (text and
HTML) with the headers mailbox providers expect (Message-ID, List-Unsubscribe and
List-Unsubscribe-Post, RFC 8058)."""

import re
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation
from django.utils.html import escape, linebreaks, urlize
from django.utils.translation import gettext as _

from linking.campaigns.models import Campaign, Delivery
from linking.models import Language, LegacyAccount

PLACEHOLDERS = ("name", "service", "member_number", "incentive", "link", "service_link")
_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")
_UNSUBSCRIBE_SALT = "campaigns.unsubscribe"


def placeholders(template: str) -> set[str]:
    return set(_PLACEHOLDER.findall(template))


def unknown_placeholders(template: str) -> list[str]:
    return sorted({name for name in _PLACEHOLDER.findall(template) if name not in PLACEHOLDERS})


def fill(template: str, values: dict[str, str], *, html: bool = False) -> str:
    """Replace {{ name }}-style placeholders. Staff text is never run as a Django
    template; values are escaped in HTML."""

    def value(match: re.Match) -> str:
        if match[1] not in values:
            return match[0]
        return escape(values[match[1]]) if html else values[match[1]]

    return _PLACEHOLDER.sub(value, template)


def wanted_language(account: LegacyAccount) -> str:
    """The record's own language if it has one, else its service's default."""
    return (account.attributes or {}).get("language") or account.service.default_language


def language_for(account: LegacyAccount, campaign: Campaign) -> str:
    """The language of the account's email: the one it wants, Japanese when the
    campaign has no English email."""
    if wanted_language(account) == Language.EN and campaign.subject_en and campaign.text_en:
        return Language.EN
    return Language.JA


def site_host() -> str:
    return urlsplit(settings.SITE_URL).hostname or "localhost"


def message_id(delivery: Delivery) -> str:
    """Stable per delivery: a resend of the same delivery carries the same ID."""
    return f"<campaign.{delivery.campaign_id}.{delivery.step}.{delivery.pk}@{site_host()}>"


def unsubscribe_code(delivery_id: int) -> str:
    return signing.Signer(salt=_UNSUBSCRIBE_SALT).sign(str(delivery_id))


def delivery_id_from_unsubscribe_code(code: str) -> int | None:
    try:
        return int(signing.Signer(salt=_UNSUBSCRIBE_SALT).unsign(code))
    except (signing.BadSignature, ValueError):
        return None


def unsubscribe_mailto() -> str:
    return settings.CAMPAIGN_UNSUBSCRIBE_MAILTO or f"unsubscribe@{site_host()}"


def link_url(token: str) -> str:
    """The personal link carrying `token` (the campaign's landing page)."""
    return settings.SITE_URL + reverse("campaigns:landing", args=[token])


@dataclass
class Rendered:
    subject: str
    text: str
    html: str
    language: str


# Personal values go in after rendering, in place of these markers, so the templates,
# escaping, urlize and line breaks run once per step, language and service (most of
# a sender's CPU otherwise); in HTML they are escaped, and a name never becomes a link.
_MARKS = {
    "name": "zq0name0qz",
    "member_number": "zq0member0qz",
    "link": "https://zq0link0qz.invalid/",
    "unsubscribe_url": "https://zq0unsubscribe0qz.invalid/",
}
_MARK = re.compile("|".join(re.escape(mark) for mark in _MARKS.values()))
_BY_MARK = {mark: name for name, mark in _MARKS.items()}


class Renderer:
    """What one campaign's emails say; keep one for a chunk of emails."""

    def __init__(self, campaign: Campaign) -> None:
        self.campaign = campaign
        self._frames: dict[tuple, Rendered] = {}
        # URLs reversed once, split where the token or code goes (neither needs quoting).
        landing = settings.SITE_URL + reverse("campaigns:landing", args=["-"])
        unsubscribe = settings.SITE_URL + reverse("campaigns:unsubscribe", args=["-"])
        self._landing = landing.rpartition("-")[::2]
        self._unsubscribe = unsubscribe.rpartition("-")[::2]

    def link(self, token: str) -> str:
        return token.join(self._landing)

    def unsubscribe_url(self, code: str) -> str:
        return code.join(self._unsubscribe)

    def render(
        self,
        account: LegacyAccount,
        *,
        step: int,
        link: str,
        unsubscribe_url: str,
        language: str | None = None,
    ) -> Rendered:
        """The subject and bodies for one account, in its language unless one is given."""
        language = language or language_for(account, self.campaign)
        service = account.service
        key = (step, language, service.pk, service.name_ja, service.name_en)
        with translation.override(language):
            frame = self._frames.get(key)
            if frame is None:
                values = {**_MARKS, "service": service.name, "incentive": service.incentive}
                # The service's own page with its link button, where it has one.
                values["service_link"] = service.link_page_url or _MARKS["link"]
                frame = _render(self.campaign, language, step, values)
                self._frames[key] = frame
            personal = {
                "name": account.name or _("customer"),
                "member_number": account.masked_external_id,
                "link": link,
                "unsubscribe_url": unsubscribe_url,
            }
        one_line = {name: " ".join(value.split()) for name, value in personal.items()}
        escaped = {name: escape(value) for name, value in personal.items()}
        return Rendered(
            subject=_put(frame.subject, one_line),
            text=_put(frame.text, personal),
            html=_put(frame.html, escaped),
            language=language,
        )


def _put(rendered: str, values: dict[str, str]) -> str:
    return _MARK.sub(lambda match: values[_BY_MARK[match[0]]], rendered)


def render(
    campaign: Campaign,
    account: LegacyAccount,
    *,
    step: int,
    link: str,
    unsubscribe_url: str,
    language: str | None = None,
) -> Rendered:
    """One email's subject and bodies (a preview, a test send)."""
    return Renderer(campaign).render(
        account, step=step, link=link, unsubscribe_url=unsubscribe_url, language=language
    )


def _render(campaign: Campaign, language: str, step: int, values: dict[str, str]) -> Rendered:
    """One frame with markers for the personal values; the caller has activated `language`."""
    if language == Language.EN:
        subject, text, html = campaign.subject_en, campaign.text_en, campaign.html_en
    else:
        subject, text, html = campaign.subject_ja, campaign.text_ja, campaign.html_ja
    subject = fill(subject, values).replace("\n", " ").strip()
    if step > 0:
        subject = _("Reminder: %(subject)s") % {"subject": subject}
    footer = {"campaign": campaign, "unsubscribe_url": _MARKS["unsubscribe_url"]}
    text_body = fill(text, values) + "\n\n" + render_to_string("campaigns/email/footer.txt", footer)
    html_content = (
        fill(html, values, html=True) if html else linebreaks(urlize(escape(fill(text, values))))
    )
    html_body = render_to_string(
        "campaigns/email/message.html",
        {**footer, "content": html_content, "subject": subject, "language": language},
    )
    return Rendered(subject=subject, text=text_body, html=html_body, language=language)


def build_message(
    campaign: Campaign,
    delivery: Delivery,
    account: LegacyAccount,
    *,
    token: str,
    renderer: Renderer | None = None,
) -> EmailMultiAlternatives:
    """The email of one delivery, with its personal link (the raw token, which only
    this message ever carries)."""
    renderer = renderer or Renderer(campaign)
    code = unsubscribe_code(delivery.pk)
    unsubscribe_url = renderer.unsubscribe_url(code)
    rendered = renderer.render(
        account, step=delivery.step, link=renderer.link(token), unsubscribe_url=unsubscribe_url
    )
    mailto = f"mailto:{unsubscribe_mailto()}?subject={quote('unsubscribe ' + code)}"
    message = EmailMultiAlternatives(
        subject=rendered.subject,
        body=rendered.text,
        from_email=campaign.from_email or settings.DEFAULT_FROM_EMAIL,
        to=[delivery.email],
        headers={
            "Message-ID": message_id(delivery),
            "List-Unsubscribe": f"<{unsubscribe_url}>, <{mailto}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "Content-Language": rendered.language,
        },
    )
    message.attach_alternative(rendered.html, "text/html")
    # Sent through an email service (anymail), its bounce reports name the delivery.
    message.metadata = {"delivery": str(delivery.pk)}
    return message
