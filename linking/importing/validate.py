"""Validating and normalizing rows: each valid row becomes what the writer needs
(a COPY line on PostgreSQL, a Record elsewhere) with its match keys and row hash.

A batch's work is a pure function of its rows, so on a large file it runs in
forked worker processes while the parent reads on; results come back in file
order, so line numbers, rejects and results are the same either way."""

import hashlib
import multiprocessing
import os
import re
import unicodedata
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from json.encoder import encode_basestring  # json.dumps(ensure_ascii=False)'s string encoder
from operator import gt, itemgetter
from pathlib import Path
from typing import NamedTuple

from django.utils import timezone, translation
from django.utils.translation import gettext

from linking.importing.read import COLUMNS, OPTIONAL_COLUMNS, Batch
from linking.importing.report import UNDECODABLE, Reject, excerpt, shown_id
from linking.line.models import LINE_USER_ID_PATTERN
from linking.models import LegacyAccount
from linking.normalize import normalize_email, normalize_name, normalize_phone

TEXT_COLUMNS = ("external_id", "email", "phone", "name", "name_kana", "password_hash")
MAX_LENGTHS = {name: LegacyAccount._meta.get_field(name).max_length for name in TEXT_COLUMNS}
# Part of every row hash: bump it when normalization changes, so the next import
# rewrites every row with fresh match keys.
KEYS_VERSION = "1"
# Files smaller than this are validated in this process: starting workers costs more.
PARALLEL_MIN_BYTES = 4 * 1024 * 1024
_MAX_WORKERS = 8
_POINTS_LIMIT = 2**31 - 1
_EARLIEST_BIRTH = date(1870, 1, 1)
# Memo tables for values that repeat across rows (dates, names); cleared when full.
_MEMO_LIMIT = 100_000
_UNSTORABLE = re.compile("[\x00\udc80-\udcff]")
_DATE_SEPARATED = re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})")
_DATE_COMPACT = re.compile(r"(\d{4})(\d{2})(\d{2})")
_LINE_USER_ID = re.compile(LINE_USER_ID_PATTERN)

UNCHANGED, NEW, CHANGED = 0, 1, 2


class RowError(Exception):
    """One row is rejected; the message is the reason shown in the report."""


class Record(NamedTuple):
    """A valid row, ready to write: imported fields, match keys and row hash (in
    the order of the COPY line's columns)."""

    external_id: str
    email: str
    phone: str
    name: str
    name_kana: str
    birth_date: date | None
    password_hash: str
    points: int
    attributes: dict[str, str]
    line_user_id: str
    email_key: str
    phone_key: str
    name_key: str
    row_hash: str


@dataclass(frozen=True)
class Layout:
    """Where each column sits in this file's header: computed once per file."""

    header: list[str]
    positions: tuple[int, ...]  # of COLUMNS, in that order
    extra: tuple[tuple[str, int], ...]  # other columns, for attributes, sorted by name
    today: date
    line_position: int | None = None  # of the optional line_user_id column

    @classmethod
    def of(cls, header: list[str]) -> "Layout":
        known = (*COLUMNS, *OPTIONAL_COLUMNS)
        extra = tuple(sorted((c, i) for i, c in enumerate(header) if c not in known))
        positions = tuple(header.index(column) for column in COLUMNS)
        line = header.index("line_user_id") if "line_user_id" in header else None
        return cls(header, positions, extra, timezone.localdate(), line)


class Prepared(NamedTuple):
    """One batch of rows, validated; per valid row its external_id, line, kind
    (UNCHANGED, NEW or CHANGED) and item (a COPY line or a Record; None if unchanged)."""

    read: int
    ids: list[str]
    lines: list[int]
    kinds: list[int]
    items: list
    rejects: list[Reject]


def default_workers(path: Path) -> int:
    if "fork" not in multiprocessing.get_all_start_methods():
        return 0
    if path.stat().st_size < PARALLEL_MIN_BYTES:
        return 0
    return min(os.cpu_count() or 1, _MAX_WORKERS)


