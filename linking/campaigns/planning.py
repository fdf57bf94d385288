"""Who gets a campaign's email: the audience, planned into delivery rows in batches.

The audience is one set-based query (anti-joins, no sub-query per account), read
through one cursor, so planning costs the same however many accounts are linked.
Planning twice is harmless: one delivery per (campaign, step, legacy account).
"""

from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from linking.campaigns.models import Campaign, CampaignStep, Delivery, Suppression
from linking.marketing import marketing_allowed
from linking.models import Language, LegacyAccount

BATCH = 2000


def audience(campaign: Campaign) -> QuerySet[LegacyAccount]:
    """Unlinked legacy accounts of the target services with an email, not suppressed,
    not refusing marketing mail (where the record says, or where a unified ID with
    the same address said no to marketing email), within the filters."""
    accounts = (
        LegacyAccount.objects.filter(
            service__in=campaign.services.all(), owner__isnull=True, linked_at__isnull=True
        )
        .exclude(email_key="")
        .filter(
            Q(attributes__marketing_consent__isnull=True) | ~Q(attributes__marketing_consent=False)
        )
        .filter(~Exists(Suppression.objects.filter(email_key=OuterRef("email_key"))))
        .filter(marketing_allowed(OuterRef("email_key")))
    )
    if campaign.accounts.exists():
        accounts = accounts.filter(pk__in=campaign.accounts.values("pk"))
    if campaign.min_points is not None:
        accounts = accounts.filter(points__gte=campaign.min_points)
    if campaign.active_since is not None:
        accounts = accounts.filter(attributes__last_active__gte=campaign.active_since.isoformat())
    return accounts


def recipients(campaign: Campaign, step: int) -> QuerySet[LegacyAccount]:
    """Step 0: the audience. A reminder: those of the audience the first email
    reached who are still unlinked."""
    accounts = audience(campaign)
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


def plan_step(*, campaign: Campaign, number: int) -> int:
    """Create the deliveries of one step; returns how many rows were offered."""
    step = CampaignStep.objects.get(campaign=campaign, number=number)
    rows = recipients(campaign, number).values_list(
        "pk", "email", "email_key", "attributes__language", "service__default_language"
    )
    offered, batch = 0, []
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # Read whole through one cursor: plan for every row, not for a cursor's
            # first tenth (that fast-start plan probes indexes per account: minutes).
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL cursor_tuple_fraction = 1.0")
        for pk, email, email_key, language, default_language in rows.iterator(chunk_size=BATCH):
            language = language if language in Language.values else default_language
            batch.append(
                Delivery(
                    campaign=campaign,
                    step=number,
                    account_id=pk,
                    email=email,
                    email_key=email_key,
                    language=language,
                )
            )
            if len(batch) >= BATCH:
                offered += _insert(batch)
                batch = []
        offered += _insert(batch)
    CampaignStep.objects.filter(pk=step.pk, planned_at__isnull=True).update(
        planned_at=timezone.now()
    )
    return offered


def _insert(batch: list[Delivery]) -> int:
    if batch:
        Delivery.objects.bulk_create(batch, ignore_conflicts=True)
    return len(batch)
