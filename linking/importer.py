"""Import of legacy accounts from a CSV export: validate, normalize, upsert.

Rows are upserted by (service, external_id). Each row carries a hash of its
imported fields, so a row that did not change is never written and importing the
same file twice changes nothing. Ownership (owner, linked_at) is never touched.

The service's existing row hashes are read first (under a lock that serializes
imports of one service), so each valid row is one of: unchanged (skipped before
normalization), new, or changed. On PostgreSQL new rows stream through COPY
straight into the table and changed rows go through a temporary staging table
merged by one INSERT ... ON CONFLICT; elsewhere (SQLite) both are upserted in
batches through the ORM. Where the database role may, the COPY skips PostgreSQL's
per-row foreign-key checks, which cost more than the rest of the COPY: every
copied row has the same service, locked once instead, and no owner.

Rows are read in batches; validation, normalization and formatting of a batch
are pure functions of its rows, so on a large file they run in worker processes
while the parent reads the file and streams the results to the database in file
order. Line numbers, rejects and results are the same either way.
"""

import codecs
import csv
import hashlib
import multiprocessing
import os
import re
import tempfile
import unicodedata
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from itertools import islice
from json.encoder import encode_basestring  # json.dumps(ensure_ascii=False)'s string encoder
from operator import gt, itemgetter
from pathlib import Path
from typing import NamedTuple, Protocol

from django.db import connection, transaction
from django.utils import timezone

from linking.models import LegacyAccount, LegacyService
from linking.normalize import normalize_email, normalize_name, normalize_phone
from linking.spreadsheet import safe_cell

COLUMNS = (
    "external_id",
    "email",
    "phone",
    "name",
    "name_kana",
    "birth_date",
    "password_hash",
    "points",
)
TEXT_COLUMNS = ("external_id", "email", "phone", "name", "name_kana", "password_hash")
MAX_LENGTHS = {name: LegacyAccount._meta.get_field(name).max_length for name in TEXT_COLUMNS}
ENCODINGS = ("auto", "utf-8", "cp932")
# Part of every row hash: bump it when normalization changes, so the next import
# rewrites every row with fresh match keys.
KEYS_VERSION = "1"
BATCH_ROWS = 5000
# Files smaller than this are imported in this process: starting workers costs more.
PARALLEL_MIN_BYTES = 4 * 1024 * 1024
_MAX_WORKERS = 8
# pg_advisory_xact_lock(namespace, service id): one import per service at a time.
_LOCK_NAMESPACE = 0x4C49  # "LI"
_POINTS_LIMIT = 2**31 - 1
_EARLIEST_BIRTH = date(1870, 1, 1)
_SAMPLE_BYTES = 4 * 1024 * 1024
_ORM_BATCH_ROWS = 2000
# Memo tables for values that repeat across rows (dates, names); cleared when full.
_MEMO_LIMIT = 100_000
_SURROGATE = re.compile("[\udc80-\udcff]")
_UNSTORABLE = re.compile("[\x00\udc80-\udcff]")
_DATE_SEPARATED = re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})")
_DATE_COMPACT = re.compile(r"(\d{4})(\d{2})(\d{2})")

UNCHANGED, NEW, CHANGED = 0, 1, 2


class ImportFileError(Exception):
    """The file as a whole cannot be imported (nothing was written)."""


class RowError(Exception):
    """One row is rejected; the message is the reason shown in the report."""


@dataclass(frozen=True)
class Reject:
    line: int
    external_id: str
    reason: str


@dataclass
class ImportResult:
    encoding: str = ""
    read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejects: list[Reject] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return len(self.rejects)


class Record(NamedTuple):
    """A valid row, ready to write: imported fields, match keys and row hash."""

    line: int
    external_id: str
    email: str
    phone: str
    name: str
    name_kana: str
    birth_date: date | None
    password_hash: str
    points: int
    attributes: dict[str, str]
    attributes_json: str
    email_key: str
    phone_key: str
    name_key: str
    row_hash: str


