"""A batch's commit point (linking/campaigns/commit_point.py): its COMMIT and its
emails' final "."s leave together, so a sender killed anywhere sends each email
once. Real sender processes, a real PostgreSQL (or SQLite) and a real local SMTP
server; the kills are real SIGKILLs, placed by strace at chosen system calls."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import DatabaseError, connection
from django.utils import timezone

from linking.campaigns import commit_point, planning, selectors, sending
from linking.campaigns.models import Campaign, Delivery
from linking.campaigns.transport import Item, Transport
from tests.campaign_support import (
    BASE_DIR,
    SmtpSink,
    database_url_for_worker,
    send_everything,
    wait_until,
)
from tests.pg_tls import TlsPostgres

pytest_plugins = ["tests.fixtures.campaigns"]


@pytest.fixture
def on_postgres(transactional_db) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the COMMIT leaves with the dots on PostgreSQL only")


# Sender processes, forked one per line of stdin ("campaign-id count how") from a
# parent that set Django up once. Each claims the campaign's deliveries, prints its
# pid and waits for SIGUSR1, then sends them in one batch ("send") or marks them
# sent and dies ("mark"). The parent prints how it ended: "exit <code>".
SENDERS = """
import os, signal, sys, django
django.setup()
from django.db import connections
from django.urls import reverse
from django.utils import timezone
from linking.campaigns import sending
from linking.campaigns.models import Campaign
from linking.campaigns.transport import Item, Transport
from linking.campaigns import content
from linking.models import LegacyAccount, LegacyService
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
# URLs, templates and message catalogs loaded once, not by every child.
reverse("campaigns:unsubscribe", args=["code"])
for language in ("ja", "en"):
    account = LegacyAccount(service=LegacyService())
    content.render(Campaign(), account, step=1, link="", unsubscribe_url="", language=language)
for line in sys.stdin:
    campaign_id, count, how = line.split()
    connections.close_all()
    child = os.fork()
    if child == 0:
        campaign = Campaign.objects.get(pk=campaign_id)
        claimed = sending.claim(campaign.pk, int(count))
        with Transport(connections=int(count)) as transport:
            print(os.getpid(), flush=True)
            signal.sigwait({signal.SIGUSR1})
            if how == "send":
                sending.send_claimed(transport, campaign, claimed)
            else:
                tokens = {d.pk: f"t{d.pk}" for d in claimed}
                sending._commit(campaign, claimed, tokens, timezone.now())
                os.kill(os.getpid(), signal.SIGKILL)
        os._exit(0)
    print("exit", os.waitstatus_to_exitcode(os.waitpid(child, 0)[1]), flush=True)
"""


class Senders:
    """The parent of the sender processes."""

    def __init__(self, env: dict) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", SENDERS],
            cwd=BASE_DIR,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def start(self, campaign: Campaign, count: int, how: str = "send") -> "Sender":
        self.process.stdin.write(f"{campaign.pk} {count} {how}\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline().strip()
        assert line.isdigit(), line + self._stop()
        return Sender(self, int(line))

    def _stop(self) -> str:
        self.process.kill()
        return self.process.communicate()[1]

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=30)


class Sender:
    """One sender process, waiting to go."""

    def __init__(self, parent: Senders, pid: int) -> None:
        self.parent = parent
        self.pid = pid

    def go(self) -> int:
        """Let it send; its exit code (minus the signal that killed it)."""
        os.kill(self.pid, signal.SIGUSR1)
        line = self.parent.process.stdout.readline().split()
        assert line[:1] == ["exit"], line
        return int(line[1])


def _campaign(make_campaign, make_account, count: int) -> Campaign:
    for number in range(count):
        make_account(f"S{number}", email=f"m{number}@example.jp")
    campaign = make_campaign()
    Campaign.objects.filter(pk=campaign.pk).update(status="sending", started_at=timezone.now())
    planning.plan_step(campaign=campaign, number=0)
    return campaign


def _send_everything(campaign: Campaign) -> int:
    """What a later sender does once the dead one's lease ran out."""
    Delivery.objects.filter(status="sending").update(
        lease_until=timezone.now() - timedelta(seconds=1)
    )
    return send_everything(campaign)


