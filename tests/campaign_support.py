"""Campaign test support behind the fixtures in tests/fixtures/campaigns.py: a real
SMTP server (aiosmtpd) standing in for the mail provider, and a real Celery worker
process sharing the test's database and broker."""

import contextlib
import email
import email.policy
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

from aiosmtpd.controller import Controller
from django.conf import settings as django_settings
from django.db import connection, connections

from tests.broker import purge_broker

BASE_DIR = Path(django_settings.BASE_DIR)
WAIT_SECONDS = 90  # a guard against hanging forever, not a speed requirement


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SmtpSink:
    """Accepts every message and remembers it. reply_for[address] makes the server
    answer that recipient with another reply (e.g. "451 try later", "550 no such
    user") at RCPT time. on_message(count), if set, runs once a message is kept and
    before the server answers its final "." with 250."""

    def __init__(self) -> None:
        self.pipelining = False  # True: offer PIPELINING (RFC 2920) in the EHLO answer
        self.on_message: Callable[[int], None] | None = None
        self.messages: list[email.message.EmailMessage] = []
        self.arrived: list[float] = []  # time.monotonic() of each message's "."
        self.reply_for: dict[str, str] = {}
        self._lock = threading.Lock()
        self.port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.pipelining:
            return [*responses[:-1], "250-PIPELINING", responses[-1]]
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.reply_for:
            return self.reply_for[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self._lock:
            self.messages.append(parsed)
            self.arrived.append(time.monotonic())
            count = len(self.messages)
        if self.on_message is not None:
            self.on_message(count)
        return "250 OK"

    def snapshot(self) -> list[email.message.EmailMessage]:
        with self._lock:
            return list(self.messages)

    def count(self) -> int:
        with self._lock:
            return len(self.messages)

    def recipients(self) -> Counter:
        return Counter(str(message["To"]) for message in self.snapshot())

    def message_ids(self) -> Counter:
        return Counter(str(message["Message-ID"]) for message in self.snapshot())

    def to(self, address: str) -> list[email.message.EmailMessage]:
        return [message for message in self.snapshot() if str(message["To"]) == address]

    def env(self) -> dict[str, str]:
        """The environment that sends another process's mail here."""
        return {
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(self.port),
            "EMAIL_USE_TLS": "0",
            "EMAIL_USE_SSL": "0",
        }


def campaign_form(service, **fields) -> dict:
    """The staff's new-campaign form as the admin posts it, no follow-up steps."""
    return {
        "name": "秋の連携キャンペーン",
        "services": [service.pk],
        "start_at_0": "2026-12-01",
        "start_at_1": "10:00:00",
        "rate_per_minute": 600,
        "subject_ja": "{{ name }}様",
        "text_ja": "{{ link }}",
        "sender_company": "サンプル商事株式会社",
        "sender_address": "東京都",
        "sender_contact": "support@example.jp",
        "link_valid_days": 30,
        "attribution_days": 30,
        "steps-TOTAL_FORMS": 0,
        "steps-INITIAL_FORMS": 0,
        **fields,
    }


def send_everything(campaign) -> int:
    """Sender runs in this process until the campaign has nothing left to send now;
    how many emails went out."""
    from linking.campaigns import sending

    sent = 0
    while True:
        run = sending.send_chunk(campaign.pk)
        sent += run.sent
        if not run.keep_sending or run.wait_seconds:
            return sent


def wait_until(condition: Callable[[], bool], *, what: str, seconds: float = WAIT_SECONDS) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def database_url_for_worker(tmp_path: Path) -> Iterator[str]:
    """The test database as a DATABASE_URL another process can open.

    PostgreSQL: pytest-django's test database, by name. SQLite: the test database
    lives in this process's memory, so it is copied (schema and all) to a file and
    this process switches to that file for the test, then back.
    """
    db = connection.settings_dict
    if connection.vendor == "postgresql":
        password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
        yield (
            f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:"
            f"{db['PORT'] or 5432}/{db['NAME']}"
        )
        return
    path = tmp_path / "worker.sqlite3"
    in_memory = connections["default"]
    in_memory.ensure_connection()
    with sqlite3.connect(path) as copy:
        in_memory.connection.backup(copy)
    # A new connection object for this thread only: a live server started earlier in
    # the session shares (and closes after each request) the in-memory one, which is
    # harmless for memory but would close a file connection under this thread's feet.
    on_file = in_memory.__class__({**in_memory.settings_dict, "NAME": str(path)}, alias="default")
    connections["default"] = on_file
    try:
        yield f"sqlite:///{path}"
    finally:
        on_file.close()
        connections["default"] = in_memory


class Worker:
    """`celery -A config worker` in its own process group, on the test's database,
    broker and SMTP sink."""

    CONCURRENCY = 2  # pool processes, each a sender that a kill can catch mid-batch

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.process: subprocess.Popen | None = None
        self.runs = 0

    def start(self, *, beat: bool = False) -> None:
        self.runs += 1
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "-l",
            "info",
            "-c",
            str(self.CONCURRENCY),
            "-n",
            f"campaign-test-{os.getpid()}-{self.runs}@%h",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
        if beat:
            command += ["-B", "-s", str(self.log_dir / f"beat-{self.runs}")]
        log = (self.log_dir / f"worker-{self.runs}.log").open("wb")
        self.process = subprocess.Popen(
            command,
            cwd=BASE_DIR,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self) -> None:
        """SIGKILL the worker and its pool processes at once, like a machine dying."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        """At the end of a test: nothing is left to protect, so no warm shutdown."""
        self.kill()

    def log(self) -> str:
        return "\n".join(
            path.read_text(errors="replace") for path in sorted(self.log_dir.glob("worker-*.log"))
        )

    def tasks_in_flight(self, name: str) -> int:
        """Tasks called `name` this worker took and has not yet finished, from its log:
        the worker logs "received" before a pool process starts a task, and
        "succeeded", "retry" or "raised" once it ends."""
        log = self.log()
        task = rf"Task {re.escape(name)}\[[\w-]+\]"
        taken = len(re.findall(rf"{task} received", log))
        assert taken, f"the worker's log shows no {name} task received"
        return taken - len(re.findall(rf"{task} (?:succeeded|retry|raised)", log))


@contextlib.contextmanager
def worker_on_test_database(tmp_path: Path, **env: str) -> Iterator[Worker]:
    """A real Celery worker (not started) on the test's database and broker, with `env`
    on top of this process's environment; killed afterwards, the broker emptied both
    before and after so no test sees another's messages."""
    purge_broker()
    database = database_url_for_worker(tmp_path)
    log_dir = tmp_path / "worker-logs"
    log_dir.mkdir()
    base = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"}
    running = Worker({**base, "DATABASE_URL": next(database), **env}, log_dir)
    try:
        yield running
    finally:
        running.stop()
        purge_broker()
        next(database, None)


class TcpProxy:
    """A TCP proxy in front of a server (PostgreSQL) that a test can cut off, as a
    network outage would: pause() drops every open connection and refuses new ones
    until resume()."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.paused = threading.Event()
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _address = self.listener.accept()
            except OSError:
                return
            if self.paused.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target)
            except OSError:  # the server itself is down: refused, like a direct connect
                client.close()
                continue
            with self._lock:
                self._open += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def pause(self) -> None:
        self.paused.set()
        with self._lock:
            cut, self._open = self._open, []
        for end in cut:
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()

    def resume(self) -> None:
        self.paused.clear()

    def close(self) -> None:
        self.listener.close()
        self.pause()
