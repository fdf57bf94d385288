"""Celery tasks: thin wrappers around linking.api.webhooks. Running one twice is
harmless: an attempt is made only by whoever claims the due delivery."""

from celery import shared_task

from linking.api import webhooks


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
