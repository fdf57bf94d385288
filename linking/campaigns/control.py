"""Starting, pausing, resuming and cancelling campaigns, and beat's tick.

Status changes are conditional UPDATEs, so a pause racing a start never leaves a
campaign in a state nobody chose. Senders read the status before every chunk: a
pause or cancel stops sending within one chunk.
"""

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from linking.campaigns import sending, tasks
from linking.campaigns.models import Campaign, CampaignStep, Delivery

Status = Campaign.Status


class NotAllowed(Exception):
    """The campaign's status does not allow this action."""


def start(campaign: Campaign) -> None:
    """Draft to scheduled (start_at in the future) or to sending right away."""
    CampaignStep.objects.get_or_create(campaign=campaign, number=0, defaults={"days_after": 0})
    with transaction.atomic():
        if not Campaign.objects.filter(pk=campaign.pk, status=Status.DRAFT).update(
            status=Status.SCHEDULED
        ):
            raise NotAllowed
    if campaign.start_at <= timezone.now():
        _begin(campaign.pk)
    campaign.refresh_from_db()


def pause(campaign: Campaign) -> None:
    if not Campaign.objects.filter(
        pk=campaign.pk, status__in=[Status.SCHEDULED, Status.SENDING]
    ).update(status=Status.PAUSED):
        raise NotAllowed
    campaign.refresh_from_db()


def resume(campaign: Campaign) -> None:
    """Back to sending (or to scheduled, if it was paused before it started)."""
    with transaction.atomic():
        row = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if row.status != Status.PAUSED:
            raise NotAllowed
        status = Status.SENDING if row.started_at else Status.SCHEDULED
        Campaign.objects.filter(pk=campaign.pk).update(status=status)
        if status == Status.SENDING:
            tasks.start_senders(campaign.pk)
    campaign.refresh_from_db()


def cancel(campaign: Campaign) -> None:
    with transaction.atomic():
        if not Campaign.objects.filter(
            pk=campaign.pk,
            status__in=[Status.DRAFT, Status.SCHEDULED, Status.SENDING, Status.PAUSED],
        ).update(status=Status.CANCELLED, finished_at=timezone.now()):
            raise NotAllowed
        # Leased ones too: a sender's hand-over then finds them gone.
        Delivery.objects.filter(
            campaign=campaign, status__in=[Delivery.Status.PENDING, Delivery.Status.LEASED]
        ).update(status=Delivery.Status.CANCELLED)
    campaign.refresh_from_db()


@shared_task(name="campaigns.tick")
def tick() -> None:
    """Beat, every CAMPAIGN_TICK_SECONDS: start campaigns whose time has come, plan
    reminder steps that are due, restart senders of a campaign whose senders all
    stopped while work is waiting (a killed worker), finish campaigns."""
    now = timezone.now()
    for pk in Campaign.objects.filter(status=Status.SCHEDULED, start_at__lte=now).values_list(
        "pk", flat=True
    ):
        _begin(pk)
    # Senders stop for a paused or cancelled campaign: settle what a dead one left
    # (a paused campaign's LINE pushes are tried again with their keys on resume).
    sending.expire_handed_over(Delivery.objects.filter(campaign__status=Status.PAUSED), now)
    sending.expire_handed_over(
        Delivery.objects.filter(campaign__status=Status.CANCELLED), now, stopped=True
    )
    stale = now - timedelta(seconds=settings.CAMPAIGN_LEASE_SECONDS)
    for campaign in Campaign.objects.filter(status=Status.SENDING, started_at__isnull=False):
        stalled = campaign.senders_seen_at is None or campaign.senders_seen_at < stale
        for step in campaign.steps.filter(planned_at__isnull=True):
            # Step 0 is planned when the campaign begins; again only if that stalled.
            if step.due_at(campaign.started_at) <= now and (step.number > 0 or stalled):
                _plan(campaign.pk, step.number)
        if stalled:
            if _work_waiting(campaign.pk, now):
                tasks.start_senders(campaign.pk)
            else:
                sending.finish_if_done(campaign.pk)


def _begin(campaign_id: int) -> None:
    now = timezone.now()
    with transaction.atomic():
        if Campaign.objects.filter(pk=campaign_id, status=Status.SCHEDULED).update(
            status=Status.SENDING, started_at=now, senders_seen_at=now
        ):
            _plan(campaign_id, 0)


def _plan(campaign_id: int, number: int) -> None:
    transaction.on_commit(lambda: tasks.plan.delay(campaign_id, number))


def _work_waiting(campaign_id: int, now) -> bool:
    """Work for a sender: deliveries due, or leases that ran out (leased ones are
    taken again, handed-over ones turn unconfirmed)."""
    return Delivery.objects.filter(
        Q(status=Delivery.Status.PENDING, not_before__lte=now)
        | Q(status__in=[Delivery.Status.LEASED, Delivery.Status.SENDING], lease_until__lt=now),
        campaign_id=campaign_id,
    ).exists()
