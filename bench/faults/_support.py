"""What the fault scripts share: an SMTP sink that counts Message-IDs (and can answer
451 for a while, or act when a given email arrives), Celery workers (with beat) on the
configured database and broker and a loop that starts a dead one again, a campaign
factory, restarts of Redis, RabbitMQ and PostgreSQL that always bring them back, and
the checks every script ends with."""

import email
import email.policy
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent.parent
REDIS_START = [
    "redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379",
    "--save", "", "--appendonly", "no", "--dir", "/var/lib/redis",
    "--logfile", "/var/log/redis/ci.log",
]  # fmt: skip


class Sink:
    """A local SMTP server (aiosmtpd) standing in for the mail provider. Until
    tempfail_until (time.monotonic()) it answers every message with 451 after the
    final "."; afterwards it accepts and counts by Message-ID and recipient."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        from bench.load import free_port

        self.ids: Counter = Counter()
        self.recipients: Counter = Counter()
        self.tempfailed = 0
        self.tempfail_until = 0.0
        self.actions: dict[int, Callable[[], None]] = {}  # run when that many have arrived
        self.lock = threading.Lock()
        self.port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server, session, envelope):
        if time.monotonic() < self.tempfail_until:
            with self.lock:
                self.tempfailed += 1
            return "451 4.3.0 Temporary failure, try again later"
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.ids[str(message["Message-ID"])] += 1
            self.recipients.update(envelope.rcpt_tos)
            action = self.actions.pop(sum(self.ids.values()), None)
        if action:  # before the sender hears the 250: its "sent" mark is still to come
            action()
        return "250 OK"

    def count(self) -> int:
        with self.lock:
            return sum(self.ids.values())

    def __enter__(self) -> "Sink":
        import logging

        logging.getLogger("mail.log").setLevel(logging.WARNING)
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()


class Worker:
    """`celery -A config worker -B` in its own process group: short leases and a
    one-second beat tick, so stalled senders are restarted quickly."""

    def __init__(
        self, sink_port: int, *, concurrency: int = 2, beat: bool = True, database_url: str = ""
    ) -> None:
        self.concurrency = concurrency
        self.beat = beat
        self.dir = Path(tempfile.mkdtemp(prefix="bench-fault-worker-"))
        self.env = {
            **os.environ,
            **({"DATABASE_URL": database_url} if database_url else {}),
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(sink_port),
            "EMAIL_USE_TLS": "0",
            "EMAIL_USE_SSL": "0",
            "CAMPAIGN_LEASE_SECONDS": "3",
            "CAMPAIGN_TICK_SECONDS": "1",
            "CAMPAIGN_CHUNK_SIZE": "20",
            "DJANGO_SETTINGS_MODULE": "config.settings",
        }
        self.process: subprocess.Popen | None = None
        self.runs = 0

    def start(self) -> None:
        self.runs += 1
        command = [
            sys.executable, "-m", "celery", "-A", "config", "worker", "-l", "warning",
            "-c", str(self.concurrency), "-n", f"{self.dir.name}-{self.runs}@%h",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
        ]  # fmt: skip
        if self.beat:
            command += ["-B", "-s", str(self.dir / f"beat-{self.runs}")]
        log = (self.dir / f"worker-{self.runs}.log").open("wb")
        self.process = subprocess.Popen(
            command, cwd=BASE_DIR, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

    def kill(self) -> None:
        """SIGKILL the worker, its pool processes and beat at once."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def log_tail(self, chars: int = 3000) -> str:
        text = "\n".join(
            path.read_text(errors="replace") for path in sorted(self.dir.glob("worker-*.log"))
        )
        return text[-chars:]