def prepared_batches(
    batches: Iterator[Batch], preparer: "Preparer", workers: int
) -> Iterator[Prepared]:
    """The prepared batches in file order, from worker processes when workers > 1."""
    pool = _pool(preparer, workers) if workers > 1 else None
    if pool is None:
        for batch in batches:
            yield preparer.batch(batch)
        return
    with pool:  # terminates the workers however this generator ends
        pending: deque = deque()
        for batch in batches:
            pending.append(pool.apply_async(_prepare_in_worker, (batch,)))
            if len(pending) >= 2 * workers:  # bounded read-ahead
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


def _pool(preparer: "Preparer", workers: int):
    # Forked workers inherit the preparer (and its existing hashes) without pickling
    # and never touch the database connection.
    try:
        context = multiprocessing.get_context("fork")
        return context.Pool(workers, _start_worker, (preparer, translation.get_language()))
    except (AssertionError, OSError, ValueError):  # no fork, or a daemonic process
        return None


_worker_preparer: "Preparer | None" = None


def _start_worker(preparer: "Preparer", language: str | None) -> None:
    """A worker writes reasons in the language of the import that started it."""
    global _worker_preparer
    _worker_preparer = preparer
    if language:
        translation.activate(language)


def _prepare_in_worker(batch: Batch) -> Prepared:
    assert _worker_preparer is not None
    return _worker_preparer.batch(batch)


def unique(batches: Iterator[Prepared]) -> Iterator[Prepared]:
    """Batches with repeated external_ids rejected (the first valid one wins)."""
    seen: set[str] = set()
    for prepared in batches:
        if seen.isdisjoint(prepared.ids) and len(set(prepared.ids)) == len(prepared.ids):
            seen.update(prepared.ids)
            yield prepared
        else:
            yield _without_duplicates(prepared, seen)


def _without_duplicates(prepared: Prepared, seen: set[str]) -> Prepared:
    rejects = list(prepared.rejects)
    keep = []
    for i, external_id in enumerate(prepared.ids):
        if external_id in seen:
            line = prepared.lines[i]
            reason = gettext("duplicate external_id (first seen earlier in the file)")
            rejects.append(Reject(line, line, external_id, reason))
        else:
            seen.add(external_id)
            keep.append(i)
    return Prepared(
        prepared.read,
        [prepared.ids[i] for i in keep],
        [prepared.lines[i] for i in keep],
        [prepared.kinds[i] for i in keep],
        [prepared.items[i] for i in keep],
        sorted(rejects, key=_line),
    )


def _line(reject: Reject) -> int:
    return reject.line


def items(prepared: Prepared, kind: int) -> list:
    return [item for k, item in zip(prepared.kinds, prepared.items, strict=True) if k == kind]


_LIMITS = tuple(
    (i, column, MAX_LENGTHS[column]) for i, column in enumerate(COLUMNS) if column in MAX_LENGTHS
)
# Per position of COLUMNS: its maximum length, or a length no text reaches.
_MAX_BY_POSITION = tuple(MAX_LENGTHS.get(column, 2**62) for column in COLUMNS)
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


