"""Campaigns sent by a real Celery worker process (the configured broker: the file
system by default, RabbitMQ in CI) into a real local SMTP server: every address gets
its email once; when the worker is killed, none gets two and every one missing is
shown unconfirmed; unsubscribing and pausing take effect while the campaign runs."""

import re
import shutil
import subprocess
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from linking.campaigns import content, control, selectors, sending
from linking.campaigns.models import Campaign, Delivery
from linking.models import LegacyAccount
from tests.campaign_support import SmtpSink, TcpProxy, Worker, wait_until

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
    stranded = Delivery.objects.filter(status__in=["pending", "leased", "sending"]).count()
    # Beat notices the senders are gone once their leases run out and starts new ones.
    worker.start(beat=True)

    wait_until(lambda: _status(campaign) == "finished", what="the campaign to finish")
    assert stranded > 0
    received = smtp_sink.recipients()
    twice = sorted(address for address, count in received.items() if count > 1)
    assert twice == [], worker.log()[-3000:]
    assert max(smtp_sink.message_ids().values()) == 1
    # Every address that got nothing is shown unconfirmed: handed over by a killed
    # sender, at most one batch of each of its processes.
    missing = sorted(set(emails) - set(received))
    unconfirmed = Delivery.objects.filter(status="unconfirmed")
    assert set(missing) <= set(unconfirmed.values_list("email", flat=True))
    assert unconfirmed.count() <= Worker.CONCURRENCY * settings.CAMPAIGN_BATCH_SIZE
    assert _sent() + unconfirmed.count() == 300
    assert selectors.progress(campaign)["unconfirmed"] == unconfirmed.count()


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

    # The chunk in flight when the pause came finishes (a sender that read "sending"
    # just before the pause may still lease one more); every sender run that starts
    # after the pause stops at once. Settled: no sender run left in the worker,
    # nothing leased or handed over, and every email the sink got recorded sent.
    def settled() -> bool:
        if worker.tasks_in_flight("campaigns.send"):
            return False
        idle = not Delivery.objects.filter(status__in=["leased", "sending"]).exists()
        return idle and smtp_sink.count() == _sent()

    wait_until(settled, what="the chunk in flight")
    paused_at = smtp_sink.count()
    # A sender that runs now, the worker's or this one, stops without sending.
    assert sending.send_chunk(campaign.pk) == sending.Run()
    assert smtp_sink.count() == paused_at < 100
    assert Delivery.objects.filter(status="pending").exists()

    control.resume(campaign)

    wait_until(lambda: _status(campaign) == "finished", what="the campaign to finish")
    assert smtp_sink.recipients() == dict.fromkeys(emails, 1)


@pytest.mark.skipif(
    not settings.CELERY_BROKER_URL.startswith("amqp") or not shutil.which("rabbitmqctl"),
    reason="needs RabbitMQ on this machine as the broker (CELERY_BROKER_URL=amqp://...)",
)
def test_a_rabbitmq_restart_mid_campaign_loses_no_worker_and_sends_each_email_once(
    worker: Worker, smtp_sink: SmtpSink, make_campaign, service
):
    """The broker's application stops and starts again (every connection closed, the
    queues kept); the same worker reconnects by itself and the campaign finishes."""
    emails = _accounts(service, 300)
    campaign = make_campaign(rate_per_minute=1200)
    worker.start(beat=True)
    control.start(campaign)
    wait_until(lambda: smtp_sink.count() >= 30, what="the first emails")

    subprocess.run(["rabbitmqctl", "stop_app"], check=True, capture_output=True)
    try:
        assert smtp_sink.count() < 300, "the campaign finished before the broker stopped"
    finally:
        subprocess.run(["rabbitmqctl", "start_app"], check=True, capture_output=True)

    wait_until(lambda: _status(campaign) == "finished", what="the campaign to finish")
    assert worker.process.poll() is None, worker.log()[-3000:]
    assert worker.runs == 1
    received = smtp_sink.recipients()
    assert max(received.values()) == 1
    assert max(smtp_sink.message_ids().values()) == 1
    missing = sorted(set(emails) - set(received))
    unconfirmed = Delivery.objects.filter(status="unconfirmed")
    assert set(missing) <= set(unconfirmed.values_list("email", flat=True))
    assert _sent() + unconfirmed.count() == 300


@pytest.mark.skipif(
    not settings.CACHE_URL.startswith("redis://"),
    reason="needs Redis on this machine (CACHE_URL=redis://...)",
)
def test_senders_wait_out_a_redis_outage_and_finish_the_campaign(
    worker: Worker, smtp_sink: SmtpSink, make_campaign, service
):
    """The campaign's rate is counted in Redis: while it is away senders come back a
    few seconds later (no beat runs here to start them again), then finish."""
    emails = _accounts(service, 50)
    campaign = make_campaign()
    redis = TcpProxy("127.0.0.1", urlsplit(settings.CACHE_URL).port or 6379)
    worker.env["RATE_LIMIT_STORAGE_URL"] = f"redis://127.0.0.1:{redis.port}/13"
    redis.pause()
    try:
        worker.start()
        control.start(campaign)
        failed = re.compile(r"campaigns\.send\[[^\]]+\] (?:retry|raised).*StorageError")
        wait_until(
            lambda: len(failed.findall(worker.log())) >= settings.CAMPAIGN_SENDERS,
            what="every sender to find Redis away",
        )
        assert smtp_sink.count() == 0
        redis.resume()

        wait_until(lambda: _status(campaign) == "finished", what="the campaign to finish")
    finally:
        redis.close()
    assert smtp_sink.recipients() == dict.fromkeys(emails, 1)
