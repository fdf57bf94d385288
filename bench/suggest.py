"""Suggestion lookup ("these may be yours") among a million legacy accounts.

Loads generated legacy accounts into three services (COPY on PostgreSQL, bulk_create
elsewhere), match keys computed by linking.normalize, then creates customers with
verified emails: half of them carry the email of some legacy records (a few carry
two), half match nothing. Then, on the configured database:

- ours: `list(linking.selectors.suggestions(customer))` per customer, timed end to
  end (the customer's verified emails, then the accounts by email_key);
- baseline: the same lookup written on an expression no index serves,
  `email__iexact` (UPPER("email") = UPPER(%s) on PostgreSQL), for fewer customers
  because each one scans the table. Both must return the same accounts.

Prints the median and p95 in ms of each, and the query plan of ours. The JSON
line's value is our median; ratio is baseline median / our median (how many times
faster); target: median at most 5 ms. The bench's rows are deleted at the end.

    python -m bench.suggest [--rows N] [--quick]
"""

import argparse
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from datetime import date

import django

from bench._names import DOMAINS, FAMILY, GIVEN

FULL_ROWS = 1_000_000
QUICK_ROWS = 20_000
TARGET_MEDIAN_MS = 5.0
SERVICE_PREFIX = "bench-suggest"
CUSTOMER_DOMAIN = "bench-suggest.invalid"
SERVICES = ("store", "membership", "newsletter")
PERSONS_PER_ROW = 0.6  # about 1.7 legacy accounts per person
CUSTOMERS = {"full": 1000, "quick": 200}
BASELINE_CUSTOMERS = {"full": 40, "quick": 40}
ROUNDS = 3
BATCH = 5000

COLUMNS = (
    "service_id",
    "external_id",
    "email",
    "phone",
    "name",
    "name_kana",
    "birth_date",
    "password_hash",
    "points",
    "attributes",
    "email_key",
    "phone_key",
    "name_key",
    "row_hash",
    "imported_at",
    "updated_at",
)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, help=f"legacy accounts (default {FULL_ROWS:,})")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_ROWS:,} rows, a smoke run")
    args = parser.parse_args()
    args.rows = args.rows or (QUICK_ROWS if args.quick else FULL_ROWS)
    return args


def person_email(person: int) -> str:
    """The one email address a generated person uses at every service."""
    rng = random.Random(person)
    family, given = rng.choice(FAMILY), rng.choice(GIVEN)
    return f"{given[2]}.{family[2]}{person}@{rng.choice(DOMAINS)}"


def _rows(service_ids: list[int], rows: int) -> Iterator[tuple]:
    """Legacy accounts as COPY rows; persons are spread at random over the accounts."""
    from django.utils import timezone

    from linking import normalize

    rng = random.Random(20261124)
    persons = max(1, int(rows * PERSONS_PER_ROW))
    now = timezone.now()
    for number in range(1, rows + 1):
        person = rng.randrange(persons)
        family, given = rng.choice(FAMILY), rng.choice(GIVEN)
        email = ""
        if rng.random() < 0.85:
            email = person_email(person)
            if rng.random() < 0.1:
                email = email.upper()
        mobile = f"0{rng.choice('789')}0{rng.randint(1000, 9999)}{rng.randint(0, 9999):04d}"
        name = f"{family[0]} {given[0]}"
        born = date(rng.randint(1940, 2008), rng.randint(1, 12), rng.randint(1, 28))
        yield (
            service_ids[number % len(service_ids)],
            f"B{number:09d}",
            email,
            f"{mobile[:3]}-{mobile[3:7]}-{mobile[7:]}",
            name,
            f"{family[1]} {given[1]}",
            born if rng.random() < 0.7 else None,
            "",
            rng.randint(0, 50_000),
            "{}",
            normalize.normalize_email(email),
            "+81" + mobile[1:],
            normalize.normalize_name(name),
            "",
            now,
            now,
        )


def _copy(rows: Iterator[tuple]) -> None:
    from django.db import connection

    sql = f"COPY linking_legacyaccount ({', '.join(COLUMNS)}) FROM STDIN"
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for row in rows:
            copy.write_row(row)


def _bulk_create(rows: Iterator[tuple]) -> None:
    from linking.models import LegacyAccount

    batch = []
    for row in rows:
        fields = dict(zip(COLUMNS, row, strict=True))
        fields["attributes"] = {}
        batch.append(LegacyAccount(**fields))
        if len(batch) == BATCH:
            LegacyAccount.objects.bulk_create(batch)
            batch = []
    LegacyAccount.objects.bulk_create(batch)


def load(rows: int) -> None:
    from django.db import connection, transaction

    from linking.models import LegacyService

    services = [
        LegacyService.objects.create(
            code=f"{SERVICE_PREFIX}-{kind}",
            name_ja=f"ベンチマーク ({kind})",
            accepted_proofs=["code"],
        )
        for kind in SERVICES
    ]
    service_ids = [service.pk for service in services]
    started = time.perf_counter()
    with transaction.atomic():
        (_copy if connection.vendor == "postgresql" else _bulk_create)(_rows(service_ids, rows))
    elapsed = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE linking_legacyaccount")
    print(f"  loaded {rows:,} legacy accounts in {elapsed:.1f} s, then ANALYZE", flush=True)