class Supervisor:
    """Starts a dead worker again with `make run`'s backoff (config.run.next_delay),
    as systemd's Restart=always would: nobody restarts anything by hand."""

    def __init__(self, workers: list[Worker]) -> None:
        self.workers = workers
        self.restarts = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        from config.run import next_delay

        delays = dict.fromkeys(range(len(self.workers)), 0.0)
        started = dict.fromkeys(range(len(self.workers)), time.monotonic())
        while not self.stopping.wait(0.1):
            for number, worker in enumerate(self.workers):
                if worker.process and worker.process.poll() is not None:
                    delays[number] = next_delay(delays[number], time.monotonic() - started[number])
                    if self.stopping.wait(delays[number]):
                        return
                    worker.start()
                    started[number] = time.monotonic()
                    self.restarts += 1

    def __enter__(self) -> "Supervisor":
        for worker in self.workers:
            worker.start()
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        self.thread.join()
        for worker in self.workers:
            worker.kill()


def make_campaign(count: int, *, rate_per_minute: int, tag: str):
    """A service of count legacy accounts and a one-step campaign to all of them."""
    from config.celery import app
    from linking.campaigns import control
    from linking.campaigns.models import Campaign, CampaignStep
    from linking.models import LegacyAccount, LegacyService

    # An interrupted earlier run leaves its campaign sending and its tasks queued:
    # this run's worker would send them too.
    for left in Campaign.objects.filter(name__startswith="fault ", status="sending"):
        control.cancel(left)
    app.control.purge()
    run = f"{tag}-{int(time.time()):x}"
    service = LegacyService.objects.create(
        code=f"bench-fault-{run}", name_ja="障害試験", incentive_ja="100ポイント"
    )
    emails = [f"f{number:06d}-{run}@fault.example.jp" for number in range(count)]
    LegacyAccount.objects.bulk_create(
        (
            LegacyAccount(
                service=service, external_id=f"F{n:06d}", email=e, email_key=e, name="障害 花子"
            )
            for n, e in enumerate(emails)
        ),
        batch_size=5000,
    )
    campaign = Campaign.objects.create(
        name=f"fault {run}",
        subject_ja="{{ name }}様、統合IDへの連携のお願い",
        text_ja="{{ name }}様\n会員番号 {{ member_number }}\n{{ incentive }}\n{{ link }}\n",
        sender_company="サンプル商事株式会社",
        sender_address="東京都千代田区丸の内1-1-1",
        sender_contact="support@example.jp",
        rate_per_minute=rate_per_minute,
    )
    campaign.services.set([service])
    CampaignStep.objects.create(campaign=campaign, number=0)
    return campaign, emails


def campaign_status(campaign) -> str:
    from django.db import connection

    from linking.campaigns.models import Campaign

    for _attempt in range(30):
        try:
            return Campaign.objects.filter(pk=campaign.pk).values_list("status", flat=True).get()
        except Exception:  # the database is restarting: reconnect and ask again
            connection.close()
            time.sleep(1)
    raise SystemExit("the database did not come back")


def wait_for(condition, *, seconds: float, what: str) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    print(f"  gave up waiting for {what} after {seconds:.0f} s")
    return False


def wait_for_campaign(campaign, *, seconds: float) -> bool:
    return wait_for(
        lambda: campaign_status(campaign) == "finished",
        seconds=seconds,
        what="the campaign to finish",
    )


def unfinished(finished: bool, worker: Worker) -> list[str]:
    """The problem (and the worker's log) when the campaign did not finish."""
    if finished:
        return []
    print(worker.log_tail())
    return ["the campaign did not finish"]


