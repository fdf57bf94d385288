"""The API's reads. Each takes the services the calling client may see; an
account at any other service is treated exactly like one that does not exist."""

import weakref
from datetime import UTC, datetime, timedelta

import psycopg
from django.conf import settings
from django.db import DatabaseError, connection
from django.db.models import Q
from django.utils import timezone
from psycopg import pq

from linking.models import LegacyAccount, LinkEvent

# The API's hottest query, written out: building it with the ORM on every call cost
# more CPU than running it. One row at most: (service, external_id) is unique.
_RESOLVE_SQL = (
    "SELECT c.unified_id, a.linked_at FROM linking_legacyaccount a"
    " JOIN accounts_customer c ON c.id = a.owner_id"
    " WHERE a.service_id = %s AND a.external_id = %s"
)
_RESOLVE_SQL_NUMBERED = _RESOLVE_SQL.replace("%s", "$1", 1).replace("%s", "$2", 1).encode()
_RESOLVE_STATEMENT = b"linking_api_resolve"
_prepared_on: "weakref.WeakSet[psycopg.Connection]" = weakref.WeakSet()


def resolve(*, service_id: int, external_id: str) -> tuple[str, datetime] | None:
    """(unified ID, linked_at) of the account's owner, or None."""
    if connection.vendor == "postgresql":
        # A connection kept from an earlier request may have died meanwhile (the
        # database restarted). Instead of Django's health check, a "SELECT 1" round
        # trip before every request's first query, the read is simply tried again once
        # on a new connection: it changes nothing, and costs nothing when it works.
        kept = connection.connection is not None and not connection.health_check_done
        try:
            row = _resolve_prepared(service_id, external_id)
        except DatabaseError:
            if not kept:
                raise
            connection.close()
            row = _resolve_prepared(service_id, external_id)
        connection.health_check_done = True
    else:
        with connection.cursor() as cursor:
            cursor.execute(_RESOLVE_SQL, [service_id, external_id])
            row = cursor.fetchone()
        if row is not None:  # SQLite gives UTC without an offset
            row = (row[0], row[1].replace(tzinfo=UTC))
    return row


def _resolve_prepared(service_id: int, external_id: str) -> tuple | None:
    """Straight through libpq (psycopg.pq), skipping psycopg's cursor: a third of its
    CPU and half of its time per call. With DB_PREPARED_STATEMENTS the statement is
    prepared once per connection, so PostgreSQL skips parsing and planning it, which
    was three quarters of its work per call; without, it is sent unnamed each time."""
    connection.ensure_connection()
    raw = connection.connection
    params = [str(service_id).encode(), external_id.encode()]
    with connection.wrap_database_errors:
        if not settings.DB_PREPARED_STATEMENTS:
            result = _checked(raw.pgconn.exec_params(_RESOLVE_SQL_NUMBERED, params))
        else:
            try:
                result = _exec_prepared(raw, params)
            except psycopg.errors.InvalidSqlStatementName:
                # The session lost it (DISCARD ALL, a pooler): prepared again.
                _prepared_on.discard(raw)
                result = _exec_prepared(raw, params)
    if not result.ntuples:
        return None
    unified_id, linked_at = result.get_value(0, 0), result.get_value(0, 1)
    # The session's time zone is UTC (Django sets it): "2026-12-04 03:34:56.1+00".
    return unified_id.decode(), datetime.fromisoformat(linked_at.decode())


def _exec_prepared(raw: psycopg.Connection, params: list[bytes]) -> pq.abc.PGresult:
    if raw not in _prepared_on:
        _checked(raw.pgconn.prepare(_RESOLVE_STATEMENT, _RESOLVE_SQL_NUMBERED))
        _prepared_on.add(raw)
    return _checked(raw.pgconn.exec_prepared(_RESOLVE_STATEMENT, params))


def _checked(result: pq.abc.PGresult) -> pq.abc.PGresult:
    if result.status not in (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK):
        raise psycopg.errors.error_from_result(result)
    return result


def resolve_many(pairs: list[tuple[int, str]]) -> dict[tuple[int, str], str]:
    """{(service_id, external_id): unified ID} for the linked accounts among pairs."""
    by_service: dict[int, set[str]] = {}
    for service_id, external_id in pairs:
        by_service.setdefault(service_id, set()).add(external_id)
    if not by_service:
        return {}
    condition = Q()
    for service_id, external_ids in by_service.items():
        condition |= Q(service_id=service_id, external_id__in=external_ids)
    rows = LegacyAccount.objects.filter(condition, owner__isnull=False).values_list(
        "service_id", "external_id", "owner__unified_id"
    )
    return {(service_id, external_id): uid for service_id, external_id, uid in rows}


def linked_accounts(*, unified_id: str, service_ids: list[int]) -> list[dict]:
    return list(
        LegacyAccount.objects.filter(owner__unified_id=unified_id, service_id__in=service_ids)
        .order_by("service__code", "external_id")
        .values("service__code", "external_id", "linked_at")
    )


def link_events(
    *, service_ids: list[int], after: int, limit: int, settle_seconds: float
) -> list[dict]:
    """Link events after the cursor, oldest first. The last settle_seconds are held
    back: ids are handed out before commit, so a younger event could still be
    joined by an older id committing late."""
    settled = timezone.now() - timedelta(seconds=settle_seconds)
    return list(
        LinkEvent.objects.filter(
            pk__gt=after, account__service_id__in=service_ids, created_at__lte=settled
        )
        .order_by("pk")
        .values(
            "pk",
            "action",
            "proof",
            "created_at",
            "customer_unified_id",
            "account__service__code",
            "account__external_id",
        )[:limit]
    )
