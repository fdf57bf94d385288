"""Celery tasks: thin wrappers around linking.api.webhooks and call_log. Running one
twice is harmless: an attempt is made only by whoever claims the due delivery, and
pruning deletes what is old whoever runs it."""

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from linking.api import call_log, webhooks


@shared_task(name="webhooks.deliver")
def deliver(delivery_id: int) -> str | None:
    outcome = webhooks.deliver(delivery_id)
    if outcome.retry_in is not None:
        deliver.apply_async((delivery_id,), countdown=outcome.retry_in)
    return outcome.status


@shared_task(name="webhooks.sweep")
def sweep() -> int:
    overdue = webhooks.overdue()
    for delivery_id in overdue:
        deliver.delay(delivery_id)
    return len(overdue)


@shared_task(name="api.prune_calls")
def prune_calls() -> int:
    """Beat, hourly: API call audit rows older than API_CALL_RETENTION_DAYS go (0: kept)."""
    if settings.API_CALL_RETENTION_DAYS <= 0:
        return 0
    return call_log.prune(timezone.now() - timedelta(days=settings.API_CALL_RETENTION_DAYS))


@shared_task(name="webhooks.prune")
def prune_webhook_deliveries() -> int:
    """Beat, hourly: finished webhook deliveries older than WEBHOOK_RETENTION_DAYS go
    (0: kept); the admin's redeliver action works on those still there."""
    if settings.WEBHOOK_RETENTION_DAYS <= 0:
        return 0
    return webhooks.prune(timezone.now() - timedelta(days=settings.WEBHOOK_RETENTION_DAYS))
