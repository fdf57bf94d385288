"""Resolve throughput and p99 under gunicorn, next to a bare Django JSON endpoint.

The site runs under gunicorn on loopback (4 gthread workers x 4 threads, the same
for both endpoints: bench/_resolve_urls.py adds /bench/bare to the site's URLs),
against the configured database and cache (PostgreSQL and Redis for real figures).
A separate process (bench/_load.py) drives it over keep-alive connections:

1. peak: as fast as answers come, the bare endpoint and GET /api/v1/resolve with a
   client-credentials token (auth from the cache, rate limit in the cache, one
   query, one ApiCall audit row per call), in ROUNDS alternating rounds; each
   endpoint's peak is the median of its rounds. Alternating gives both the same
   spells of the machine, and each round spreads its new connections over the
   workers anew (one uneven spread, which idles a core, is one round of five);
2. half of the resolve peak on a fixed schedule: p99 latency.

Targets: resolve >= 1,000 req/s, >= 60% of bare, p99 <= 20 ms at half of peak.
The last line is the JSON of bench/_common.py.

    python -m bench.resolve [--quick]
"""

import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from bench._common import report, setup

TARGET_RATE = 1000.0
TARGET_RATIO = 0.6
TARGET_P99_MS = 20.0
ACCOUNTS = 20_000
ROUNDS = 5
SERVICE = "bench-resolve"
BASE_DIR = Path(__file__).resolve().parent.parent


def _prepare(count: int) -> tuple[str, str]:
    """The service, count linked accounts and a client that may see them."""
    from allauth.idp.oidc.models import Client
    from django.utils import timezone

    from accounts import unified_id
    from accounts.models import Customer, IssuedUnifiedID
    from linking.api.models import ServiceClient
    from linking.models import LegacyAccount, LegacyService

    service, _ = LegacyService.objects.get_or_create(
        code=SERVICE, defaults={"name_ja": "ベンチ", "name_en": "bench"}
    )
    have = LegacyAccount.objects.filter(service=service).count()
    if have < count:
        ids = list({unified_id.generate() for _ in range(count - have)})
        IssuedUnifiedID.objects.bulk_create([IssuedUnifiedID(unified_id=i) for i in ids])
        customers = Customer.objects.bulk_create(
            [Customer(unified_id=i, email=None, password="!") for i in ids]
        )
        now = timezone.now()
        LegacyAccount.objects.bulk_create(
            [
                LegacyAccount(
                    service=service,
                    external_id=f"B{have + n:08d}",
                    owner=customer,
                    linked_at=now,
                )
                for n, customer in enumerate(customers)
            ],
            batch_size=2000,
        )
    client = Client.objects.filter(name=SERVICE).first() or Client(name=SERVICE)
    secret = f"bench-{random.getrandbits(64):x}"
    client.set_secret(secret)
    client.set_scopes(["resolve"])
    client.set_grant_types(["client_credentials"])
    client.save()
    access, _ = ServiceClient.objects.get_or_create(client=client)
    access.rate_limit_per_minute = 10**9
    access.save()
    access.services.set([service])
    return client.id, secret


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _gunicorn(port: int, log: Path) -> subprocess.Popen:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bench._resolve_site", "DEBUG": "0"}
    env["ALLOWED_HOSTS"] = "127.0.0.1,localhost"
    command = [
        sys.executable, "-m", "gunicorn", "config.wsgi:application", "--preload",
        "--bind", f"127.0.0.1:{port}", "--workers", "4", "--worker-class", "gthread",
        "--threads", "4", "--keep-alive", "30", "--log-level", "warning",
    ]  # fmt: skip
    return subprocess.Popen(
        command, cwd=BASE_DIR, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip


def _wait_for(url: str, server: subprocess.Popen) -> None:
    for _ in range(300):
        if server.poll() is not None:
            raise RuntimeError("gunicorn exited")
        try:
            if requests.get(url, timeout=30).status_code < 500:
                return
        except (requests.ConnectionError, requests.Timeout):
            pass
        time.sleep(0.1)
    raise RuntimeError("gunicorn did not start")


def _load(port: int, paths: Path, seconds: float, threads: int, rate: float = 0, token=""):
    command = [
        sys.executable, "-m", "bench._load", "127.0.0.1", str(port), str(paths),
        str(seconds), str(threads), str(rate), token,
    ]  # fmt: skip
    output = subprocess.run(command, cwd=BASE_DIR, capture_output=True, text=True, check=True)
    return json.loads(output.stdout.strip().splitlines()[-1])


def _median(loads: list[dict]) -> dict:
    """The load with the median rate (of an odd number)."""
    return sorted(loads, key=lambda load: load["rate"])[len(loads) // 2]


def main() -> None:
    args = setup(__doc__.splitlines()[0])
    seconds = 3.0 if args.quick else 15.0
    count = 2_000 if args.quick else ACCOUNTS
    client_id, secret = _prepare(count)
    port = _free_port()
    folder = Path(tempfile.mkdtemp(prefix="bench-resolve-"))
    server = _gunicorn(port, folder / "gunicorn.log")
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_for(f"{base}/api/v1/openapi.json", server)
        token = requests.post(
            f"{base}/identity/o/api/token",
            data={"grant_type": "client_credentials", "scope": "resolve"},
            auth=(client_id, secret),
            timeout=30,
        ).json()["access_token"]
        resolve_paths = folder / "resolve.txt"
        # Nine in ten asked-for accounts are linked; the rest are unknown (404).
        asked = (random.randrange(count * 10 // 9) for _ in range(5000))
        resolve_paths.write_text(
            "\n".join(f"/api/v1/resolve?service={SERVICE}&external_id=B{n:08d}" for n in asked)
        )
        bare_paths = folder / "bare.txt"
        bare_paths.write_text("/bench/bare\n")

        _load(port, bare_paths, 1.0, 8)  # warm-up: workers, connections, caches
        _load(port, resolve_paths, 1.0, 8, token=token)
        bares, resolves = [], []
        for number in range(ROUNDS):
            bares.append(_load(port, bare_paths, seconds / ROUNDS, 16))
            resolves.append(_load(port, resolve_paths, seconds / ROUNDS, 16, token=token))
            print(
                f"round {number + 1}: bare {bares[-1]['rate']:.0f} req/s, "
                f"resolve {resolves[-1]['rate']:.0f} req/s"
            )
        bare, resolve = _median(bares), _median(resolves)
        half = _load(port, resolve_paths, seconds, 16, rate=resolve["rate"] / 2, token=token)
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)

    errors = sum(load["errors"] for load in [*resolves, half])
    ratio = resolve["rate"] / bare["rate"] if bare["rate"] else 0.0
    print(f"bare endpoint, peak (median round):  {bare}")
    print(f"resolve, peak (median round):        {resolve}")
    print(f"resolve, half of peak:               {half}")
    print(
        f"resolve {resolve['rate']:.0f} req/s = {ratio:.0%} of bare {bare['rate']:.0f} req/s; "
        f"p99 at {half['rate']:.0f} req/s: {half['p99_ms']:.1f} ms; "
        f"errors {errors}; {os.cpu_count()} CPUs"
    )
    meets = (
        resolve["rate"] >= TARGET_RATE
        and ratio >= TARGET_RATIO
        and half["p99_ms"] <= TARGET_P99_MS
        and errors == 0
    )
    report(
        bench="resolve",
        value=resolve["rate"],
        unit="req/s",
        baseline=bare["rate"],
        target=TARGET_RATE,
        quick=args.quick,
        meets=meets,
    )


if __name__ == "__main__":
    main()
