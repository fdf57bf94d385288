from celery import shared_task

from linking.line import webhook


@shared_task(name="line.prune")
def prune() -> int:
    """Beat, hourly: handled webhook events no replay could reach any more, and
    account-link nonces past their expiry, go."""
    return webhook.prune()
