"""Password sign-ins per second on one core: our Argon2id next to Django's default PBKDF2.

Each sign-in is `django.contrib.auth.authenticate(email=..., password=...)` against the
configured database: one query for the customer, one password check. The process is
pinned to one CPU. Each hasher runs in batches; the reported rate is that of the
fastest batch (as timeit does: slower batches measure other processes competing for
the CPU, not the work), with the median batch and this process's CPU time printed
beside it. Everything the benchmark writes (its customers) lives inside one
transaction that is rolled back at the end, so the database is left as it was, also
if the run is interrupted.

    python -m bench.login [--quick]
"""

import os
import platform
import statistics
import time
import uuid
from dataclasses import dataclass

from bench._common import report, setup

TARGET = 20.0  # sign-ins per second per core
PASSWORD = "bench-Login-4821"


@dataclass(frozen=True)
class Hasher:
    label: str
    path: str
    batch_size: int


OURS = Hasher("Argon2id, ours", "accounts.hashers.Argon2idPasswordHasher", 20)
DJANGO_ARGON2 = Hasher(
    "Argon2id, Django's default parameters", "django.contrib.auth.hashers.Argon2PasswordHasher", 3
)
DJANGO_DEFAULT = Hasher(
    "PBKDF2-SHA256, Django's default hasher", "django.contrib.auth.hashers.PBKDF2PasswordHasher", 2
)
FULL_BATCHES = 15


@dataclass(frozen=True)
class Measurement:
    parameters: str
    sign_ins: int
    best: float  # sign-ins per second in the fastest batch
    median: float  # sign-ins per second in the median batch
    cpu: float  # sign-ins per second of this process's CPU time, over all batches


def _pin_to_one_cpu() -> int:
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return cpu


def _measure(hasher: Hasher, batches: int) -> Measurement:
    """Create a customer whose password is hashed by hasher, then sign them in batch
    after batch with only that hasher configured (so nothing is rehashed)."""
    from django.contrib.auth import authenticate
    from django.test import override_settings

    from accounts.models import Customer

    email = f"bench-login-{uuid.uuid4().hex[:12]}@bench.invalid"
    rates = []
    with override_settings(PASSWORD_HASHERS=[hasher.path]):
        customer = Customer.objects.create_user(email, PASSWORD)
        authenticate(email=email, password=PASSWORD)  # warm up: connection, caches
        cpu_started = time.process_time()
        for _batch in range(batches):
            started = time.perf_counter()
            for _sign_in in range(hasher.batch_size):
                if authenticate(email=email, password=PASSWORD) is None:
                    raise RuntimeError(f"{hasher.label}: the bench customer could not sign in")
            rates.append(hasher.batch_size / (time.perf_counter() - started))
        cpu_elapsed = time.process_time() - cpu_started
    sign_ins = batches * hasher.batch_size
    return Measurement(
        parameters=_parameters(customer.password),
        sign_ins=sign_ins,
        best=max(rates),
        median=statistics.median(rates),
        cpu=sign_ins / cpu_elapsed,
    )


def _parameters(encoded: str) -> str:
    from django.contrib.auth.hashers import identify_hasher

    decoded = identify_hasher(encoded).decode(encoded)
    if "memory_cost" in decoded:
        return (
            f"m={decoded['memory_cost']} KiB, t={decoded['time_cost']}, p={decoded['parallelism']}"
        )
    return f"{decoded['iterations']:,} iterations"


def main() -> None:
    args = setup("Password sign-ins per second on one core.")
    from django.db import connection, transaction

    cpu = _pin_to_one_cpu()
    load = ", ".join(f"{figure:.2f}" for figure in os.getloadavg())
    print(
        f"bench.login: password sign-ins per second on CPU {cpu} only "
        f"({os.cpu_count()} CPUs, {platform.machine()}, load average {load}), "
        f"database: {connection.vendor}{' (quick run)' if args.quick else ''}"
    )
    print(
        "  best/median: sign-ins per second of elapsed time in the fastest/median batch;"
        " cpu: per second of this process's CPU time"
    )
    batches = 1 if args.quick else FULL_BATCHES
    results = {}
    with transaction.atomic():
        for hasher in (OURS, DJANGO_ARGON2, DJANGO_DEFAULT):
            result = _measure(hasher, batches)
            results[hasher] = result
            print(
                f"  {hasher.label:<40} {result.parameters:<26} {result.sign_ins:>4} sign-ins: "
                f"best {result.best:5.1f}/s ({1000 / result.best:5.1f} ms each), "
                f"median {result.median:5.1f}/s, cpu {result.cpu:5.1f}/s",
                flush=True,
            )
        transaction.set_rollback(True)
    report(
        bench="login",
        value=results[OURS].best,
        unit="sign-ins/s/core",
        baseline=results[DJANGO_DEFAULT].best,
        target=TARGET,
        quick=args.quick,
    )


if __name__ == "__main__":
    main()