class Preparer:
    """Validates rows and turns the valid ones into what the writer needs.

    Forked workers inherit it; its memo tables are then per process. copy_prefix:
    items are COPY text lines starting with it (PostgreSQL); None: Record objects."""

    def __init__(
        self, layout: Layout, existing: dict[str, bytes | None], copy_prefix: str | None
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

    def batch(self, batch: Batch) -> Prepared:
        ids: list[str] = []
        lines: list[int] = []
        kinds: list[int] = []
        items: list = []
        rejects: list[Reject] = []
        id_position = self.layout.positions[0]
        for row, first, last in zip(batch.rows, batch.firsts, batch.lasts, strict=True):
            try:
                external_id, kind, item = self._row(row)
            except RowError as error:
                rejects.append(Reject(first, last, shown_id(row[id_position]), str(error)))
                continue
            ids.append(external_id)
            lines.append(first)
            kinds.append(kind)
            items.append(item)
        if batch.rejects:
            rejects = sorted([*rejects, *batch.rejects], key=_line)
        return Prepared(len(batch.rows) + len(batch.rejects), ids, lines, kinds, items, rejects)

    def _row(self, row: list[str]) -> tuple[str, int, object]:
        layout = self.layout
        values = list(map(str.strip, row))
        if _UNSTORABLE.search("".join(row)):
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
        line_user_id = "" if layout.line_position is None else values[layout.line_position]
        if line_user_id and not _LINE_USER_ID.fullmatch(line_user_id):
            raise RowError(
                gettext(
                    'bad line_user_id %(value)s (expected "U" and 32 lowercase hexadecimal digits)'
                )
                % {"value": excerpt(line_user_id)}
            )
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
                # Only when present: rows without one keep the hash they had before
                # the column existed, so adding it rewrites nothing.
                *((line_user_id,) if line_user_id else ()),
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
                external_id,
                email,
                phone,
                name,
                name_kana,
                birth_date,
                password_hash,
                points,
                {c: value for c, _key, value in attributes},
                line_user_id,
                email_key,
                phone_key,
                name_key,
                digest.hex(),
            )
            return external_id, kind, record
        head_fields = (external_id, email, phone, name, name_kana)
        tail_fields = (password_hash, str(points), attributes_json, line_user_id, email_key)
        tail_fields += (phone_key, name_key, digest.hex())
        head, tail = "\t".join(head_fields), "\t".join(tail_fields)
        if _needs_escapes(head, 4) or _needs_escapes(tail, 7):
            head, tail = _escaped(head_fields), _escaped(tail_fields)
        birth_copy = birth_text if birth_date else "\\N"
        text = f"{head}\t{birth_copy}\t{tail}\n"
        return external_id, kind, self.copy_prefix + text

    def _birth_date(self, raw: str) -> tuple[date, str]:
        known = self._dates.get(raw)
        if known is None:
            value = _parse_birth_date(raw, self.layout.today)
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
        if UNDECODABLE.search(value):
            raise RowError(
                gettext("undecodable bytes in %(column)s (not valid in the file's encoding)")
                % {"column": column}
            )
        if "\x00" in value:
            raise RowError(gettext("NUL character in %(column)s") % {"column": column})


def _check_text(fields: tuple[str, ...]) -> None:
    if not fields[0]:
        raise RowError(gettext("missing external_id"))
    for i, column, limit in _LIMITS:
        if len(fields[i]) > limit:
            raise RowError(
                gettext("%(column)s longer than %(limit)d characters")
                % {"column": column, "limit": limit}
            )


def _parse_birth_date(raw: str, today: date) -> date:
    text = unicodedata.normalize("NFKC", raw)
    match = _DATE_SEPARATED.fullmatch(text) or _DATE_COMPACT.fullmatch(text)
    try:
        if not match:
            raise ValueError
        value = date(*(int(part) for part in match.groups()))
    except ValueError:
        raise RowError(
            gettext("bad birth_date %(value)s (expected YYYY-MM-DD)") % {"value": excerpt(raw)}
        ) from None
    if not _EARLIEST_BIRTH <= value <= today:
        raise RowError(gettext("birth_date %(value)s out of range") % {"value": excerpt(raw)})
    return value


def _parse_points(raw: str) -> int:
    if not raw:
        return 0
    text = unicodedata.normalize("NFKC", raw).replace(",", "")
    try:
        points = int(text)
    except ValueError:
        raise RowError(
            gettext("points %(value)s is not an integer") % {"value": excerpt(raw)}
        ) from None
    if abs(points) > _POINTS_LIMIT:
        raise RowError(gettext("points %(value)s out of range") % {"value": excerpt(raw)})
    return points
