"""Never twice, under real faults: a sender process killed with SIGKILL while the
mail server takes its batch, and the database cut off right after a batch was
handed over. A real sender process, a real database and a real local SMTP server;
the sink itself pulls the trigger while it holds an email's final "."."""

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from linking.campaigns import control, planning, selectors
from linking.campaigns.models import Campaign, Delivery
from tests.campaign_support import (
    BASE_DIR,
    SmtpSink,
    TcpProxy,
    database_url_for_worker,
    send_everything,
    wait_until,
)

pytest_plugins = ["tests.fixtures.campaigns"]

LEASE_SECONDS = 3
BATCH = 5
SENDER = (
    "import sys, django\n"
    "django.setup()\n"
    "from linking.campaigns import sending\n"
    "print(sending.send_chunk(int(sys.argv[1])), flush=True)\n"
)


@pytest.fixture
def sender_env(transactional_db, smtp_sink: SmtpSink, tmp_path: Path, settings) -> Iterator[dict]:
    """The environment of a sender process on the test's database and SMTP sink."""
    settings.CAMPAIGN_LEASE_SECONDS = LEASE_SECONDS
    settings.CAMPAIGN_BATCH_SIZE = BATCH
    database = database_url_for_worker(tmp_path)
    yield {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": next(database),
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp_sink.port),
        "EMAIL_USE_TLS": "0",
        "EMAIL_USE_SSL": "0",
        "CAMPAIGN_LEASE_SECONDS": str(LEASE_SECONDS),
        "CAMPAIGN_BATCH_SIZE": str(BATCH),
        "CAMPAIGN_CHUNK_SIZE": "10",
    }
    next(database, None)


def _sender(env: dict, campaign: Campaign) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", SENDER, str(campaign.pk)],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _campaign(make_campaign, make_account, count: int) -> tuple[Campaign, list[str]]:
    emails = [f"m{number}@example.jp" for number in range(count)]
    for number, address in enumerate(emails):
        make_account(f"S{number}", email=address)
    campaign = make_campaign()
    control.start(campaign)
    planning.plan_step(campaign=campaign, number=0)
    return campaign, emails


def _statuses() -> dict[str, str]:
    return dict(Delivery.objects.values_list("email", "status"))


def _after_the_lease(campaign: Campaign) -> None:
    """What any later sender does, once the dead one's lease has run out."""
    leased = Delivery.objects.filter(status__in=["leased", "sending"])
    wait_until(
        lambda: not leased.filter(lease_until__gte=timezone.now()).exists(),
        what="the leases to run out",
    )
    send_everything(campaign)


def test_a_sender_killed_while_the_server_takes_its_batch_sends_nothing_twice(
    sender_env, smtp_sink: SmtpSink, make_campaign, make_account
):
    campaign, emails = _campaign(make_campaign, make_account, 8)
    sender = _sender(sender_env, campaign)

    def kill_at_the_third(count: int) -> None:
        if count == 3:  # holding its "."; the 250 will never reach the sender
            os.kill(sender.pid, signal.SIGKILL)

    smtp_sink.on_message = kill_at_the_third
    sender.wait(timeout=60)
    assert sender.returncode == -signal.SIGKILL, sender.stderr.read()
    smtp_sink.on_message = None
    arrived = set(smtp_sink.recipients())
    assert len(arrived) >= 3  # the rest of the batch may or may not have gone out

    _after_the_lease(campaign)

    received = smtp_sink.recipients()
    assert max(received.values()) == 1
    statuses = _statuses()
    # The killed batch (m0-m4) was handed over: unconfirmed, never sent again, also
    # those the server never got. The rest (m5-m7), only leased, went out once.
    assert {address: statuses[address] for address in emails[:5]} == dict.fromkeys(
        emails[:5], "unconfirmed"
    )
    assert set(emails) - set(received) == set(emails[:5]) - arrived
    assert {address: statuses[address] for address in emails[5:]} == dict.fromkeys(
        emails[5:], "sent"
    )
    assert selectors.progress(campaign)["unconfirmed"] == 5
    campaign.refresh_from_db()
    assert campaign.status == "finished"


@pytest.fixture
def database_proxy(sender_env) -> Iterator[TcpProxy]:
    """The sender's way to PostgreSQL, through a proxy the test can cut."""
    if connection.vendor != "postgresql":
        pytest.skip("the outage is a TCP proxy in front of PostgreSQL")
    db = connection.settings_dict
    proxy = TcpProxy(db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432))
    sender_env["DATABASE_URL"] = sender_env["DATABASE_URL"].replace(
        f":{db['PORT'] or 5432}/", f":{proxy.port}/"
    )
    yield proxy
    proxy.close()


def test_a_database_gone_after_the_hand_over_leaves_the_batch_unconfirmed_never_resent(
    database_proxy: TcpProxy, sender_env, smtp_sink: SmtpSink, make_campaign, make_account
):
    campaign, emails = _campaign(make_campaign, make_account, BATCH)

    def cut_the_database(count: int) -> None:
        if count == 1:  # the batch was committed "sending" before this email came
            database_proxy.pause()

    smtp_sink.on_message = cut_the_database
    sender = _sender(sender_env, campaign)
    sender.wait(timeout=60)
    smtp_sink.on_message = None

    # It sent the batch, tried to record it until its lease ran out, and gave up.
    assert sender.returncode != 0
    assert "OperationalError" in sender.stderr.read()
    assert smtp_sink.recipients() == dict.fromkeys(emails, 1)
    assert set(_statuses().values()) == {"sending"}

    _after_the_lease(campaign)  # the database is back for everyone else

    assert smtp_sink.recipients() == dict.fromkeys(emails, 1)
    assert _statuses() == dict.fromkeys(emails, "unconfirmed")
    assert selectors.progress(campaign)["unconfirmed"] == BATCH


def test_a_short_database_outage_after_the_hand_over_is_recorded_once_it_is_back(
    database_proxy: TcpProxy, sender_env, smtp_sink: SmtpSink, make_campaign, make_account
):
    campaign, emails = _campaign(make_campaign, make_account, BATCH)
    sender_env["CAMPAIGN_LEASE_SECONDS"] = "30"  # time enough to outlast the outage

    def cut_the_database(count: int) -> None:
        if count == 1:
            database_proxy.pause()
        if count == BATCH:  # the sender is about to record the batch: it finds none
            threading.Timer(1.0, database_proxy.resume).start()

    smtp_sink.on_message = cut_the_database
    sender = _sender(sender_env, campaign)
    sender.wait(timeout=60)

    assert sender.returncode == 0, sender.stderr.read()
    assert smtp_sink.recipients() == dict.fromkeys(emails, 1)
    assert _statuses() == dict.fromkeys(emails, "sent")
