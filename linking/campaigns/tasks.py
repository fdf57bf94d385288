"""Celery tasks: thin wrappers around the campaign services, and how senders start
(beat's campaigns.tick is linking.campaigns.control.tick). Acknowledged late
(settings), so a task whose worker died runs again; every service here is safe to
run twice."""

import time

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from limits.errors import StorageError

from accounts import availability
from linking.campaigns import planning, sending
from linking.campaigns.models import Campaign

MAX_MAIL_RETRIES = 10
MAX_DATABASE_RETRIES = 10
RUN_SECONDS = 5


@shared_task(name="campaigns.plan")
def plan(campaign_id: int, step: int) -> None:
    campaign = Campaign.objects.filter(pk=campaign_id, status=Campaign.Status.SENDING).first()
    if campaign is None:
        return
    planning.plan_step(campaign=campaign, number=step)
    start_senders(campaign_id)


@shared_task(name="campaigns.send", bind=True)
def send(self, campaign_id: int) -> int:
    """Chunk after chunk for a few seconds (the status is read before each one); then
    this sender's next run is queued, so no task runs long and a lost one is cheap."""
    deadline = time.monotonic() + RUN_SECONDS
    sent = 0
    mails = sending.connections()  # for every chunk of this run
    try:
        while True:
            try:
                run = sending.send_chunk(campaign_id, mails)
            except sending.MailServerUnavailable as exc:
                # Trouble with the mail server: back off 5 s, 10 s, 20 s ... 10 min.
                countdown = min(600, 5 * 2**self.request.retries)
                raise self.retry(
                    exc=exc, countdown=countdown, max_retries=MAX_MAIL_RETRIES
                ) from exc
            except (OperationalError, InterfaceError, StorageError) as exc:
                # The database or the rate's storage (Redis) went away (a restart, a
                # failover): this sender comes back 2 s, 4 s ... 1 min later instead
                # of waiting for beat to notice that every sender stopped. What it had
                # handed over stays so, and turns unconfirmed when the lease ends:
                # never sent again. (A storage's own error, e.g. Redis out of memory,
                # is raised.)
                if isinstance(exc, StorageError) and not availability.is_away(exc):
                    raise
                countdown = min(60, 2 * 2**self.request.retries)
                raise self.retry(
                    exc=exc, countdown=countdown, max_retries=MAX_DATABASE_RETRIES
                ) from exc
            sent += run.sent
            if not run.keep_sending or run.wait_seconds or time.monotonic() > deadline:
                break
    finally:
        sending.close(mails)
    if run.keep_sending:
        send.apply_async((campaign_id,), countdown=run.wait_seconds or None)
    return sent


def start_senders(campaign_id: int, senders: int | None = None) -> None:
    """Start senders for the campaign once the current transaction commits."""
    count = senders or settings.CAMPAIGN_SENDERS
    transaction.on_commit(lambda: [send.delay(campaign_id) for _ in range(count)])
