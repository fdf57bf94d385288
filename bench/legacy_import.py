"""Import of legacy accounts: our importer next to Django's bulk_create, same rows.

Generates realistic Japanese records (kanji and kana names, emails, phone numbers
written every way legacy systems write them, some birth dates) into a CSV file,
then on the configured database:

- ours: `linking.importing.import_legacy_accounts` on that file, timed end to end
  (reading, validation, normalization, COPY, merge, commit), with the peak memory
  (max RSS) of this process and of its worker processes;
- baseline: the same rows, already parsed and normalized outside the clock,
  written with `LegacyAccount.objects.bulk_create(batch_size=1000)`; only the
  bulk_create calls are timed, which flatters the baseline.

Target: at least 3x the baseline. The rows are deleted at the end.

    python -m bench.legacy_import [--rows N] [--quick]
"""

import argparse
import csv
import os
import random
import resource
import tempfile
import time
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import django

from bench._names import DOMAINS, FAMILY, GIVEN

FULL_ROWS = 1_000_000
QUICK_ROWS = 20_000
TARGET_RATIO = 3.0
BATCH = 1000
SERVICE_PREFIX = "bench-import"

_FULL_WIDTH = str.maketrans("0123456789-", "０１２３４５６７８９－")


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, help=f"rows to import (default {FULL_ROWS:,})")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_ROWS:,} rows, a smoke run")
    args = parser.parse_args()
    args.rows = args.rows or (QUICK_ROWS if args.quick else FULL_ROWS)
    return args


def _phone(rng: random.Random) -> str:
    mobile = rng.random() < 0.75
    digits = f"0{rng.choice('789')}0{rng.randint(1000, 9999)}{rng.randint(0, 9999):04d}"
    if not mobile:
        digits = f"0{rng.randint(3, 6)}{rng.randint(1000, 9999)}{rng.randint(0, 9999):04d}"
    head, mid, tail = (digits[:3], digits[3:7], digits[7:]) if mobile else (digits[:2], "", "")
    style = rng.random()
    if style < 0.4:
        return f"{head}-{mid}-{tail}" if mobile else f"{digits[:2]}-{digits[2:6]}-{digits[6:]}"
    if style < 0.6:
        return digits
    if style < 0.75:
        return "+81 " + digits[1:3] + " " + digits[3:7] + " " + digits[7:]
    if style < 0.85:
        return digits.translate(_FULL_WIDTH)
    if style < 0.92:
        return f"({digits[:3]}) {digits[3:7]}-{digits[7:]}"
    return ""


def _birth_date(rng: random.Random) -> str:
    if rng.random() < 0.3:
        return ""
    year, month, day = rng.randint(1940, 2008), rng.randint(1, 12), rng.randint(1, 28)
    style = rng.random()
    if style < 0.6:
        return f"{year}-{month:02d}-{day:02d}"
    if style < 0.85:
        return f"{year}/{month}/{day}"
    return f"{year}{month:02d}{day:02d}"


def _row(rng: random.Random, number: int) -> list[str]:
    family, given = rng.choice(FAMILY), rng.choice(GIVEN)
    space = rng.choice([" ", "　", ""])
    kana = f"{family[1]}{space}{given[1]}"
    if rng.random() < 0.2:
        kana = kana.translate(_HALF_WIDTH_KANA)
    email = ""
    if rng.random() < 0.85:
        local = f"{given[2]}.{family[2]}{rng.randint(1, 9999)}"
        email = f"{local.upper() if rng.random() < 0.1 else local}@{rng.choice(DOMAINS)}"
    password = f"sha256${rng.getrandbits(32):08x}${rng.getrandbits(256):064x}"
    return [
        f"M{number:09d}",
        email,
        _phone(rng),
        f"{family[0]}{space}{given[0]}",
        kana,
        _birth_date(rng),
        password if rng.random() < 0.4 else "",
        str(rng.randint(0, 50_000)),
        rng.choice(["", "", "silver", "gold", "platinum"]),
    ]


def _half_width_kana() -> dict[int, str]:
    # NFKC maps each half-width katakana to its full-width form; invert that.
    table: dict[int, str] = {}
    for code in range(0xFF61, 0xFFA0):
        full = unicodedata.normalize("NFKC", chr(code))
        if len(full) == 1:
            table[ord(full)] = chr(code)
    for base in "カキクケコサシスセソタチツテトハヒフヘホ":
        voiced = chr(ord(base) + 1)
        table[ord(voiced)] = table[ord(base)] + "ﾞ"
    return table


_HALF_WIDTH_KANA = _half_width_kana()