@pytest.fixture
def sender_env(transactional_db, smtp_sink: SmtpSink, tmp_path: Path) -> Iterator[dict]:
    """The environment of sender processes on this test's database and SMTP sink."""
    database = database_url_for_worker(tmp_path)
    yield {
        **os.environ,
        "DATABASE_URL": next(database),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp_sink.port),
        "EMAIL_USE_TLS": "0",
        "EMAIL_USE_SSL": "0",
    }
    next(database, None)


@pytest.fixture
def senders(sender_env) -> Iterator[Senders]:
    parent = Senders(sender_env)
    yield parent
    parent.close()


def _traced(sender: Sender, *options: str, log: Path) -> subprocess.Popen:
    """strace attached to the sender before it goes, with these options."""
    tracer = subprocess.Popen(
        ["strace", "-f", "-qq", "-o", str(log), "-p", str(sender.pid), *options],
        stderr=subprocess.PIPE,
    )
    status = Path(f"/proc/{sender.pid}/status")
    deadline = time.monotonic() + 30
    while "TracerPid:\t0\n" in status.read_text():
        assert tracer.poll() is None, tracer.stderr.read()
        assert time.monotonic() < deadline, "strace did not attach"
        time.sleep(0.01)
    return tracer


# What the sender hands to other processes: the database, the mail server.
WRITES = "sendto,sendmsg,write,writev,io_uring_enter"


def _writes(log: Path) -> list[str]:
    """The names of the writing system calls in an strace log, in order."""
    calls = []
    for line in log.read_text().splitlines():
        name = line.split()[1].split("(")[0] if len(line.split()) > 1 else ""
        if name in WRITES.split(","):
            calls.append(name)
    return calls


@pytest.mark.postgres
def test_the_commit_and_the_dots_leave_in_one_system_call(
    on_postgres, senders, make_campaign, make_account, smtp_sink: SmtpSink, tmp_path
):
    campaign = _campaign(make_campaign, make_account, 2)
    sender = senders.start(campaign, 2)
    log = tmp_path / "trace.log"
    tracer = _traced(sender, "-e", f"trace={WRITES}", "-s", "64", log=log)

    assert sender.go() == 0
    tracer.wait(timeout=30)

    # Neither the COMMIT nor a "." was written on its own: they went to the kernel in
    # one io_uring_enter.
    text = log.read_text()
    assert "COMMIT" not in text
    assert '".\\r\\n"' not in text
    assert "io_uring_enter" in text
    assert smtp_sink.recipients() == {"m0@example.jp": 1, "m1@example.jp": 1}
    assert Delivery.objects.filter(status="sent", confirmed_at__isnull=False).count() == 2


@pytest.mark.postgres
def test_a_sender_killed_at_any_write_sends_every_email_once(
    on_postgres, senders, make_campaign, make_account, smtp_sink: SmtpSink, tmp_path
):
    # Every system call by which a sender hands something to the database or the mail
    # server, in turn: a sender killed as it makes that call (so having made every
    # write before it), then a later sender. Each email must arrive exactly once.
    probe = _campaign(make_campaign, make_account, 2)
    sender = senders.start(probe, 2)
    tracer = _traced(sender, "-e", f"trace={WRITES}", log=tmp_path / "writes.log")
    assert sender.go() == 0
    tracer.wait(timeout=30)
    writes = _writes(tmp_path / "writes.log")
    assert "io_uring_enter" in writes
    Campaign.objects.filter(pk=probe.pk).update(status="finished")

    for point, name in enumerate(writes):
        smtp_sink.messages.clear()
        Delivery.objects.all().delete()
        campaign = make_campaign(name=f"kill at write {point}")
        Campaign.objects.filter(pk=campaign.pk).update(status="sending")
        planning.plan_step(campaign=campaign, number=0)
        sender = senders.start(campaign, 2)
        inject = f"inject={name}:signal=KILL:when={writes[: point + 1].count(name)}"
        tracer = _traced(sender, "-e", f"trace={WRITES}", "-e", inject, log=tmp_path / "kill")

        assert sender.go() == -signal.SIGKILL, (point, writes)
        tracer.wait(timeout=30)
        _send_everything(campaign)

        received = smtp_sink.recipients()
        assert received == {"m0@example.jp": 1, "m1@example.jp": 1}, (point, writes, received)
        assert Delivery.objects.filter(status="sent").count() == 2


