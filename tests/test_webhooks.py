"""Webhooks: signed events for links, unlinks and deleted unified IDs, delivered
to a real local HTTP receiver, retried with backoff, dead-lettered, redelivered."""

import hashlib
import hmac
import json
import time

import pytest
from django.db import transaction

from linking import claims
from linking.api import webhooks
from linking.api.models import WebhookDelivery

pytest_plugins = ["tests.fixtures.api"]


def _independently_verified(secret: str, request) -> bool:
    """What a receiver written from the documentation does."""
    timestamp = request.headers["Unified-ID-Timestamp"]
    expected = hmac.new(
        secret.encode(), timestamp.encode() + b"." + request.body, hashlib.sha256
    ).hexdigest()
    fresh = abs(time.time() - int(timestamp)) <= 300
    return fresh and hmac.compare_digest(request.headers["Unified-ID-Signature"], f"v1={expected}")


@pytest.fixture
def hanako(make_customer):
    return make_customer("hanako@example.jp")


def test_a_receiver_that_fails_twice_gets_the_event_on_the_third_try(
    settings,
    make_client,
    service,
    make_account,
    hanako,
    receiver,
    django_capture_on_commit_callbacks,
):
    settings.WEBHOOK_RETRY_BASE_SECONDS = 0
    receiver.answers = [500, 503]
    subscriber = make_client(services=[service], webhook_url=receiver.url)
    account = make_account("S0001", service=service)
    with django_capture_on_commit_callbacks() as queued:
        claims.link(account=account, customer=hanako, proof="code", request=None)
    delivery = WebhookDelivery.objects.get()
    assert queued  # the Celery message goes out only after commit

    outcomes = [webhooks.deliver(delivery.pk) for _ in range(3)]

    assert [o.status for o in outcomes] == ["pending", "pending", "delivered"]
    assert receiver.count() == 3
    third = receiver.received[2]
    assert _independently_verified(subscriber.access.webhook_secret, third)
    event = json.loads(third.body)
    assert event["type"] == "account.linked"
    assert event["data"] == {
        "service": "store",
        "external_id": "S0001",
        "unified_id": hanako.unified_id,
        "proof": "code",
        "link_event_id": event["data"]["link_event_id"],
    }
    # Every retry carries the same event ID, so the receiver can deduplicate.
    assert {r.headers["Unified-ID-Event-Id"] for r in receiver.received} == {event["id"]}
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("delivered", 3)
    assert [a.status_code for a in delivery.attempt_log.order_by("at")] == [500, 503, 200]


def test_a_retry_waits_longer_each_time(settings):
    settings.WEBHOOK_RETRY_BASE_SECONDS = 30
    settings.WEBHOOK_RETRY_MAX_SECONDS = 3600
    assert [webhooks.retry_delay(n) for n in range(1, 10)] == [
        30,
        60,
        120,
        240,
        480,
        960,
        1920,
        3600,
        3600,
    ]


def test_a_failed_attempt_is_not_retried_before_its_time(
    settings, make_client, service, make_account, hanako, receiver
):
    settings.WEBHOOK_RETRY_BASE_SECONDS = 600
    receiver.answers = [500]
    make_client(services=[service], webhook_url=receiver.url)
    claims.link(account=make_account(service=service), customer=hanako, proof="code", request=None)
    delivery = WebhookDelivery.objects.get()

    first = webhooks.deliver(delivery.pk)
    early = webhooks.deliver(delivery.pk)

    assert (first.status, first.retry_in) == ("pending", 600)
    assert early.status is None
    assert receiver.count() == 1


def test_a_delivery_is_dead_lettered_after_the_limit_and_can_be_redelivered(
    settings, make_client, service, make_account, hanako, receiver
):
    settings.WEBHOOK_RETRY_BASE_SECONDS = 0
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    receiver.answers = [500, 500, 500]
    make_client(services=[service], webhook_url=receiver.url)
    claims.link(account=make_account(service=service), customer=hanako, proof="code", request=None)
    delivery = WebhookDelivery.objects.get()

    assert [webhooks.deliver(delivery.pk).status for _ in range(4)] == [
        "pending",
        "pending",
        "dead",
        None,
    ]
    assert receiver.count() == 3

    assert webhooks.redeliver(WebhookDelivery.objects.filter(pk=delivery.pk)) == 1
    assert webhooks.deliver(delivery.pk).status == "delivered"
    assert receiver.count() == 4