def generate(path: Path, rows: int) -> None:
    """The importer's columns in its order, then "rank" (an attribute)."""
    from linking.importing import COLUMNS

    rng = random.Random(20261123)
    with path.open("w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file)
        writer.writerow([*COLUMNS, "rank"])
        writer.writerows(_row(rng, number) for number in range(1, rows + 1))


def _service(kind: str):
    from linking.models import LegacyService

    return LegacyService.objects.create(
        code=f"{SERVICE_PREFIX}-{kind}-{os.getpid()}", name_ja=f"ベンチマーク ({kind})"
    )


def _remove_leftovers() -> None:
    """Delete the bench's services and their rows, also those of an interrupted run.

    Raw SQL: the ORM's delete() would load a million rows to collect relations. On
    PostgreSQL the table is vacuumed afterwards, so every run starts from the same
    state instead of inserting next to a million dead rows of the previous one."""
    from django.db import connection

    pattern = SERVICE_PREFIX + "-%"
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM linking_legacyaccount WHERE service_id IN "
            "(SELECT id FROM linking_legacyservice WHERE code LIKE %s)",
            [pattern],
        )
        deleted = cursor.rowcount
        cursor.execute("DELETE FROM linking_legacyservice WHERE code LIKE %s", [pattern])
        if deleted and connection.vendor == "postgresql":
            cursor.execute("VACUUM ANALYZE linking_legacyaccount")


def _peak_mib() -> tuple[float, float]:
    """Max RSS so far of this process and of its largest finished child, in MiB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return own / 1024, children / 1024


def time_ours(path: Path, rows: int) -> float:
    from linking.importing import import_legacy_accounts

    service = _service("ours")
    before, _ = _peak_mib()
    started = time.perf_counter()
    result = import_legacy_accounts(service=service, path=path)
    elapsed = time.perf_counter() - started
    assert result.inserted == rows and result.rejected == 0, result
    own, workers = _peak_mib()
    print(
        f"  peak memory (max RSS): this process {own:.0f} MiB ({before:.0f} MiB before the "
        f"import), largest worker process {workers:.0f} MiB"
    )
    started = time.perf_counter()
    again = import_legacy_accounts(service=service, path=path)
    own, workers = _peak_mib()
    print(
        f"  re-import of the unchanged file: {time.perf_counter() - started:.1f} s, "
        f"{again.unchanged:,} rows unchanged, {again.inserted + again.updated} written; "
        f"peak memory now {own:.0f} MiB, workers {workers:.0f} MiB"
    )
    return elapsed


def _accounts(service, path: Path) -> Iterator[list]:
    """The same rows as LegacyAccount objects, parsed by the importer's own code."""
    from linking.importing import valid_records
    from linking.models import LegacyAccount

    batch = []
    for record in valid_records(path, "utf-8"):
        batch.append(LegacyAccount(service=service, **record._asdict()))
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def time_bulk_create(path: Path) -> float:
    from linking.models import LegacyAccount

    service = _service("bulk-create")
    elapsed = 0.0
    # Autocommit: each bulk_create call commits its own batch, as a plain loader would.
    for batch in _accounts(service, path):
        started = time.perf_counter()
        LegacyAccount.objects.bulk_create(batch, batch_size=BATCH)
        elapsed += time.perf_counter() - started
    return elapsed


def main() -> None:
    args = _arguments()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from django.db import connection

    from bench._common import report

    database = f"{connection.vendor} ({connection.settings_dict['NAME']})"
    print(f"legacy import: {args.rows:,} rows on {database}")
    _remove_leftovers()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "legacy.csv"
        started = time.perf_counter()
        generate(path, args.rows)
        size = path.stat().st_size / 1e6
        print(f"  generated {path.name}: {size:.0f} MB in {time.perf_counter() - started:.1f} s")
        try:
            ours = time_ours(path, args.rows)
            baseline = time_bulk_create(path)
        finally:
            _remove_leftovers()
    ours_rate, baseline_rate = args.rows / ours, args.rows / baseline
    print(f"  importer (reading and normalization included): {ours:.1f} s, {ours_rate:,.0f} rows/s")
    print(
        f"  bulk_create, batch {BATCH} (timed calls only): {baseline:.1f} s, "
        f"{baseline_rate:,.0f} rows/s"
    )
    target = TARGET_RATIO * baseline_rate
    report(
        bench="legacy_import",
        value=ours_rate,
        unit="rows/s",
        baseline=baseline_rate,
        target=round(target),
        quick=args.quick,
    )


if __name__ == "__main__":
    main()
