"""Finished webhook deliveries older than WEBHOOK_RETENTION_DAYS are deleted, with
their attempts, by an hourly beat task (linking.api.retention); pending ones
stay whatever their age."""

from datetime import timedelta

from django.conf import settings as django_settings
from django.utils import timezone

from linking.api import retention, tasks
from linking.api.models import WebhookAttempt, WebhookDelivery

pytest_plugins = ["tests.fixtures.api"]

Status = WebhookDelivery.Status


def _deliveries(client, *made: tuple[str, float]) -> None:
    """One delivery, with one attempt, per (status, days ago)."""
    now = timezone.now()
    for number, (status, age) in enumerate(made):
        delivery = WebhookDelivery.objects.create(
            event_type=WebhookDelivery.EventType.LINKED, client=client,
            url="https://store.example.jp/hook", body=f'{{"n": {number}}}', status=status,
            created_at=now - timedelta(days=age),
        )  # fmt: skip
        WebhookAttempt.objects.create(delivery=delivery, number=1, status_code=200)


def _left() -> list[str]:
    return sorted(WebhookDelivery.objects.values_list("body", flat=True))


def test_finished_deliveries_past_the_retention_go_with_their_attempts(make_client, settings):
    settings.WEBHOOK_RETENTION_DAYS = 30
    client = make_client(webhook_url="https://store.example.jp/hook").access
    _deliveries(
        client,
        (Status.DELIVERED, 40),
        (Status.DEAD, 31),
        (Status.PENDING, 100),  # still to be sent: stays
        (Status.SENDING, 100),
        (Status.DELIVERED, 29),
    )

    assert tasks.prune_webhook_deliveries() == 2

    assert _left() == ['{"n": 2}', '{"n": 3}', '{"n": 4}']
    assert WebhookAttempt.objects.count() == 3
    beat = [entry["task"] for entry in django_settings.CELERY_BEAT_SCHEDULE.values()]
    assert "webhooks.prune" in beat


def test_a_retention_of_zero_keeps_every_delivery(make_client, settings):
    settings.WEBHOOK_RETENTION_DAYS = 0
    _deliveries(make_client().access, (Status.DELIVERED, 4000))

    assert tasks.prune_webhook_deliveries() == 0
    assert len(_left()) == 1


def test_finished_deliveries_go_a_batch_at_a_time(make_client, django_assert_num_queries):
    _deliveries(make_client().access, *[(Status.DELIVERED, 10)] * 5)

    # Three batches of at most two: each reads its ids, then deletes in one
    # transaction: the deliveries read for the cascade, their attempts, themselves.
    with django_assert_num_queries(3 * 4):
        assert retention.prune_webhook_deliveries(timezone.now() - timedelta(days=1), batch=2) == 5

    assert _left() == []
    assert not WebhookAttempt.objects.exists()
