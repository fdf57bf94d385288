"""Load: simulated customers sign in, browse the link center, claim legacy accounts
by their legacy password and call the API, against gunicorn on loopback.

On the configured database (PostgreSQL + Redis for the recorded run) the script
seeds its own customers, a legacy service that accepts password proofs, legacy
accounts (Argon2id hashes, about 30 ms per check, like the customers' passwords)
and an API client, starts gunicorn (2 x cores + 1 sync workers), and runs CUSTOMERS
threads for SECONDS. Each customer repeats: sign in, link center, service page,
claim one of their own accounts (one claim in five goes for an account every
customer knows the password of, so claims race), link center, a link vouched for by
the service (its backend pushes a link request, the customer opens and confirms it,
the backend exchanges the code; "vouch confirm" is the confirm step), API resolve,
sign out, with 1-3 s of think time between steps. Each customer comes from its own
address (X-Forwarded-For, TRUSTED_PROXY_COUNT=1), as behind a load balancer.

Link events and audit entries are append-only, so each run seeds its own service,
customers and client (named by the time) and leaves them: use a database for
benchmarks. Checked afterwards in the database: zero 5xx and no failed requests; every claim
the site confirmed is the claiming customer's; every owned account has exactly one
link event, for its owner; no more link events than confirmed claims.

    python -m bench.load [--quick]    # 200 customers for 300 s; --quick: 20 for 30 s
"""

import json
import os
import random
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import requests

from bench import _common

BASE_DIR = Path(__file__).resolve().parent.parent
FULL = (200, 300)
QUICK = (20, 30)
OWN_ACCOUNTS = 60  # per customer: more than one customer can claim in the run
CONTESTED = 40  # accounts every customer may try to claim
PASSWORD = "load-Orange-7741"
LEGACY_PASSWORD = "legacy-pass-2026"
SERVICE = "bench-load"
EMAIL = "load{:04d}-{}@bench.example.jp"
REQUEST_TIMEOUT = 120
RETURN_URL = "https://store.bench.example.jp/unified-id/return"
_CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