def import_legacy_accounts(
    *,
    service: LegacyService,
    path: Path,
    encoding: str = "auto",
    progress: Callable[[int], None] | None = None,
    workers: int | None = None,
    batch_rows: int = BATCH_ROWS,
) -> ImportResult:
    """Import one CSV file into one service's legacy accounts, in one transaction.

    workers: processes that validate and normalize batches of rows; None picks one
    per CPU for files of PARALLEL_MIN_BYTES or more, 0 or 1 keeps the work in this
    process."""
    result = ImportResult(encoding=_resolve_encoding(path, encoding))
    if workers is None:
        workers = _default_workers(path)
    postgresql = connection.vendor == "postgresql"
    with path.open(encoding=result.encoding, errors="surrogateescape", newline="") as file:
        rows = csv.reader(file)
        layout = _Layout.of(_read_header(rows))
        with transaction.atomic():
            if postgresql:
                _lock_service(service)
            prefix = _copy_prefix(service) if postgresql else None
            preparer = _Preparer(layout, _existing_hashes(service), copy_prefix=prefix)
            batches = _checked(
                _prepared_batches(rows, preparer, workers, batch_rows), result, progress
            )
            writer = _copy_write if postgresql else _orm_write
            result.inserted, result.updated = writer(service, batches)
    result.unchanged = result.read - result.rejected - result.inserted - result.updated
    return result


def valid_records(
    rows: "_Rows", result: ImportResult, progress: Callable[[int], None] | None
) -> Iterator[Record]:
    """Records from the rows that pass validation; the others land in result.rejects.

    Every valid row is yielded (nothing is compared with the database)."""
    layout = _Layout.of(_read_header(rows))
    preparer = _Preparer(layout, {}, copy_prefix=None)
    for prepared in _checked(_prepared_batches(rows, preparer, 0, BATCH_ROWS), result, progress):
        yield from _items(prepared, NEW)


