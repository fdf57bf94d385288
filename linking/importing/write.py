"""Writing prepared rows: COPY on PostgreSQL, batched ORM upserts elsewhere.

On PostgreSQL new rows stream through COPY straight into the table, with the
database's own foreign-key checks (no privilege beyond INSERT and UPDATE is
needed); changed rows wait in a spool file and are merged at the end through a
temporary staging table and one INSERT ... ON CONFLICT."""

import tempfile
from collections.abc import Iterator

from django.db import connection
from django.utils import timezone

from linking.importing.validate import CHANGED, NEW, UNCHANGED, Prepared, Record, items
from linking.models import LegacyAccount, LegacyService

# pg_advisory_xact_lock(namespace, service id): one import per service at a time.
_LOCK_NAMESPACE = 0x4C49  # "LI"
_ORM_BATCH_ROWS = 2000


def lock_service(service: LegacyService) -> None:
    """Imports of one service wait for each other (until the transaction ends), so
    what an import read as existing stays so while it writes; and the service cannot
    be deleted meanwhile (the foreign-key checks, deferred, run only at commit)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_LOCK_NAMESPACE, service.pk])
        cursor.execute(
            "SELECT 1 FROM linking_legacyservice WHERE id = %s FOR KEY SHARE", [service.pk]
        )


def existing_hashes(service: LegacyService) -> dict[str, bytes | None]:
    """external_id -> row hash (None if not a hash we wrote) of the service's accounts."""
    accounts = LegacyAccount.objects.filter(service=service).values_list("external_id", "row_hash")
    existing: dict[str, bytes | None] = {}
    for external_id, row_hash in accounts.iterator(chunk_size=20_000):
        try:
            existing[external_id] = bytes.fromhex(row_hash)
        except ValueError:
            existing[external_id] = None
    return existing


# COPY on PostgreSQL

_STAGED = Record._fields
# imported_at and updated_at are left to the columns' default, the statement's time:
# parsing two timestamps a row costs PostgreSQL more than the rest of a row's text.
_COPIED = ("service_id", *_STAGED)
_UPDATED = tuple(column for column in _STAGED if column != "external_id")
_STAGING_SQL = """
    CREATE TEMPORARY TABLE legacy_import_staging (
        service_id bigint, external_id text, email text, phone text, name text, name_kana text,
        birth_date date, password_hash text, points integer, attributes jsonb,
        line_user_id text, email_key text, phone_key text, name_key text, row_hash text
    ) ON COMMIT DROP
"""
# Changed rows wait in memory, or in a temporary file past this size.
_SPOOL_BYTES = 32 * 1024 * 1024


def copy_prefix(service: LegacyService) -> str:
    return f"{service.pk}\t"


def _copy_sql(table: str) -> str:
    # Text format: fields are escaped by the preparer; \N is NULL (birth_date only).
    return f"COPY {table} ({', '.join(_COPIED)}) FROM STDIN"


def copy_write(service: LegacyService, batches: Iterator[Prepared]) -> tuple[int, int]:
    """New rows go straight into the table; changed ones through the staging merge."""
    inserted = changed_count = 0
    with (
        connection.cursor() as cursor,
        tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as changed,
    ):
        # psycopg's own copy(): its errors are wrapped here, as Django wraps a cursor's.
        with (
            connection.wrap_database_errors,
            cursor.cursor.copy(_copy_sql("linking_legacyaccount")) as copy,
        ):
            for prepared in batches:
                new = items(prepared, NEW)
                if new:
                    copy.write("".join(new).encode())
                    inserted += len(new)
                if CHANGED in prepared.kinds:
                    lines = items(prepared, CHANGED)
                    changed.write("".join(lines).encode())
                    changed_count += len(lines)
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


# Batched ORM upsert elsewhere


def orm_write(service: LegacyService, batches: Iterator[Prepared]) -> tuple[int, int]:
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
        **record._asdict(),
    )
