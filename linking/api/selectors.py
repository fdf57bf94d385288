"""The API's reads. Each takes the services the calling client may see; an
account at any other service is treated exactly like one that does not exist."""

from datetime import UTC, datetime, timedelta

import psycopg
from django.conf import settings
from django.db import DatabaseError, connection
from django.db.models import Q
from django.utils import timezone

from linking.models import LegacyAccount, LinkEvent

# The API's hottest query, written out: building it with the ORM on every call cost
# more CPU than running it. One row at most: (service, external_id) is unique.
_RESOLVE_SQL = (
    "SELECT c.unified_id, a.linked_at FROM linking_legacyaccount a"
    " JOIN accounts_customer c ON c.id = a.owner_id"
    " WHERE a.service_id = %s AND a.external_id = %s"
)


def resolve(*, service_id: int, external_id: str) -> tuple[str, datetime] | None:
    """(unified ID, linked_at) of the account's owner, or None."""
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_RESOLVE_SQL, [service_id, external_id])
            row = cursor.fetchone()
        # SQLite gives UTC without an offset
        return None if row is None else (row[0], row[1].replace(tzinfo=UTC))
    # A connection kept from an earlier request may have died meanwhile (the database
    # restarted): the read changes nothing, so it is tried again once on a new one.
    kept = connection.connection is not None
    try:
        return _resolve_prepared(service_id, external_id)
    except DatabaseError:
        if not kept:
            raise
        connection.close()
        return _resolve_prepared(service_id, external_id)


def _resolve_prepared(service_id: int, external_id: str) -> tuple[str, datetime] | None:
    """Through psycopg's own server-binding cursor rather than Django's: with
    DB_PREPARED_STATEMENTS psycopg prepares the statement once per connection, so
    PostgreSQL skips parsing and planning it, three quarters of its work per call."""
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(
            _RESOLVE_SQL, (service_id, external_id), prepare=settings.DB_PREPARED_STATEMENTS
        )
        return cursor.fetchone()


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