def write_report(path: Path, rejects: list[Reject]) -> None:
    """The rejected rows as CSV. Their values come from the imported file, so a cell
    a spreadsheet would run as a formula is written as text."""
    with path.open("w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["line", "external_id", "reason"])
        writer.writerows(
            (r.line, safe_cell(r.external_id), safe_cell(r.reason))
            for r in sorted(rejects, key=_line)
        )


def _line(reject: Reject) -> int:
    return reject.line


def _default_workers(path: Path) -> int:
    if "fork" not in multiprocessing.get_all_start_methods():
        return 0
    if path.stat().st_size < PARALLEL_MIN_BYTES:
        return 0
    return min(os.cpu_count() or 1, _MAX_WORKERS)


# Reading and validating


def _resolve_encoding(path: Path, encoding: str) -> str:
    if encoding not in ENCODINGS:
        raise ImportFileError(f"unknown encoding {encoding!r}; use one of {', '.join(ENCODINGS)}")
    if encoding == "cp932":
        return "cp932"
    if encoding == "utf-8":
        return "utf-8-sig"
    return _detect_encoding(path)


def _detect_encoding(path: Path) -> str:
    """UTF-8 if the file's start decodes strictly as UTF-8, else CP932 (Shift_JIS),
    unless CP932 would fail even more often (a UTF-8 file with a few broken bytes)."""
    with path.open("rb") as file:
        sample = file.read(_SAMPLE_BYTES)
    utf8_errors = _decode_errors(sample, "utf-8")
    if utf8_errors == 0 or utf8_errors <= _decode_errors(sample, "cp932"):
        return "utf-8-sig"
    return "cp932"


def _decode_errors(sample: bytes, encoding: str) -> int:
    # An incremental decoder, so a character cut at the end of the sample is no error.
    text = codecs.getincrementaldecoder(encoding)("surrogateescape").decode(sample)
    return len(_SURROGATE.findall(text))


@dataclass(frozen=True)
class _Layout:
    """Where each column sits in this file's header: computed once per file."""

    header: list[str]
    positions: tuple[int, ...]  # of COLUMNS, in that order
    extra: tuple[tuple[str, int], ...]  # other columns, for attributes, sorted by name
    today: date

    @classmethod
    def of(cls, header: list[str]) -> "_Layout":
        extra = tuple(sorted((c, i) for i, c in enumerate(header) if c not in COLUMNS))
        positions = tuple(header.index(column) for column in COLUMNS)
        return cls(header, positions, extra, timezone.localdate())


class _Rows(Protocol):
    line_num: int

    def __iter__(self) -> Iterator[list[str]]: ...

    def __next__(self) -> list[str]: ...


class _Prepared(NamedTuple):
    """One batch of rows, validated; per valid row its external_id, line, kind
    (UNCHANGED, NEW or CHANGED) and item (a COPY line or a Record; None if unchanged)."""

    read: int
    ids: list[str]
    lines: list[int]
    kinds: list[int]
    items: list
    rejects: list[Reject]


def _read_batches(rows: _Rows, batch_rows: int) -> Iterator[tuple[int, list[list[str]]]]:
    """(line where the batch starts, its rows): the C csv reader does all the reading."""
    try:
        while True:
            start = rows.line_num + 1
            batch = list(islice(rows, batch_rows))
            if not batch:
                return
            yield start, batch
    except csv.Error as error:
        raise ImportFileError(f"line {rows.line_num}: not valid CSV ({error})") from None


def _prepared_batches(
    rows: _Rows, preparer: "_Preparer", workers: int, batch_rows: int
) -> Iterator[_Prepared]:
    """The prepared batches in file order, from worker processes when workers > 1."""
    batches = _read_batches(rows, batch_rows)
    pool = _pool(preparer, workers) if workers > 1 else None
    if pool is None:
        for start, batch in batches:
            yield preparer.batch(start, batch)
        return
    with pool:  # terminates the workers however this generator ends
        pending: deque = deque()
        for task in batches:
            pending.append(pool.apply_async(_prepare_in_worker, task))
            if len(pending) >= 2 * workers:  # bounded read-ahead
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


def _pool(preparer: "_Preparer", workers: int):
    # Forked workers inherit the preparer (and its existing hashes) without pickling
    # and never touch the database connection.
    try:
        context = multiprocessing.get_context("fork")
        return context.Pool(workers, _start_worker, (preparer,))
    except (AssertionError, OSError, ValueError):  # no fork, or a daemonic process
        return None


_worker_preparer: "_Preparer | None" = None


def _start_worker(preparer: "_Preparer") -> None:
    global _worker_preparer
    _worker_preparer = preparer


def _prepare_in_worker(start: int, rows: list[list[str]]) -> _Prepared:
    assert _worker_preparer is not None
    return _worker_preparer.batch(start, rows)


def _checked(
    batches: Iterator[_Prepared], result: ImportResult, progress: Callable[[int], None] | None
) -> Iterator[_Prepared]:
    """Batches with repeated external_ids rejected (the first valid one wins), counted."""
    seen: set[str] = set()
    for prepared in batches:
        result.read += prepared.read
        if seen.isdisjoint(prepared.ids) and len(set(prepared.ids)) == len(prepared.ids):
            seen.update(prepared.ids)
            result.rejects.extend(prepared.rejects)
        else:
            prepared = _without_duplicates(prepared, seen)
            result.rejects.extend(prepared.rejects)
        if progress:
            progress(result.read)
        yield prepared
    if progress:
        progress(result.read)


def _without_duplicates(prepared: _Prepared, seen: set[str]) -> _Prepared:
    rejects = list(prepared.rejects)
    keep = []
    for i, external_id in enumerate(prepared.ids):
        if external_id in seen:
            reason = "duplicate external_id (first seen earlier in the file)"
            rejects.append(Reject(prepared.lines[i], external_id, reason))
        else:
            seen.add(external_id)
            keep.append(i)
    return _Prepared(
        prepared.read,
        [prepared.ids[i] for i in keep],
        [prepared.lines[i] for i in keep],
        [prepared.kinds[i] for i in keep],
        [prepared.items[i] for i in keep],
        sorted(rejects, key=_line),
    )


def _items(prepared: _Prepared, kind: int) -> list:
    return [item for k, item in zip(prepared.kinds, prepared.items, strict=True) if k == kind]


def _read_header(rows: _Rows) -> list[str]:
    try:
        header = [column.strip().lstrip("\ufeff") for column in next(rows)]
    except StopIteration:
        raise ImportFileError("the file is empty: expected a header line") from None
    except csv.Error as error:
        raise ImportFileError(f"the header line is not valid CSV: {error}") from None
    missing = [column for column in COLUMNS if column not in header]
    if missing:
        raise ImportFileError(
            f"the header lacks required column(s) {', '.join(missing)}; "
            f"expected {','.join(COLUMNS)} (other columns go to attributes)"
        )
    duplicates = sorted({column for column in header if header.count(column) > 1})
    if duplicates or "" in header:
        raise ImportFileError(f"the header has duplicate or empty column names: {duplicates}")
    return header


def _external_id_of(layout: _Layout, row: list[str]) -> str:
    index = layout.positions[0]
    value = row[index].strip() if index < len(row) else ""
    return _SURROGATE.sub("?", value)[:64]


def _line_breaks(row: list[str]) -> int:
    """Line ends inside the row's (quoted) fields, counted as the file reader splits
    lines: \\r\\n, \\r and \\n each end one line."""
    return sum(v.count("\n") + v.count("\r") - v.count("\r\n") for v in row)


_LIMITS = tuple(
    (i, column, MAX_LENGTHS[column]) for i, column in enumerate(COLUMNS) if column in MAX_LENGTHS
)
# Per position of COLUMNS: its maximum length, or a length no text reaches.
_MAX_BY_POSITION = tuple(MAX_LENGTHS.get(column, 2**62) for column in COLUMNS)
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


class _Preparer:
    """Validates rows and turns the valid ones into what the writer needs.

    Forked workers inherit it; its memo tables are then per process. copy_prefix:
    items are COPY text lines starting with it (PostgreSQL); None: Record objects."""

    def __init__(
        self, layout: _Layout, existing: dict[str, bytes | None], copy_prefix: str | None
    ) -> None:
        self.layout = layout
        self.existing = existing
        self.copy_prefix = copy_prefix
        self._fields = itemgetter(*layout.positions)
        self._extra = tuple(
            (column, encode_basestring(column) + ": ", i) for column, i in layout.extra
        )
        self._dates: dict[str, tuple[date, str]] = {}
        self._names: dict[str, str] = {}

    def batch(self, line: int, rows: list[list[str]]) -> _Prepared:
        ids: list[str] = []
        lines: list[int] = []
        kinds: list[int] = []
        items: list = []
        rejects: list[Reject] = []
        read = 0
        for row in rows:
            row_line = line
            line += 1
            if not row:
                continue
            read += 1
            joined = "".join(row)
            if "\n" in joined or "\r" in joined:
                line += _line_breaks(row)
            try:
                external_id, kind, item = self._row(row_line, row, joined)
            except RowError as error:
                rejects.append(Reject(row_line, _external_id_of(self.layout, row), str(error)))
                continue
            ids.append(external_id)
            lines.append(row_line)
            kinds.append(kind)
            items.append(item)
        return _Prepared(read, ids, lines, kinds, items, rejects)

    def _row(self, line: int, row: list[str], joined: str) -> tuple[str, int, object]:
        layout = self.layout
        if len(row) != len(layout.header):
            raise RowError(f"wrong number of columns: {len(row)} instead of {len(layout.header)}")
        values = list(map(str.strip, row))
        if _UNSTORABLE.search(joined):
            _check_characters(layout.header, values)
        fields = self._fields(values)
        external_id, email, phone, name, name_kana, birth_raw, password_hash, points_raw = fields
        if not external_id or any(map(gt, map(len, fields), _MAX_BY_POSITION)):
            _check_text(fields)
        birth_date, birth_text = self._birth_date(birth_raw) if birth_raw else (None, "None")
        if points_raw.isdigit() and points_raw.isascii() and len(points_raw) < 10:
            points = int(points_raw)
        else:
            points = _parse_points(points_raw)
        attributes = [(c, key, values[i]) for c, key, i in self._extra if values[i]]
        if attributes:
            pairs = (key + encode_basestring(value) for _c, key, value in attributes)
            attributes_json = "{" + ", ".join(pairs) + "}"
        else:
            attributes_json = "{}"
        hashed = "\x1f".join(
            (
                KEYS_VERSION,
                external_id,
                email,
                phone,
                name,
                name_kana,
                birth_text,
                password_hash,
                str(points),
                attributes_json,
            )
        )
        digest = hashlib.blake2b(hashed.encode(), digest_size=32).digest()
        known = self.existing.get(external_id, False)
        if known == digest:
            return external_id, UNCHANGED, None
        kind = NEW if known is False else CHANGED
        name_key = self._names.get(name)
        if name_key is None:
            name_key = normalize_name(name)
            if len(self._names) >= _MEMO_LIMIT:
                self._names.clear()
            self._names[name] = name_key
        email_key, phone_key = normalize_email(email), normalize_phone(phone)
        if self.copy_prefix is None:
            record = Record(
                line,
                external_id,
                email,
                phone,
                name,
                name_kana,
                birth_date,
                password_hash,
                points,
                {c: value for c, _key, value in attributes},
                attributes_json,
                email_key,
                phone_key,
                name_key,
                digest.hex(),
            )
            return external_id, kind, record
        head_fields = (external_id, email, phone, name, name_kana)
        tail_fields = (password_hash, str(points), attributes_json, email_key, phone_key)
        tail_fields += (name_key, digest.hex())
        head, tail = "\t".join(head_fields), "\t".join(tail_fields)
        if _needs_escapes(head, 4) or _needs_escapes(tail, 6):
            head, tail = _escaped(head_fields), _escaped(tail_fields)
        birth_copy = birth_text if birth_date else "\\N"
        text = f"{head}\t{birth_copy}\t{tail}\n"
        return external_id, kind, self.copy_prefix + text

    def _birth_date(self, raw: str) -> tuple[date, str]:
        known = self._dates.get(raw)
        if known is None:
            value = _parse_birth_date(raw, self.layout.today)
            assert value is not None
            known = (value, str(value))
            if len(self._dates) >= _MEMO_LIMIT:
                self._dates.clear()
            self._dates[raw] = known
        return known


def _needs_escapes(text: str, tabs: int) -> bool:
    return "\\" in text or "\n" in text or "\r" in text or text.count("\t") != tabs


def _escaped(fields: tuple[str, ...]) -> str:
    return "\t".join(value.translate(_COPY_ESCAPES) for value in fields)


def _check_characters(header: list[str], values: list[str]) -> None:
    for column, value in zip(header, values, strict=True):
        if _SURROGATE.search(value):
            raise RowError(f"undecodable bytes in {column} (not valid in the file's encoding)")
        if "\x00" in value:
            raise RowError(f"NUL character in {column}")


def _check_text(fields: tuple[str, ...]) -> None:
    if not fields[0]:
        raise RowError("missing external_id")
    for i, column, limit in _LIMITS:
        if len(fields[i]) > limit:
            raise RowError(f"{column} longer than {limit} characters")


def _parse_birth_date(raw: str, today: date) -> date | None:
    if not raw:
        return None
    text = unicodedata.normalize("NFKC", raw)
    match = _DATE_SEPARATED.fullmatch(text) or _DATE_COMPACT.fullmatch(text)
    try:
        if not match:
            raise ValueError
        value = date(*(int(part) for part in match.groups()))
    except ValueError:
        raise RowError(f"bad birth_date {raw!r} (expected YYYY-MM-DD)") from None
    if not _EARLIEST_BIRTH <= value <= today:
        raise RowError(f"birth_date {raw!r} out of range")
    return value


def _parse_points(raw: str) -> int:
    if not raw:
        return 0
    text = unicodedata.normalize("NFKC", raw).replace(",", "")
    try:
        points = int(text)
    except ValueError:
        raise RowError(f"points {raw!r} is not an integer") from None
    if abs(points) > _POINTS_LIMIT:
        raise RowError(f"points {raw!r} out of range")
    return points


# What is already there


def _lock_service(service: LegacyService) -> None:
    """Imports of one service wait for each other (until the transaction ends): what
    an import read as existing stays so while it writes."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_LOCK_NAMESPACE, service.pk])


def _existing_hashes(service: LegacyService) -> dict[str, bytes | None]:
    """external_id -> row hash (None if not a hash we wrote) of the service's accounts."""
    accounts = LegacyAccount.objects.filter(service=service).values_list("external_id", "row_hash")
    existing: dict[str, bytes | None] = {}
    for external_id, row_hash in accounts.iterator(chunk_size=20_000):
        try:
            existing[external_id] = bytes.fromhex(row_hash)
        except ValueError:
            existing[external_id] = None
    return existing


# Writing: COPY on PostgreSQL


_STAGED = (
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
)
# imported_at and updated_at are left to the columns' default, the statement's time:
# parsing two timestamps a row costs PostgreSQL more than the rest of a row's text.
_COPIED = ("service_id", *_STAGED)
_UPDATED = tuple(column for column in _STAGED if column != "external_id")
_STAGING_SQL = """
    CREATE TEMPORARY TABLE legacy_import_staging (
        service_id bigint, external_id text, email text, phone text, name text, name_kana text,
        birth_date date, password_hash text, points integer, attributes jsonb,
        email_key text, phone_key text, name_key text, row_hash text
    ) ON COMMIT DROP
"""
# Changed rows wait in memory, or in a temporary file past this size.
_SPOOL_BYTES = 32 * 1024 * 1024


def _copy_sql(table: str) -> str:
    # Text format: fields are escaped by the preparer; \N is NULL (birth_date only).
    return f"COPY {table} ({', '.join(_COPIED)}) FROM STDIN"


def _copy_prefix(service: LegacyService) -> str:
    return f"{service.pk}\t"


def _copy_write(service: LegacyService, batches: Iterator[_Prepared]) -> tuple[int, int]:
    """New rows go straight into the table; changed ones through the staging merge."""
    inserted = changed_count = 0
    with (
        connection.cursor() as cursor,
        tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as changed,
    ):
        unchecked = _without_row_checks(cursor, service)
        # psycopg's own copy(): its errors are wrapped here, as Django wraps a cursor's.
        with (
            connection.wrap_database_errors,
            cursor.cursor.copy(_copy_sql("linking_legacyaccount")) as copy,
        ):
            for prepared in batches:
                new = _items(prepared, NEW)
                if new:
                    copy.write("".join(new).encode())
                    inserted += len(new)
                if len(new) + prepared.kinds.count(UNCHANGED) < len(prepared.kinds):
                    lines = _items(prepared, CHANGED)
                    changed.write("".join(lines).encode())
                    changed_count += len(lines)
        if unchecked:
            cursor.execute("SELECT set_config('session_replication_role', %s, true)", [unchecked])
        if not changed_count:
            return inserted, 0
        cursor.execute(_STAGING_SQL)
        changed.seek(0)
        with (
            connection.wrap_database_errors,
            cursor.cursor.copy(_copy_sql("legacy_import_staging")) as copy,
        ):
            while chunk := changed.read(1024 * 1024):
                copy.write(chunk)
        cursor.execute(_merge_sql())
        merged_inserts, updated = cursor.fetchone()
        # Dropped now, not only at commit: an outer transaction may import again.
        cursor.execute("DROP TABLE legacy_import_staging")
    return inserted + merged_inserts, updated


def _without_row_checks(cursor, service: LegacyService) -> str:
    """Turn off the per-row foreign-key checks for the COPY where that is safe and
    allowed; returns the setting to restore afterwards, or "" if they stay on.

    The checks are PostgreSQL's internal triggers, which session_replication_role =
    replica skips (as logical replication does). Each would lock the same service
    row FOR KEY SHARE and find owner NULL, so one lock taken here guarantees what a
    million checks would. Only taken when the table has no triggers of its own (they
    would be skipped too) and the role may SET the parameter: a superuser, or on
    PostgreSQL 15+ a role granted SET ON PARAMETER session_replication_role."""
    cursor.execute(_ROW_CHECKS_SQL.format(may_set=_may_set_sql()), [service.pk])
    row = cursor.fetchone()
    # No row: the service was deleted meanwhile, which the checks will report.
    if row is None or not row[1]:
        return ""
    cursor.execute("SET LOCAL session_replication_role = replica")
    return row[0]


def _may_set_sql() -> str:
    if connection.pg_version >= 150000:
        return "has_parameter_privilege('session_replication_role', 'SET')"
    return "(SELECT rolsuper FROM pg_roles WHERE rolname = current_user)"


# The setting to restore, and whether the checks may be skipped; locks the service.
_ROW_CHECKS_SQL = """
    SELECT current_setting('session_replication_role'), {may_set} AND NOT EXISTS (
        SELECT 1 FROM pg_trigger
        WHERE tgrelid = 'linking_legacyaccount'::regclass AND NOT tgisinternal
    )
    FROM linking_legacyservice WHERE id = %s FOR KEY SHARE
"""


def _merge_sql() -> str:
    columns = ", ".join(_COPIED)
    updates = ", ".join(f"{column} = EXCLUDED.{column}" for column in _UPDATED)
    # The rows were changed when read; ON CONFLICT also covers a row deleted or added
    # since. xmax = 0 marks a freshly inserted row (a PostgreSQL idiom): it tells
    # inserts from updates without a second query. Only the module's own column
    # names are interpolated.
    return f"""
        WITH merged AS (
            INSERT INTO linking_legacyaccount AS account ({columns})
            SELECT {columns} FROM legacy_import_staging
            ON CONFLICT (service_id, external_id) DO UPDATE
                SET {updates}, updated_at = STATEMENT_TIMESTAMP()
                WHERE account.row_hash IS DISTINCT FROM EXCLUDED.row_hash
            RETURNING (xmax = 0) AS inserted
        )
        SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted)
        FROM merged
    """  # noqa: S608


# Writing: batched ORM upsert elsewhere


def _orm_write(service: LegacyService, batches: Iterator[_Prepared]) -> tuple[int, int]:
    inserted = updated = 0
    pending: list[Record] = []
    for prepared in batches:
        for kind, record in zip(prepared.kinds, prepared.items, strict=True):
            if kind == UNCHANGED:
                continue
            pending.append(record)
            if kind == NEW:
                inserted += 1
            else:
                updated += 1
            if len(pending) == _ORM_BATCH_ROWS:
                _upsert(service, pending)
                pending = []
    if pending:
        _upsert(service, pending)
    return inserted, updated


def _upsert(service: LegacyService, records: list[Record]) -> None:
    now = timezone.now()
    LegacyAccount.objects.bulk_create(
        [_account(service, record, now) for record in records],
        update_conflicts=True,
        unique_fields=["service", "external_id"],
        update_fields=[*_UPDATED, "updated_at"],
    )


def _account(service: LegacyService, record: Record, now) -> LegacyAccount:
    return LegacyAccount(
        service=service,
        imported_at=now,
        updated_at=now,
        **{column: getattr(record, column) for column in _STAGED},
    )