def make_customers(rows: int, count: int) -> list:
    """Customers with verified emails: even ones match legacy records (every fifth of
    those has a second matching address), odd ones match nothing."""
    from allauth.account.models import EmailAddress

    from accounts.models import Customer

    persons = max(1, int(rows * PERSONS_PER_ROW))
    # Distinct persons: a verified address belongs to one customer only.
    chosen = iter(random.Random(7).sample(range(persons), min(persons, count)))
    customers = []
    for index in range(count):
        if index % 2:
            emails = [f"nobody{index}@{CUSTOMER_DOMAIN}"]
        else:
            emails = [person_email(next(chosen))]
            if index % 10 == 0:
                emails.append(person_email(next(chosen)))
        customer = Customer.objects.create_user(f"customer{index}@{CUSTOMER_DOMAIN}", None)
        EmailAddress.objects.bulk_create(
            EmailAddress(user=customer, email=email, verified=True, primary=position == 0)
            for position, email in enumerate(emails)
        )
        customers.append(customer)
    return customers


def baseline_suggestions(customer) -> list:
    """The same lookup on raw emails, case-insensitively: no index serves it."""
    from allauth.account.models import EmailAddress
    from django.db.models import Q

    from linking.models import LegacyAccount

    emails = EmailAddress.objects.filter(user=customer, verified=True).values_list(
        "email", flat=True
    )
    matches = Q()
    for email in emails:
        matches |= Q(email__iexact=email)
    if not matches:
        return []
    return list(
        LegacyAccount.objects.filter(matches, owner__isnull=True)
        .select_related("service")
        .order_by("service__code", "external_id")
    )


def ours(customer) -> list:
    from linking.selectors import suggestions

    return list(suggestions(customer))


def time_lookups(lookup: Callable, customers: list, rounds: int) -> tuple[list[float], list]:
    """Milliseconds per lookup over all rounds, and the results of the last round.
    The first round may find rows only in the OS cache, later ones in the database's
    own buffers: each round's median is printed."""
    lookup(customers[0])  # warm up: connection, caches
    timings, results = [], []
    for number in range(1, rounds + 1):
        results, round_timings = [], []
        for customer in customers:
            started = time.perf_counter()
            found = lookup(customer)
            round_timings.append((time.perf_counter() - started) * 1000)
            results.append(found)
        if rounds > 1:
            print(f"    round {number}: median {statistics.median(round_timings):.2f} ms")
        timings += round_timings
    return timings, results


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[-1]


def show_plan(customer) -> None:
    from django.db import connection

    from linking.selectors import suggestions

    if connection.vendor != "postgresql":
        return
    plan = suggestions(customer).explain()
    print("  plan of ours:\n    " + plan.replace("\n", "\n    "))


def remove_leftovers() -> None:
    """Delete the bench's services, rows and customers, also those of an interrupted run.

    Raw SQL: the ORM's delete() would load a million rows to collect relations."""
    from django.db import connection, transaction

    services, customers = [SERVICE_PREFIX + "-%"], ["%@" + CUSTOMER_DOMAIN]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM linking_legacyaccount WHERE service_id IN"
            " (SELECT id FROM linking_legacyservice WHERE code LIKE %s)",
            services,
        )
        cursor.execute("DELETE FROM linking_legacyservice WHERE code LIKE %s", services)
        cursor.execute(
            "DELETE FROM account_emailaddress WHERE user_id IN"
            " (SELECT id FROM accounts_customer WHERE email LIKE %s)",
            customers,
        )
        cursor.execute("DELETE FROM accounts_customer WHERE email LIKE %s", customers)


def main() -> None:
    args = _arguments()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from django.db import connection

    size = "quick" if args.quick else "full"
    load_average = ", ".join(f"{figure:.2f}" for figure in os.getloadavg())
    print(
        f"bench.suggest: suggestion lookup among {args.rows:,} legacy accounts, "
        f"database: {connection.vendor}{' (quick run)' if args.quick else ''}, "
        f"{os.cpu_count()} CPUs, load average {load_average}",
        flush=True,
    )
    remove_leftovers()
    try:
        load(args.rows)
        customers = make_customers(args.rows, CUSTOMERS[size])
        show_plan(customers[0])
        timings, found = time_lookups(ours, customers, ROUNDS)
        matched = sum(1 for accounts in found if accounts)
        print(
            f"  ours: {len(timings):,} lookups for {len(customers)} customers "
            f"({matched} with suggestions, {sum(map(len, found)):,} accounts suggested): "
            f"median {statistics.median(timings):.2f} ms, p95 {p95(timings):.2f} ms",
            flush=True,
        )
        sample = customers[: BASELINE_CUSTOMERS[size]]
        base_timings, base_found = time_lookups(baseline_suggestions, sample, 1)
        if [[a.pk for a in accounts] for accounts in base_found] != [
            [a.pk for a in accounts] for accounts in found[: len(sample)]
        ]:
            raise RuntimeError("the baseline found other accounts than ours")
        print(
            f"  baseline (email__iexact, unindexed): {len(base_timings)} lookups: "
            f"median {statistics.median(base_timings):.2f} ms, p95 {p95(base_timings):.2f} ms",
            flush=True,
        )
    finally:
        remove_leftovers()
    value, baseline = statistics.median(timings), statistics.median(base_timings)
    result = {
        "bench": "suggest",
        "value": round(value, 3),
        "unit": "ms median",
        "baseline": round(baseline, 2),
        "ratio": round(baseline / value, 1),
        "target": TARGET_MEDIAN_MS,
        "meets": value <= TARGET_MEDIAN_MS,
        "p95": round(p95(timings), 3),
        "quick": args.quick,
    }
    sys.stdout.flush()
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
