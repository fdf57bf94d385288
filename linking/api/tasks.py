"""Celery tasks: thin wrappers around linking.api.webhooks and retention. Running one
twice is harmless: an attempt is made only by whoever leases the due delivery, and
pruning deletes what is old whoever runs it."""

from celery import shared_task
from django.conf import settings

from linking.api import retention, webhooks


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
    """Beat, hourly: API call audit rows older than API_CALL_RETENTION_DAYS go."""
    before = retention.cutoff(settings.API_CALL_RETENTION_DAYS)
    return retention.prune_calls(before) if before else 0


@shared_task(name="webhooks.prune")
def prune_webhook_deliveries() -> int:
    """Beat, hourly: finished webhook deliveries older than WEBHOOK_RETENTION_DAYS go;
    the admin's redeliver action works on those still there."""
    before = retention.cutoff(settings.WEBHOOK_RETENTION_DAYS)
    return retention.prune_webhook_deliveries(before) if before else 0
