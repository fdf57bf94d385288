"""Legacy records as the columns the Splink model compares, built with linking.normalize.

Names are split into surname and given name (for term frequencies and married names):
on a space where the record has one, else on the longest surname the data shows split
elsewhere."""

import unicodedata
from collections.abc import Iterable
from datetime import date

import pyarrow as pa

from linking import normalize

COLUMNS = [
    "unique_id",
    "service",
    "name_key",
    "kana",
    "surname_kana",
    "given_kana",
    "email",
    "email_local",
    "phone",
    "birth",
    "birth_swapped",
    "postal",
    "prefecture",
]
SCHEMA = pa.schema([("unique_id", pa.int64())] + [(name, pa.string()) for name in COLUMNS[1:]])


def _tokens(value: str) -> list[str]:
    return unicodedata.normalize("NFKC", value or "").replace("・", " ").split()


def _birth(value: date | str | None) -> tuple[str | None, str | None]:
    """ISO date, and the date with day and month swapped where that is a date too."""
    if not value:
        return None, None
    day = value if isinstance(value, date) else date.fromisoformat(str(value))
    swapped = None
    if day.day <= 12 and day.day != day.month:
        swapped = date(day.year, day.day, day.month).isoformat()
    return day.isoformat(), swapped


def _postal(value: str) -> str | None:
    digits = "".join(c for c in unicodedata.normalize("NFKC", value or "") if c.isdigit())
    return digits if len(digits) == 7 else None


def _split(key: str, tokens: list[str], known: set[str]) -> tuple[str | None, str | None]:
    if len(tokens) == 2:
        return tokens[0], tokens[1]
    for end in range(len(key) - 1, 0, -1):
        if key[:end] in known:
            return key[:end], key[end:]
    return None, None


def table(records: Iterable[dict]) -> pa.Table:
    """Records (dicts with LegacyAccount's fields, postal code and prefecture in
    attributes) as a pyarrow table that both Splink backends register."""
    rows = []
    known_kana: set[str] = set()
    for record in records:
        kana_tokens = [normalize.normalize_kana(t) for t in _tokens(record.get("name_kana", ""))]
        if len(kana_tokens) == 2:
            known_kana.add(kana_tokens[0])
        rows.append((record, kana_tokens))
    columns: dict[str, list] = {name: [] for name in COLUMNS}
    for record, kana_tokens in rows:
        attributes = record.get("attributes") or {}
        kana = "".join(kana_tokens)
        surname, given = _split(kana, kana_tokens, known_kana)
        email = normalize.normalize_email(record.get("email", ""))
        birth, swapped = _birth(record.get("birth_date"))
        columns["unique_id"].append(record["id"])
        values = {
            "service": str(record["service"]),
            "name_key": normalize.normalize_name(record.get("name", "")),
            "kana": kana,
            "surname_kana": surname,
            "given_kana": given,
            "email": email,
            "email_local": email.partition("@")[0] if "@" in email else "",
            "phone": normalize.normalize_phone(record.get("phone", "")),
            "birth": birth,
            "birth_swapped": swapped,
            "postal": _postal(str(attributes.get("postal_code", ""))),
            "prefecture": (attributes.get("prefecture") or "").strip(),
        }
        for name, value in values.items():
            # Blank keys never match: Splink reads NULL as "no evidence".
            columns[name].append(value or None)
    return pa.table(columns, schema=SCHEMA)