@pytest.mark.postgres
def test_a_sender_killed_after_marking_its_batch_leaves_it_to_be_sent_once(
    on_postgres, senders, make_campaign, make_account, smtp_sink: SmtpSink
):
    # The batch is marked sent in its transaction, but the COMMIT has not left: the
    # database rolls back, the server discards the unfinished emails, and the next
    # sender sends all eight once.
    campaign = _campaign(make_campaign, make_account, 8)

    assert senders.start(campaign, 8, how="mark").go() == -signal.SIGKILL

    assert Delivery.objects.filter(status="sending").count() == 8
    assert smtp_sink.recipients() == {}
    assert _send_everything(campaign) == 8
    assert smtp_sink.recipients() == {f"m{number}@example.jp": 1 for number in range(8)}


def test_on_sqlite_a_sender_killed_after_its_commit_leaves_the_batch_unconfirmed(
    senders, make_campaign, make_account, smtp_sink: SmtpSink
):
    # SQLite commits when asked, before the "."s: a sender killed in between loses
    # those emails. Never silently: staff see them sent but not confirmed.
    if connection.vendor != "sqlite":
        pytest.skip("on PostgreSQL the COMMIT leaves with the dots (tests above)")
    campaign = _campaign(make_campaign, make_account, 8)

    assert senders.start(campaign, 8, how="mark").go() == -signal.SIGKILL

    assert Delivery.objects.filter(status="sent", confirmed_at__isnull=True).count() == 8
    assert selectors.progress(campaign)["unconfirmed"] == 8
    assert _send_everything(campaign) == 0  # never sent again
    assert smtp_sink.recipients() == {}


def test_without_io_uring_the_commit_still_goes_before_the_dots(
    sender_env, make_campaign, make_account, smtp_sink: SmtpSink, tmp_path
):
    campaign = _campaign(make_campaign, make_account, 2)
    senders = Senders({**sender_env, "CAMPAIGN_ATOMIC_FINISH": "0"})
    sender = senders.start(campaign, 2)
    log = tmp_path / "trace.log"
    tracer = _traced(sender, "-e", f"trace={WRITES}", "-s", "64", log=log)

    assert sender.go() == 0
    tracer.wait(timeout=30)
    senders.close()

    lines = log.read_text().splitlines()
    assert not [line for line in lines if "io_uring_enter" in line]
    dots = [number for number, line in enumerate(lines) if '".\\r\\n"' in line]
    assert len(dots) == 2
    if connection.vendor == "postgresql":
        commits = [number for number, line in enumerate(lines) if "COMMIT" in line]
        assert len(commits) == 1 and commits[0] < dots[0]
    assert smtp_sink.recipients() == {"m0@example.jp": 1, "m1@example.jp": 1}


@pytest.fixture
def slow_or_refused_commit(transactional_db):
    """On PostgreSQL, a deferred constraint trigger that acts at COMMIT on each delivery
    a batch's commit turned from sending to sent, in a session that set
    unified_id.at_commit: 'slow' sleeps half a second, 'refuse' fails the COMMIT (the
    database going away after the "."s went out). It returns the function that sets
    it for this session."""
    if connection.vendor != "postgresql":
        pytest.skip("a deferred constraint trigger: PostgreSQL only")
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION at_commit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            " IF OLD.status <> 'sending' OR NEW.status <> 'sent' THEN RETURN NULL; END IF;"
            " IF current_setting('unified_id.at_commit', true) = 'slow' THEN"
            " PERFORM pg_sleep(0.5); END IF;"
            " IF current_setting('unified_id.at_commit', true) = 'refuse' THEN"
            " RAISE EXCEPTION 'commit refused'; END IF; RETURN NULL; END $$"
        )
        cursor.execute(
            "CREATE CONSTRAINT TRIGGER at_commit AFTER UPDATE ON campaigns_delivery"
            " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION at_commit()"
        )
    yield lambda mode: connection.cursor().execute(f"SET unified_id.at_commit = '{mode}'")
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER at_commit ON campaigns_delivery")
        cursor.execute("DROP FUNCTION at_commit()")


