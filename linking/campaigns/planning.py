"""Who gets a campaign's message, and by which channel: the audience, planned into
delivery rows in batches.

The audience is one set-based query (anti-joins, no sub-query per account), read
through one cursor, so planning costs the same however many accounts are linked.
Planning twice is harmless: one delivery per (campaign, step, legacy account).
"""

from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from linking.campaigns import by_line
from linking.campaigns.models import Campaign, CampaignStep, Channel, Delivery, Suppression
from linking.marketing import marketing_allowed
from linking.models import Language, LegacyAccount

BATCH = 2000
Channels = CampaignStep.Channels


def audience(campaign: Campaign, *, channel: str = Channels.EMAIL) -> QuerySet[LegacyAccount]:
    """Unlinked legacy accounts of the target services, not refusing marketing where
    the record says so, within the filters, reachable by the step's channel: by
    email, an address not suppressed and whose unified ID (if any) did not say no to
    marketing email; by LINE, see by_line.reachable; LINE then email, either."""
    accounts = LegacyAccount.objects.filter(
        service__in=campaign.services.all(), owner__isnull=True, linked_at__isnull=True
    ).filter(
        Q(attributes__marketing_consent__isnull=True) | ~Q(attributes__marketing_consent=False)
    )
    if channel == Channels.EMAIL:
        accounts = accounts.exclude(email_key="").filter(_by_email())
    elif channel == Channels.LINE:
        accounts = accounts.filter(by_line.reachable())
    else:
        accounts = accounts.filter(by_line.reachable() | ~Q(email_key="") & _by_email())
    if campaign.accounts.exists():
        accounts = accounts.filter(pk__in=campaign.accounts.values("pk"))
    if campaign.min_points is not None:
        accounts = accounts.filter(points__gte=campaign.min_points)
    if campaign.active_since is not None:
        accounts = accounts.filter(attributes__last_active__gte=campaign.active_since.isoformat())
    return accounts


def _by_email() -> Q:
    return ~Q(Exists(Suppression.objects.filter(email_key=OuterRef("email_key")))) & (
        marketing_allowed(OuterRef("email_key"))
    )


def recipients(
    campaign: Campaign, step: int, *, channel: str = Channels.EMAIL
) -> QuerySet[LegacyAccount]:
    """Step 0: the audience. A reminder: those of the audience the first message
    reached who are still unlinked."""
    accounts = audience(campaign, channel=channel)
    if step > 0:
        accounts = accounts.filter(
            Exists(
                Delivery.objects.filter(
                    campaign=campaign,
                    step=0,
                    account=OuterRef("pk"),
                    status__in=Delivery.REACHED,
                    unsubscribed_at__isnull=True,
                    bounced_at__isnull=True,
                )
            )
        )
    return accounts


# A step's channel, planned as the channels of its deliveries: LINE then email plans
# LINE first, then email for the rest (one delivery per account: the second pass
# skips those the first planned).
_PASSES = {
    Channels.EMAIL: (Channel.EMAIL,),
    Channels.LINE: (Channel.LINE,),
    Channels.LINE_THEN_EMAIL: (Channel.LINE, Channel.EMAIL),
}


def plan_step(*, campaign: Campaign, number: int) -> int:
    """Create the deliveries of one step; returns how many rows were offered."""
    step = CampaignStep.objects.get(campaign=campaign, number=number)
    offered = 0
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # Read whole through one cursor: plan for every row, not for a cursor's
            # first tenth (that fast-start plan probes indexes per account: minutes).
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL cursor_tuple_fraction = 1.0")
        for channel in _PASSES[step.channel]:
            offered += _plan(campaign, number, channel)
    CampaignStep.objects.filter(pk=step.pk, planned_at__isnull=True).update(
        planned_at=timezone.now()
    )
    return offered


def _plan(campaign: Campaign, number: int, channel: str) -> int:
    rows = recipients(
        campaign, number, channel=Channels.LINE if channel == Channel.LINE else Channels.EMAIL
    ).values_list(
        "pk",
        "email",
        "email_key",
        "line_user_id",
        "attributes__language",
        "service__default_language",
    )
    offered, batch = 0, []
    for pk, email, email_key, line_user_id, language, default_language in rows.iterator(
        chunk_size=BATCH
    ):
        language = language if language in Language.values else default_language
        batch.append(
            Delivery(
                campaign=campaign,
                step=number,
                account_id=pk,
                channel=channel,
                email=email,
                email_key=email_key,
                line_user_id=line_user_id if channel == Channel.LINE else "",
                language=language,
            )
        )
        if len(batch) >= BATCH:
            offered += _insert(batch)
            batch = []
    return offered + _insert(batch)


def _insert(batch: list[Delivery]) -> int:
    if batch:
        Delivery.objects.bulk_create(batch, ignore_conflicts=True)
    return len(batch)