def campaign_problems(
    campaign, sink: Sink, emails: list[str], *, may_lose: bool = False
) -> list[str]:
    """Every address exactly once at the sink (at most once if may_lose: a batch
    handed over when a SIGKILL came is unconfirmed, and every address that got
    nothing must be shown unconfirmed or failed), every delivery sent (or, if
    may_lose, unconfirmed or failed), one per ID."""
    from linking.campaigns.models import Delivery

    problems = []
    duplicates = {mid: n for mid, n in sink.ids.items() if n > 1}
    if duplicates:
        problems.append(f"{len(duplicates)} Message-IDs received more than once")
    missing = [address for address in emails if sink.recipients[address] == 0]
    if missing and not may_lose:
        problems.append(f"{len(missing)} addresses got nothing (e.g. {missing[0]})")
    twice = [address for address in emails if sink.recipients[address] > 1]
    if twice:
        problems.append(f"{len(twice)} addresses got more than one email")
    deliveries = Delivery.objects.filter(campaign=campaign)
    statuses = Counter(deliveries.values_list("status", flat=True))
    lost = ("unconfirmed", "failed") if may_lose else ()
    reached = statuses.get("sent", 0) + sum(statuses.get(status, 0) for status in lost)
    shown = set(deliveries.filter(status__in=lost).values_list("email", flat=True))
    unshown = [address for address in missing if address not in shown]
    if missing and may_lose and unshown:
        problems.append(f"{len(unshown)} addresses got nothing and show no reason")
    if reached != len(emails):
        problems.append(f"deliveries by status: {dict(statuses)}")
    return problems


def half_written_links() -> list[str]:
    """Across the whole database: an owner without a link event that gives them the
    account, or a last link event that says linked where there is no owner."""
    from django.db.models import F, OuterRef, Q, Subquery

    from linking.models import LegacyAccount, LinkEvent

    last = LinkEvent.objects.filter(account=OuterRef("pk")).order_by("-pk")
    rows = LegacyAccount.objects.annotate(
        last_action=Subquery(last.values("action")[:1]),
        last_customer=Subquery(last.values("customer_id")[:1]),
    ).filter(
        Q(owner__isnull=False)
        & (
            Q(last_action__isnull=True)
            | ~Q(last_action=LinkEvent.Action.LINK)
            | ~Q(last_customer=F("owner_id"))
        )
        | Q(owner__isnull=True, last_action=LinkEvent.Action.LINK)
    )
    return [
        f"half-written link: {row}" for row in rows.values("pk", "owner_id", "last_action")[:10]
    ]


def redis_up() -> bool:
    found = subprocess.run(["redis-cli", "ping"], capture_output=True, text=True)
    return found.stdout.strip() == "PONG"


def restart_redis(down_seconds: float = 1.0) -> float:
    """Stop Redis (nothing is kept on disk here: every queue is lost) and start it
    again; always started again, whatever happens. Seconds it was down."""
    stopped = time.monotonic()
    try:
        subprocess.run(["redis-cli", "shutdown", "nosave"], capture_output=True)
        time.sleep(down_seconds)
    finally:
        if not redis_up():
            subprocess.run(REDIS_START, check=False)
        for _attempt in range(50):
            if redis_up():
                break
            time.sleep(0.1)
    return time.monotonic() - stopped


def rabbitmq_restart() -> float:
    """`rabbitmqctl stop_app` then `start_app`: every connection is closed, the durable
    queues and persistent messages are kept. Always started again. Seconds it took."""
    started = time.monotonic()
    try:
        subprocess.run(["rabbitmqctl", "stop_app"], check=False, capture_output=True)
    finally:
        subprocess.run(["rabbitmqctl", "start_app"], check=False, capture_output=True)
    return time.monotonic() - started


def postgres_version() -> str:
    return sorted(os.listdir("/etc/postgresql"))[-1]


def postgres_up() -> bool:
    return subprocess.run(["pg_isready", "-h", "127.0.0.1", "-q"]).returncode == 0


def restart_postgres() -> float:
    """pg_ctlcluster restart (fast shutdown: every session is cut); seconds until it
    accepts connections again. Started again if the restart fails."""
    version = postgres_version()
    started = time.monotonic()
    try:
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
            check=False,
            capture_output=True,
        )
    finally:
        if not postgres_up():
            subprocess.run(
                ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"],
                check=False,
                capture_output=True,
            )
        for _attempt in range(300):
            if postgres_up():
                break
            time.sleep(0.1)
    return time.monotonic() - started


def verdict(name: str, problems: list[str], figures: str) -> None:
    for problem in problems[:20]:
        print(f"  problem: {problem}")
    print(f"{'PASS' if not problems else 'FAIL'}: {name}: {figures}", flush=True)
    if problems:
        sys.exit(1)


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