def test_the_dots_go_out_before_the_commits_answer(
    slow_or_refused_commit, make_campaign, make_account, smtp_sink: SmtpSink
):
    # The "."s leave with the COMMIT, not after its answer: a COMMIT that takes a
    # second shows it, the emails are at the server a second before the sender is done.
    campaign = _campaign(make_campaign, make_account, 2)
    claimed = sending.claim(campaign.pk, 2)
    slow_or_refused_commit("slow")  # 2 x 0.5 s

    with Transport(connections=2) as transport:
        assert sending.send_claimed(transport, campaign, claimed) == 2
    finished = time.monotonic()

    assert len(smtp_sink.arrived) == 2
    # Awaiting the answer first, they would arrive after the COMMIT's second.
    assert finished - max(smtp_sink.arrived) >= 0.9, (smtp_sink.arrived, finished)
    assert Delivery.objects.filter(status="sent", confirmed_at__isnull=False).count() == 2


def test_a_commit_that_fails_after_the_dots_is_recorded_once_the_database_answers(
    slow_or_refused_commit, make_campaign, make_account, smtp_sink: SmtpSink
):
    campaign = _campaign(make_campaign, make_account, 8)
    claimed = sending.claim(campaign.pk, 8)
    slow_or_refused_commit("refuse")  # this session only: the retry comes on a new connection

    with Transport(connections=8) as transport:
        assert sending.send_claimed(transport, campaign, claimed) == 8

    sent = Delivery.objects.filter(status="sent", token_hash__isnull=False)
    assert sent.count() == 8  # recorded, personal links included
    Delivery.objects.update(lease_until=timezone.now() - timedelta(seconds=1))
    assert _send_everything(campaign) == 0  # so never sent again
    assert smtp_sink.recipients() == {f"m{number}@example.jp": 1 for number in range(8)}


def _select_42() -> tuple:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 42")
        return cursor.fetchone()


@pytest.mark.postgres
def test_a_commit_answered_with_rollback_is_a_failure(on_postgres, make_campaign):
    # A transaction that failed and went on (its error swallowed) is rolled back at
    # COMMIT, and PostgreSQL says so without an error: the answer's "ROLLBACK".
    campaign = make_campaign(name="before")

    def work():
        Campaign.objects.filter(pk=campaign.pk).update(name="after")
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1 / 0")
        except DatabaseError:
            pass

    _result, pending = commit_point.begin(work)
    assert pending.send([]) == []
    with pytest.raises(DatabaseError, match="rolled back"):
        pending.answer()

    assert Campaign.objects.get(pk=campaign.pk).name == "before"
    assert _select_42() == (42,)


@pytest.mark.postgres
def test_a_setting_undone_at_commit_leaves_libpq_nothing_stale(on_postgres):
    # The server reports a parameter's value as it changes back at COMMIT; libpq never
    # reads that answer, so the connection it would go on believing is given up.
    def work():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL TimeZone = 'Pacific/Auckland'")

    _result, pending = commit_point.begin(work)
    pending.send([])
    pending.answer()

    with connection.cursor() as cursor:
        cursor.execute("SHOW TimeZone")
        (server,) = cursor.fetchone()
        assert server != "Pacific/Auckland"
        assert cursor.connection.info.parameter_status("TimeZone") == server


class _Around(commit_point.Pending):
    """A batch's real transaction (from begin()), passed through: the tests below
    change one of its steps, as a sender interrupted there would."""

    def __init__(self) -> None:
        _result, self.pending = commit_point.begin(lambda: None)
        self.answered = False

    def send(self, writes):
        return self.pending.send(writes)

    def answer(self) -> None:
        self.answered = True
        self.pending.answer()

    def abandon(self) -> None:
        self.pending.abandon()


def _send_one(transaction: type[_Around], raises) -> _Around:
    """One email through the transport in that transaction, which fails as `raises`
    expects; the transaction."""
    made = []

    def commit(ready):
        made.append(transaction())
        return {item.key for item in ready}, made[0]

    item = Item(key=1, sender="from@example.jp", recipient="m@example.jp")
    item.data = b"To: m@example.jp\r\nSubject: x\r\n\r\nbody\r\n"
    with Transport(connections=1) as transport, raises:
        transport.send([item], commit)
    return made[0]


