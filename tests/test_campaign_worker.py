"""Campaigns sent by a real Celery worker process (the configured broker: the file
system by default, Redis in CI) into a real local SMTP server: every address gets
its email exactly once, also when the worker is killed; unsubscribing and pausing
take effect while the campaign runs."""

import time

from django.conf import settings
from django.db import connection
from django.test import Client
from django.urls import reverse

from linking.campaigns import content, control, together
from linking.campaigns.models import Campaign, Delivery
from linking.models import LegacyAccount
from tests.campaign_support import SmtpSink, Worker, wait_until

pytest_plugins = ["tests.fixtures.campaigns"]


def _accounts(service, count: int) -> list[str]:
    emails = [f"member{number:04d}@example.jp" for number in range(count)]
    LegacyAccount.objects.bulk_create(
        LegacyAccount(service=service, external_id=f"S{number:07d}", email=email, email_key=email)
        for number, email in enumerate(emails)
    )
    return emails


def _sent() -> int:
    return Delivery.objects.filter(status="sent").count()


def _status(campaign: Campaign) -> str:
    campaign.refresh_from_db()
    return campaign.status


def test_a_campaign_reaches_a_few_hundred_addresses_exactly_once(
    worker: Worker, smtp_sink: SmtpSink, make_campaign, service
):
    emails = _accounts(service, 300)
    campaign = make_campaign()
    worker.start()

    control.start(campaign)

    wait_until(lambda: _status(campaign) == "finished", what="the campaign to finish")
    assert smtp_sink.recipients() == dict.fromkeys(emails, 1)
    assert len(smtp_sink.message_ids()) == 300
    assert Delivery.objects.filter(campaign=campaign, status="sent").count() == 300
    assert not Delivery.objects.filter(confirmed_at__isnull=True).exists()


def test_a_worker_killed_mid_campaign_and_restarted_sends_each_email_once(
    worker: Worker, smtp_sink: SmtpSink, make_campaign, service
):
    emails = _accounts(service, 300)
    campaign = make_campaign()
    worker.start()
    control.start(campaign)
    wait_until(lambda: smtp_sink.count() >= 60, what="the first emails")

    worker.kill()
    assert smtp_sink.count() < 300, "the worker finished before it could be killed"
    stranded = Delivery.objects.filter(status__in=["pending", "sending"]).count()
    # Beat notices the senders are gone once their leases run out and starts new ones.
    worker.start(beat=True)

    wait_until(lambda: _status(campaign) == "finished", what="the campaign to finish")
    assert stranded > 0
    received = smtp_sink.recipients()
    missing = sorted(set(emails) - set(received))
    twice = sorted(address for address, count in received.items() if count > 1)
    assert twice == [], worker.log()[-3000:]
    assert max(smtp_sink.message_ids().values()) == 1
    assert _sent() == 300
    if connection.vendor == "postgresql":
        # A batch's COMMIT and its "."s leave in one system call (commit_point.py):
        # wherever the kill landed, nothing was lost.
        assert together.available(), "exactly once under SIGKILL needs io_uring"
        assert missing == [], (missing, worker.log()[-3000:])
    else:
        # SQLite commits before the "."s: a kill in between loses that batch's emails
        # still waiting for their "." (never sends them twice), at most one batch per
        # sender process killed (docs/operations.md).
        assert _lost_batches(missing) <= Worker.CONCURRENCY, (missing, worker.log()[-3000:])


def _lost_batches(missing: list[str]) -> int:
    """How many batches the missing emails came from; fails unless each was committed
    "sent" by a killed sender inside one batch of its claim."""
    lost = Delivery.objects.filter(email__in=missing)
    assert sorted(lost.values_list("email", flat=True)) == missing
    assert set(lost.values_list("status", flat=True)) <= {"sent"}
    # ... and none silently: every one lacks the server's confirmation.
    assert not lost.filter(confirmed_at__isnull=False).exists()
    size = settings.CAMPAIGN_SMTP_CONNECTIONS
    claims = set(lost.values_list("claim", flat=True))
    for claim in claims:
        claimed = list(
            Delivery.objects.filter(claim=claim).order_by("pk").values_list("pk", flat=True)
        )
        batches = [set(claimed[start : start + size]) for start in range(0, len(claimed), size)]
        pks = set(lost.filter(claim=claim).values_list("pk", flat=True))
        assert any(pks <= batch for batch in batches), (claim, sorted(pks), claimed)
    return len(claims)


def test_an_address_that_unsubscribes_mid_campaign_gets_nothing_more(
    worker: Worker, smtp_sink: SmtpSink, make_campaign, service
):
    emails = _accounts(service, 120)
    # 600 a minute: 10 a second after a first burst, so the last address is still
    # about ten seconds away when it unsubscribes, also on a busy machine.
    campaign = make_campaign(rate_per_minute=600)
    worker.start()
    control.start(campaign)
    wait_until(lambda: smtp_sink.count() >= 10, what="the first emails")
    last = Delivery.objects.filter(status="pending").order_by("-pk").first()
    assert last is not None, "every email went out before the unsubscribe"

    # The mail client's RFC 8058 one-click POST: no cookies, no CSRF token.
    code = content.unsubscribe_code(last.pk)
    response = Client(enforce_csrf_checks=True).post(
        reverse("campaigns:unsubscribe", args=[code]), {"List-Unsubscribe": "One-Click"}
    )
    assert response.status_code == 200

    wait_until(lambda: _status(campaign) == "finished", what="the campaign to finish")
    assert last.email not in smtp_sink.recipients()
    assert smtp_sink.recipients() == {email: 1 for email in emails if email != last.email}
    last.refresh_from_db()
    assert (last.status, last.error) == ("skipped", "suppressed")


def test_a_paused_campaign_sends_nothing_until_it_is_resumed(
    worker: Worker, smtp_sink: SmtpSink, make_campaign, service
):
    emails = _accounts(service, 100)
    campaign = make_campaign(rate_per_minute=1200)
    worker.start()
    control.start(campaign)
    wait_until(lambda: smtp_sink.count() >= 10, what="the first emails")

    control.pause(campaign)

    # The chunk in flight when the pause came finishes (its last batch is committed
    # "sent" just before the server gets each email's final "."); then nothing moves.
    # A sender that read "sending" just before the pause may still claim one more
    # chunk, so "settled" means: nothing in flight and nothing new for 1.5 s.
    def settled() -> bool:
        before = smtp_sink.count()
        time.sleep(1.5)
        idle = not Delivery.objects.filter(status="sending").exists()
        return idle and smtp_sink.count() == before == _sent()

    wait_until(settled, what="the chunk in flight")
    paused_at = smtp_sink.count()
    time.sleep(3)
    assert smtp_sink.count() == paused_at < 100
    assert Delivery.objects.filter(status="pending").exists()

    control.resume(campaign)

    wait_until(lambda: _status(campaign) == "finished", what="the campaign to finish")
    assert smtp_sink.recipients() == dict.fromkeys(emails, 1)
