"""How long the group services' records are kept: API call audit rows for
API_CALL_RETENTION_DAYS, finished webhook deliveries for WEBHOOK_RETENTION_DAYS.
Hourly beat tasks (tasks.py) delete what is older, oldest first and a batch at a
time, each batch its own short transaction."""

from collections.abc import Iterator
from datetime import datetime, timedelta

from django.db.models import QuerySet
from django.utils import timezone

from linking.api.models import ApiCall, WebhookDelivery


def cutoff(days: int) -> datetime | None:
    """The moment before which rows kept `days` days go; None where 0 keeps them."""
    return timezone.now() - timedelta(days=days) if days > 0 else None


def _oldest_first(rows: QuerySet, batch: int, *order: str) -> Iterator[list[int]]:
    """The ids of rows in `order`, `batch` at a time; each batch is read after the
    one before was dealt with (deleted), so it starts at what is left."""
    while ids := list(rows.order_by(*order).values_list("id", flat=True)[:batch]):
        yield ids
        if len(ids) < batch:
            return


def prune_calls(before: datetime, batch: int = 10_000) -> int:
    """Delete the audit rows written before `before`; how many. Each batch is one
    DELETE over its id range, by the primary key (a row in it written later, by a
    host whose clock runs ahead, stays). On PostgreSQL a BRIN index on created_at
    (migration 0002) finds the old rows without reading the rows kept."""
    old = ApiCall._base_manager.filter(created_at__lt=before)  # past the append-only guard
    return sum(
        old.filter(id__gte=ids[0], id__lte=ids[-1]).delete()[0]
        for ids in _oldest_first(old, batch, "id")
    )


def prune_webhook_deliveries(before: datetime, batch: int = 1000) -> int:
    """Delete the finished deliveries (delivered or dead-lettered) created before
    `before`, with their attempts; how many. Pending ones stay, whatever their age:
    they are still to be sent."""
    finished = WebhookDelivery.objects.filter(
        status__in=[WebhookDelivery.Status.DELIVERED, WebhookDelivery.Status.DEAD],
        created_at__lt=before,
    )
    deleted = 0
    for ids in _oldest_first(finished, batch, "created_at", "id"):
        # One transaction: the deliveries and their attempts (Django's cascade).
        _total, by_model = WebhookDelivery.objects.filter(id__in=ids).delete()
        deleted += by_model.get(WebhookDelivery._meta.label, 0)
    return deleted
