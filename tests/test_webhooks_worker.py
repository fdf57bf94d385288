"""Webhooks through the real path: a committed link queues a Celery message, a real
worker process (tests/campaign_support.Worker, on the test's database and broker)
posts to a real local receiver, and retries with backoff until it answers 2xx."""

from collections.abc import Iterator

import pytest
from standardwebhooks import Webhook

from linking import claims
from linking.api.models import WebhookDelivery
from tests.campaign_support import Worker, wait_until, worker_on_test_database

pytest_plugins = ["tests.fixtures.api"]


@pytest.fixture
def webhook_worker(transactional_db, tmp_path) -> Iterator[Worker]:
    with worker_on_test_database(
        tmp_path,
        WEBHOOK_RETRY_BASE_SECONDS="1",
        OUTBOUND_ALLOWED_HOSTS="127.0.0.1",  # the local receiver, on any port
    ) as running:
        yield running


def test_a_worker_delivers_on_the_third_try_to_a_receiver_that_fails_twice(
    webhook_worker, make_client, service, make_account, make_customer, receiver
):
    receiver.answers = [500, 502]
    subscriber = make_client(services=[service], webhook_url=receiver.url)
    receiver.secret = subscriber.access.webhook_secret
    hanako = make_customer("hanako@example.jp")
    webhook_worker.start()

    claims.link(account=make_account(service=service), customer=hanako, proof="code", request=None)

    wait_until(
        lambda: WebhookDelivery.objects.filter(status="delivered").exists(),
        what="the delivery",
    )
    assert receiver.count() == 3, webhook_worker.log()[-3000:]
    last = receiver.received[-1]
    event = Webhook(subscriber.access.webhook_secret).verify(last.body, last.headers)
    assert event["data"]["unified_id"] == hanako.unified_id
    assert WebhookDelivery.objects.get().attempts == 3