class Web:
    """gunicorn serving the site on loopback, on the configured database."""

    def __init__(self, *, workers: int | None = None, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workers = workers or 2 * (os.cpu_count() or 2) + 1
        self.log_path = Path(tempfile.gettempdir()) / f"bench-web-{os.getpid()}-{self.port}.log"
        self.env = {
            **os.environ,
            "SITE_URL": self.url,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "TRUSTED_PROXY_COUNT": "1",
            "DEBUG": "0",
            "LOG_LEVEL": "WARNING",
            **(env or {}),
        }
        self.process: subprocess.Popen | None = None

    def start(self) -> "Web":
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi:application",
            "--preload",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            str(self.workers),
            "--timeout",
            "60",
            "--backlog",
            "2048",
        ]
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            command,
            cwd=BASE_DIR,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"gunicorn stopped; see {self.log_path}")
            try:
                if requests.get(f"{self.url}/healthz", timeout=5).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.3)
        raise SystemExit(f"gunicorn did not answer /healthz; see {self.log_path}")

    def worker_pids(self) -> list[int]:
        if not self.process:
            return []
        found = subprocess.run(
            ["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True
        ).stdout.split()
        return [int(pid) for pid in found]

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def errors(self) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(
            line for line in text.splitlines() if "Traceback" in line or "Error" in line
        )


@dataclass
class Seeded:
    service_code: str
    customers: list[str]  # emails, index = customer number
    own: dict[int, list[str]]  # customer number -> external ids only they know
    contested: list[str]
    client_id: str
    client_secret: str


def seed(customers: int) -> Seeded:
    """Customers, a service accepting password proofs, its accounts, an API client."""
    from allauth.account.models import EmailAddress
    from allauth.idp.oidc.models import Client
    from django.contrib.auth.hashers import make_password

    from accounts import consent
    from accounts.hashers import Argon2idPasswordHasher
    from accounts.models import Customer
    from linking.api.models import API_SCOPES, ServiceClient
    from linking.models import LegacyAccount, LegacyService

    run = f"{int(time.time()):x}"
    service = LegacyService.objects.create(
        code=f"{SERVICE}-{run}", name_ja="負荷試験ストア", accepted_proofs=["password", "vouched"]
    )
    hasher = Argon2idPasswordHasher()
    customer_hash = make_password(PASSWORD, hasher=hasher)
    legacy_hash = make_password(LEGACY_PASSWORD, hasher=hasher)
    notice = consent.current_notice()
    emails = []
    for number in range(customers):
        email = EMAIL.format(number, run)
        customer = Customer.objects.create_user(email, None)
        customer.password = customer_hash
        customer.save(update_fields=["password"])
        EmailAddress.objects.create(user=customer, email=email, verified=True, primary=True)
        if notice is not None:
            consent.agree(customer=customer, notice=notice, source="bench")
        emails.append(email)
    own = {n: [f"L{n:04d}-{k:03d}" for k in range(OWN_ACCOUNTS)] for n in range(customers)}
    contested = [f"SHARED-{k:03d}" for k in range(CONTESTED)]
    external_ids = [x for ids in own.values() for x in ids] + contested
    LegacyAccount.objects.bulk_create(
        (
            LegacyAccount(
                service=service,
                external_id=external_id,
                email=f"{external_id.lower()}@legacy.example.jp",
                email_key=f"{external_id.lower()}@legacy.example.jp",
                name="負荷 太郎",
                password_hash=legacy_hash,
                points=100,
            )
            for external_id in external_ids
        ),
        batch_size=5000,
    )
    secret = secrets.token_urlsafe(32)
    client = Client(name=f"{SERVICE}-{run} backend", type=Client.Type.CONFIDENTIAL)
    client.set_secret(secret)
    client.set_scopes(list(API_SCOPES))
    client.set_grant_types(["client_credentials"])
    client.save()
    access = ServiceClient.objects.create(
        client=client, rate_limit_per_minute=10_000_000, return_urls=[RETURN_URL]
    )
    access.services.set([service])
    return Seeded(service.code, emails, own, contested, client.id, secret)


@dataclass
class Tally:
    """What the simulated customers saw, shared by their threads."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: Counter = field(default_factory=Counter)
    failures: Counter = field(default_factory=Counter)  # action: exception class name
    confirmed: list[tuple[str, int]] = field(default_factory=list)  # (external_id, customer)
    refused: int = 0
    unexpected: Counter = field(default_factory=Counter)
    claim_attempts_unanswered: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, action: str, seconds: float, status: int) -> None:
        with self.lock:
            self.latencies[action].append(seconds)
            self.statuses[status // 100 * 100] += 1
            if status >= 500:
                self.failures[f"{action} {status}"] += 1

    def failed(self, action: str, error: Exception) -> None:
        with self.lock:
            self.failures[f"{action} {type(error).__name__}"] += 1
            if action in ("claim", "reauth+claim", "vouch confirm"):
                self.claim_attempts_unanswered += 1

    def server_errors(self) -> int:
        return self.statuses[500]

    def requests(self) -> int:
        return sum(self.statuses.values())


class Customer:
    """One simulated customer: a thread with its own cookies and address."""

    def __init__(self, number: int, seeded: Seeded, url: str, tally: Tally, token: str) -> None:
        self.number = number
        self.seeded = seeded
        self.url = url
        self.tally = tally
        self.token = token
        self.http = requests.Session()
        self.http.headers["X-Forwarded-For"] = f"10.{number // 250}.{number % 250}.{7}"
        self.api = requests.Session()
        self.api.headers["Authorization"] = f"Bearer {token}"
        self.mine = list(seeded.own[number])
        self.won: set[str] = set()
        self.rng = random.Random(number)

    def run(self, deadline: float, think: tuple[float, float]) -> None:
        self.think = think
        self.deadline = deadline
        while time.monotonic() < deadline:
            try:
                self.visit()
            except requests.RequestException:
                self.http.cookies.clear()  # start over with a fresh sign-in

    def pause(self) -> None:
        time.sleep(min(self.rng.uniform(*self.think), max(0, self.deadline - time.monotonic())))

    def timed(self, action: str, method: str, path: str, session=None, **kwargs):
        session = session or self.http
        started = time.perf_counter()
        try:
            response = session.request(
                method, self.url + path, timeout=REQUEST_TIMEOUT, allow_redirects=False, **kwargs
            )
        except requests.RequestException as error:
            self.tally.failed(action, error)
            raise
        self.tally.record(action, time.perf_counter() - started, response.status_code)
        return response

    def csrf(self, html: str) -> str:
        found = _CSRF.search(html)
        return found.group(1) if found else self.http.cookies.get("csrftoken", "")

    def visit(self) -> None:
        page = self.timed("login page", "GET", "/accounts/login/")
        self.pause()
        signed_in = self.timed(
            "sign in",
            "POST",
            "/accounts/login/",
            data={
                "login": self.seeded.customers[self.number],
                "password": PASSWORD,
                "csrfmiddlewaretoken": self.csrf(page.text),
            },
        )
        if signed_in.status_code != 302:
            return
        self.pause()
        self.timed("link center", "GET", "/link/")
        self.pause()
        path = f"/link/service/{self.seeded.service_code}/"
        form = self.timed("service page", "GET", path)
        self.pause()
        target = self.pick()
        if target and form.status_code == 200:
            claimed = self.timed(
                "claim",
                "POST",
                path,
                data={
                    "csrfmiddlewaretoken": self.csrf(form.text),
                    "pw-external_id": target,
                    "pw-password": LEGACY_PASSWORD,
                },
            )
            where = claimed.headers.get("Location", "")
            if claimed.status_code == 302 and "/reauthenticate/" in where:
                # Linking asks for the password again; the claim is replayed after it.
                self.pause()
                page = self.timed("reauth page", "GET", where)
                claimed = self.timed(
                    "reauth+claim",
                    "POST",
                    where,
                    data={"csrfmiddlewaretoken": self.csrf(page.text), "password": PASSWORD},
                )
                where = claimed.headers.get("Location", "")
            if claimed.status_code == 302 and where.rstrip("/").endswith("/link"):
                self.won.add(target)
                with self.tally.lock:
                    self.tally.confirmed.append((target, self.number))
            elif claimed.status_code == 302 and where.rstrip("/").endswith(path.rstrip("/")):
                with self.tally.lock:
                    self.tally.refused += 1
            else:
                with self.tally.lock:
                    self.tally.unexpected[f"claim {claimed.status_code} {where[:40]}"] += 1
            self.pause()
            self.timed("link center", "GET", "/link/")
            self.pause()
        self.vouch()
        external_id = self.rng.choice(self.seeded.contested + self.seeded.own[self.number])
        self.timed(
            "api resolve",
            "GET",
            "/api/v1/resolve",
            session=self.api,
            params={"service": self.seeded.service_code, "external_id": external_id},
        )
        self.pause()
        self.timed(
            "sign out",
            "POST",
            "/accounts/logout/",
            data={"csrfmiddlewaretoken": self.http.cookies.get("csrftoken", "")},
        )
        self.pause()

    def vouch(self) -> None:
        """The service's backend pushes a link request for one of the customer's own
        accounts; the customer opens it and confirms; the backend exchanges the code."""
        if not self.mine:
            return
        target = self.mine.pop()
        pushed = self.timed(
            "vouch push",
            "POST",
            "/api/v1/link-requests",
            session=self.api,
            json={
                "service": self.seeded.service_code,
                "external_id": target,
                "return_url": RETURN_URL,
            },
        )
        if pushed.status_code != 201:
            return
        path = pushed.json()["url"].removeprefix(self.url)
        page = self.timed("vouch page", "GET", path)
        self.pause()
        confirmed = self.timed(
            "vouch confirm", "POST", path, data={"csrfmiddlewaretoken": self.csrf(page.text)}
        )
        where = confirmed.headers.get("Location", "")
        if not (confirmed.status_code == 302 and where.startswith(RETURN_URL + "?code=")):
            with self.tally.lock:
                self.tally.unexpected[f"vouch {confirmed.status_code} {where[:40]}"] += 1
            return
        code = where.split("code=", 1)[1].split("&", 1)[0]
        result = self.timed(
            "vouch exchange", "POST", "/api/v1/link-results", session=self.api, json={"code": code}
        )
        if result.status_code == 200 and result.json()["result"] == "linked":
            self.won.add(target)
            with self.tally.lock:
                self.tally.confirmed.append((target, self.number))
        self.pause()

    def pick(self) -> str | None:
        """Mostly one of their own accounts; one time in five a contested one."""
        if self.rng.random() < 0.2:
            open_ = [x for x in self.seeded.contested if x not in self.won]
            if open_:
                return self.rng.choice(open_)
        return self.mine.pop() if self.mine else None


def fetch_token(url: str, seeded: Seeded) -> str:
    response = requests.post(
        f"{url}/identity/o/api/token",
        data={"grant_type": "client_credentials", "scope": "resolve link_requests"},
        auth=(seeded.client_id, seeded.client_secret),
        timeout=REQUEST_TIMEOUT,
    )
    response.raise_for_status()
    return response.json()["access_token"]


def run_customers(
    url: str, seeded: Seeded, count: int, seconds: float, tally: Tally, *, ramp: float
) -> float:
    """count customer threads for seconds (after a ramp-up); the elapsed time."""
    token = fetch_token(url, seeded)
    started = time.monotonic()
    deadline = started + ramp + seconds
    threads = []
    for number in range(count):
        customer = Customer(number, seeded, url, tally, token)
        thread = threading.Thread(target=customer.run, args=(deadline, (1.0, 3.0)), daemon=True)
        threads.append(thread)
        thread.start()
        time.sleep(ramp / count)
    for thread in threads:
        thread.join(timeout=seconds + ramp + REQUEST_TIMEOUT * 2)
    return time.monotonic() - started


def check_links(tally: Tally, seeded: Seeded) -> list[str]:
    """What must hold in the database afterwards; a list of problems (empty: fine)."""
    from django.db.models import Count, F, Q

    from linking.models import LegacyAccount, LinkEvent

    problems = []
    numbers = {email: n for n, email in enumerate(seeded.customers)}
    accounts = LegacyAccount.objects.filter(service__code=seeded.service_code)
    owners = {
        external_id: numbers.get(email)
        for external_id, email in accounts.filter(owner__isnull=False).values_list(
            "external_id", "owner__email"
        )
    }
    for external_id, number in tally.confirmed:
        if owners.get(external_id) != number:
            problems.append(
                f"lost: {external_id} confirmed to customer {number}, "
                f"owner in DB {owners.get(external_id)}"
            )
    events = LinkEvent.objects.filter(
        account__service__code=seeded.service_code, action=LinkEvent.Action.LINK
    )
    event_count = events.count()
    wrong = accounts.annotate(
        links=Count("link_events", filter=Q(link_events__action=LinkEvent.Action.LINK)),
        own_links=Count(
            "link_events",
            filter=Q(link_events__action=LinkEvent.Action.LINK, link_events__customer=F("owner")),
        ),
    ).filter(
        Q(owner__isnull=False) & (~Q(links=1) | ~Q(own_links=1))
        | Q(owner__isnull=True, links__gt=0)
    )
    for row in wrong.values("external_id", "owner_id", "links", "own_links")[:10]:
        problems.append(f"half-written or duplicated link: {row}")
    if event_count > len(tally.confirmed) + tally.claim_attempts_unanswered:
        problems.append(
            f"{event_count} link events for {len(tally.confirmed)} confirmed claims "
            f"(+{tally.claim_attempts_unanswered} unanswered)"
        )
    if len(owners) != event_count:
        problems.append(f"{len(owners)} owned accounts but {event_count} link events")
    return problems


def report_actions(tally: Tally, elapsed: float) -> None:
    print(f"  {'action':<14} {'count':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for action, values in sorted(tally.latencies.items()):
        print(
            f"  {action:<14} {len(values):>7} {percentile(values, 0.5) * 1000:>8.0f} "
            f"{percentile(values, 0.95) * 1000:>8.0f} {percentile(values, 0.99) * 1000:>8.0f} "
            f"{max(values) * 1000:>8.0f}"
        )
    print(
        f"  requests: {tally.requests():,} in {elapsed:.0f} s "
        f"({tally.requests() / elapsed:.1f}/s); "
        f"by class: {dict(sorted(tally.statuses.items()))}; failures: {dict(tally.failures) or 0}"
    )
    print(
        f"  claims: {len(tally.confirmed)} confirmed ({len(tally.confirmed) / elapsed:.2f}/s), "
        f"{tally.refused} refused (taken by another customer)"
    )


def main() -> None:
    args = _common.setup(__doc__.splitlines()[0])
    from django.db import connection

    customers, seconds = QUICK if args.quick else FULL
    print(f"bench.load: {customers} customers for {seconds} s, database {connection.vendor}")
    print(f"  before: {uptime()}")
    started = time.monotonic()
    seeded = seed(customers)
    print(
        f"  seeded {customers} customers, {customers * OWN_ACCOUNTS + CONTESTED:,} legacy accounts "
        f"in {time.monotonic() - started:.1f} s"
    )
    web = Web().start()
    print(f"  gunicorn: {web.workers} sync workers on {os.cpu_count()} CPUs, {web.url}")
    tally = Tally()
    try:
        elapsed = run_customers(
            web.url, seeded, customers, seconds, tally, ramp=min(20, seconds / 5)
        )
    finally:
        web.stop()
    print(f"  after: {uptime()}")
    report_actions(tally, elapsed)
    problems = check_links(tally, seeded)
    if tally.server_errors():
        problems.append(f"{tally.server_errors()} responses with 5xx")
    if tally.unexpected:
        problems.append(f"unexpected claim answers: {dict(tally.unexpected)}")
    if tally.failures:
        problems.append(f"failed requests: {dict(tally.failures)}")
    for problem in problems[:20]:
        print(f"  problem: {problem}")
    if problems and web.errors():
        print(web.errors()[-3000:])
    verdict = "PASS" if not problems else "FAIL"
    print(f"{verdict}: {tally.server_errors()} 5xx, {len(problems)} problems")
    all_latencies = [v for values in tally.latencies.values() for v in values]
    print(
        json.dumps(
            {
                "bench": "load",
                "value": round(tally.requests() / elapsed, 2),
                "unit": "requests/s",
                "customers": customers,
                "seconds": seconds,
                "p95_ms": round(percentile(all_latencies, 0.95) * 1000, 1),
                "claims": len(tally.confirmed),
                "vouch_confirm_p95_ms": round(
                    percentile(tally.latencies["vouch confirm"], 0.95) * 1000, 1
                ),
                "server_errors": tally.server_errors(),
                "pass": not problems,
                "quick": args.quick,
            }
        ),
        flush=True,
    )
    web.log_path.unlink(missing_ok=True)
    if problems:
        sys.exit(1)


if __name__ == "__main__":
    main()
