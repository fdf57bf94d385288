"""Reads about campaigns: progress counts and conversions."""

from datetime import timedelta

from django.db.models import Count, Exists, OuterRef, Q

from linking.campaigns import planning
from linking.campaigns.models import Campaign, Delivery
from linking.models import LegacyAccount, LegacyService, LinkEvent, Proof

S = Delivery.Status


def progress(campaign: Campaign) -> dict[str, int]:
    """Counts for staff: planned, by status, and the funnel. "linked_otherwise" is
    accounts the campaign reached that were linked some other way within the
    attribution window; "linked" counts only links through the campaign's link;
    "unconfirmed" were handed to the mail server but its answer was never recorded
    (a sender died, or the database was away): they may not have arrived, and are
    never sent again."""
    counts = Delivery.objects.filter(campaign=campaign).aggregate(
        planned=Count("pk"),
        pending=Count("pk", filter=Q(status=S.PENDING)),
        leased=Count("pk", filter=Q(status=S.LEASED)),
        sending=Count("pk", filter=Q(status=S.SENDING)),
        sent=Count("pk", filter=Q(status=S.SENT)),
        unconfirmed=Count("pk", filter=Q(status=S.UNCONFIRMED)),
        failed=Count("pk", filter=Q(status=S.FAILED)),
        skipped=Count("pk", filter=Q(status=S.SKIPPED)),
        cancelled=Count("pk", filter=Q(status=S.CANCELLED)),
        clicked=Count("pk", filter=Q(clicked_at__isnull=False)),
        linked=Count("pk", filter=Q(linked_at__isnull=False)),
        unsubscribed=Count("pk", filter=Q(unsubscribed_at__isnull=False)),
        bounced=Count("pk", filter=Q(bounced_at__isnull=False)),
    )
    counts["linked_otherwise"] = linked_otherwise(campaign)
    return counts


def funnel_by_channel(campaign: Campaign) -> dict[str, dict[str, int]]:
    """Reached (sent, or handed over and unconfirmed) -> clicked -> linked through the
    campaign's link, per channel a delivery went by (one query)."""
    rows = (
        Delivery.objects.filter(campaign=campaign)
        .values("channel")
        .annotate(
            reached=Count("pk", filter=Q(status__in=Delivery.REACHED)),
            clicked=Count("pk", filter=Q(clicked_at__isnull=False)),
            linked=Count("pk", filter=Q(linked_at__isnull=False)),
        )
        .order_by("channel")
    )
    return {row.pop("channel"): row for row in rows}


def linked_otherwise(campaign: Campaign) -> int:
    window = timedelta(days=campaign.attribution_days)
    other_link = LinkEvent.objects.filter(
        account=OuterRef("account"),
        action=LinkEvent.Action.LINK,
        created_at__gte=OuterRef("sent_at"),
        created_at__lte=OuterRef("sent_at") + window,
    ).exclude(proof=Proof.CAMPAIGN, campaign_id=campaign.pk)
    return (
        Delivery.objects.filter(campaign=campaign, status__in=Delivery.REACHED)
        .filter(Exists(other_link))
        .values("account")
        .distinct()
        .count()
    )


def sample_account(campaign: Campaign) -> LegacyAccount:
    """Someone to preview the email with: the first of the audience, else a made-up
    member of the first target service."""
    account = planning.audience(campaign).select_related("service").order_by("pk").first()
    if account is not None:
        return account
    service = campaign.services.first() or LegacyService(name_ja="サービス", name_en="Service")
    return LegacyAccount(service=service, external_id="00001234", name="山田 花子")