@pytest.mark.postgres
def test_a_batch_whose_writes_fail_after_its_commit_leaves_no_stale_answer(
    on_postgres, smtp_sink: SmtpSink
):
    # The COMMIT went out, then the sender failed before reading its answer: the
    # connection is given up, or the next query would read the COMMIT's answer.
    class SendThenFail(_Around):
        def send(self, writes):
            super().send(writes)
            raise OSError("the sender failed after its writes")

    _send_one(SendThenFail, pytest.raises(OSError, match="after its writes"))

    assert _select_42() == (42,)


@pytest.mark.postgres
def test_a_batch_cut_short_after_its_dots_still_reads_its_commits_answer(
    on_postgres, smtp_sink: SmtpSink
):
    # The "."s went, then the sender was interrupted (a time limit, say) before it was
    # done: the COMMIT's answer is read all the same, so that a COMMIT that failed
    # would be recorded (sending._Recorded) and the emails never sent again.
    class CutShort(_Around):
        def send(self, writes):
            return [*super().send(writes), "interrupted"]  # the rest fails on it

    transaction = _send_one(CutShort, pytest.raises(ValueError))

    assert transaction.answered
    wait_until(lambda: smtp_sink.recipients() == {"m@example.jp": 1}, what="the email")
    assert _select_42() == (42,)


@pytest.fixture
def over_tls(on_postgres):
    """Django's connection to the same test database, encrypted: through a local
    TLS-speaking PostgreSQL proxy (tests/pg_tls.py)."""
    settings_dict = connection.settings_dict
    saved = {key: settings_dict[key] for key in ("HOST", "PORT", "OPTIONS")}
    proxy = TlsPostgres((saved["HOST"] or "127.0.0.1", int(saved["PORT"] or 5432)))
    connection.close()
    settings_dict.update(
        HOST="127.0.0.1", PORT=str(proxy.port), OPTIONS={**saved["OPTIONS"], "sslmode": "require"}
    )
    connection.ensure_connection()
    assert connection.connection.pgconn.ssl_in_use
    yield
    connection.close()
    settings_dict.update(saved)
    proxy.close()


@pytest.mark.postgres
def test_over_tls_libpq_sends_the_commit_and_its_answer_is_checked(over_tls, make_campaign):
    assert commit_point.describe() == (
        "the COMMIT before the dots (the database connection is encrypted)"
    )
    campaign = make_campaign(name="before")

    def rename(name: str, then_fail: bool):
        def work():
            Campaign.objects.filter(pk=campaign.pk).update(name=name)
            if then_fail:
                try:
                    with connection.cursor() as cursor:
                        cursor.execute("SELECT 1 / 0")
                except DatabaseError:
                    pass

        return work

    _result, pending = commit_point.begin(rename("rolled back", then_fail=True))
    pending.send([])
    with pytest.raises(DatabaseError, match="rolled back"):
        pending.answer()
    assert Campaign.objects.get(pk=campaign.pk).name == "before"

    _result, pending = commit_point.begin(rename("after", then_fail=False))
    pending.send([])
    pending.answer()
    assert Campaign.objects.get(pk=campaign.pk).name == "after"


@pytest.mark.postgres
def test_over_tls_a_batch_is_sent_once_and_confirmed(
    over_tls, make_campaign, make_account, smtp_sink: SmtpSink
):
    campaign = _campaign(make_campaign, make_account, 3)
    claimed = sending.claim(campaign.pk, 3)

    with Transport(connections=3) as transport:
        assert sending.send_claimed(transport, campaign, claimed) == 3

    assert smtp_sink.recipients() == {f"m{number}@example.jp": 1 for number in range(3)}
    assert Delivery.objects.filter(status="sent", confirmed_at__isnull=False).count() == 3


def test_the_worker_says_how_its_batches_commit(transactional_db, settings):
    if connection.vendor == "sqlite":
        assert commit_point.describe() == "the COMMIT before the dots (sqlite commits when asked)"
        return
    assert commit_point.describe() == "the COMMIT and the dots in one system call (io_uring)"
    settings.CAMPAIGN_ATOMIC_FINISH = False
    assert commit_point.describe() == "the COMMIT before the dots (CAMPAIGN_ATOMIC_FINISH is off)"