def test_an_unreachable_receiver_counts_as_a_failed_attempt(
    settings, make_client, service, make_account, hanako
):
    settings.WEBHOOK_RETRY_BASE_SECONDS = 0
    settings.WEBHOOK_TIMEOUT_SECONDS = 2
    make_client(services=[service], webhook_url="http://127.0.0.1:9/nothing-listens")
    claims.link(account=make_account(service=service), customer=hanako, proof="code", request=None)

    outcome = webhooks.deliver(WebhookDelivery.objects.get().pk)

    assert outcome.status == "pending"
    delivery = WebhookDelivery.objects.get()
    assert delivery.last_status_code is None
    assert "ConnectionError" in delivery.last_error


def test_unlink_is_announced_too(make_client, service, make_account, hanako, receiver):
    make_client(services=[service], webhook_url=receiver.url)
    account = make_account(service=service)
    claims.link(account=account, customer=hanako, proof="code", request=None)
    claims.unlink(account=account, customer=hanako, request=None)

    types = list(WebhookDelivery.objects.order_by("id").values_list("event_type", flat=True))

    assert types == ["account.linked", "account.unlinked"]


def test_a_link_that_rolls_back_announces_nothing(make_client, service, make_account, hanako):
    make_client(services=[service], webhook_url="http://127.0.0.1:9/")
    account = make_account(service=service)

    with pytest.raises(RuntimeError), transaction.atomic():
        claims.link(account=account, customer=hanako, proof="code", request=None)
        raise RuntimeError("the surrounding work failed")

    assert not WebhookDelivery.objects.exists()


def test_only_clients_that_may_see_the_service_hear_of_its_links(
    make_client, make_service, service, make_account, hanako
):
    pos = make_service("pos")
    make_client("store backend", services=[service], webhook_url="http://127.0.0.1:9/store")
    make_client("pos backend", services=[pos], webhook_url="http://127.0.0.1:9/pos")
    make_client("no webhook", services=[service])

    claims.link(account=make_account(service=service), customer=hanako, proof="code", request=None)

    assert list(WebhookDelivery.objects.values_list("client__client__name", flat=True)) == [
        "store backend"
    ]


def test_a_deleted_unified_id_is_announced_with_only_the_accounts_each_client_sees(
    make_client, make_service, service, make_account, hanako
):
    pos = make_service("pos")
    store_only = make_client("store backend", services=[service], webhook_url="http://h/s")
    both = make_client("group crm", services=[service, pos], webhook_url="http://h/c")
    make_client("pos backend", services=[pos], webhook_url="http://h/p")
    make_client("newsletter", services=[make_service("news")], webhook_url="http://h/n")
    claims.link(
        account=make_account("S1", service=service), customer=hanako, proof="code", request=None
    )
    claims.link(
        account=make_account("P1", service=pos), customer=hanako, proof="code", request=None
    )
    WebhookDelivery.objects.all().delete()

    webhooks.emit_account_deleted(hanako)

    bodies = {
        d.client_id: json.loads(d.body)
        for d in WebhookDelivery.objects.filter(event_type="customer.deleted")
    }
    assert len(bodies) == 3  # not the newsletter: it sees none of hanako's accounts
    assert bodies[store_only.client_id]["data"] == {
        "unified_id": hanako.unified_id,
        "accounts": [{"service": "store", "external_id": "S1"}],
    }
    assert sorted(a["external_id"] for a in bodies[both.client_id]["data"]["accounts"]) == [
        "P1",
        "S1",
    ]
    assert len({body["id"] for body in bodies.values()}) == 1


def test_verify_accepts_a_fresh_signature_and_rejects_replays_and_tampering():
    body = b'{"id":"1"}'
    now = time.time()
    timestamp = str(int(now))
    signature = webhooks.sign("whsec_x", timestamp, body)

    assert webhooks.verify("whsec_x", timestamp=timestamp, body=body, signature=signature)
    assert not webhooks.verify("whsec_y", timestamp=timestamp, body=body, signature=signature)
    assert not webhooks.verify(
        "whsec_x", timestamp=timestamp, body=b'{"id":"2"}', signature=signature
    )
    old = str(int(now) - 301)
    assert not webhooks.verify(
        "whsec_x", timestamp=old, body=body, signature=webhooks.sign("whsec_x", old, body)
    )
    assert not webhooks.verify("whsec_x", timestamp="soon", body=body, signature=signature)
