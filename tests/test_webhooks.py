"""Webhooks: Standard Webhooks-signed events for links, unlinks and deleted unified
IDs, delivered to a real local HTTP receiver (which verifies each with the
standardwebhooks library), retried with backoff, dead-lettered, redelivered."""

import base64
import importlib
import json
import secrets
from datetime import UTC, datetime

import pytest
from django.apps import apps as django_apps
from django.db import transaction
from standardwebhooks import Webhook, WebhookVerificationError

from linking import claims
from linking.api import outbox, webhooks
from linking.api.models import AccountSequence, ServiceClient, WebhookDelivery

pytest_plugins = ["tests.fixtures.api"]


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
    receiver.secret = subscriber.access.webhook_secret
    account = make_account("S0001", service=service)
    with django_capture_on_commit_callbacks() as queued:
        claims.link(account=account, customer=hanako, proof="code", request=None)
    delivery = WebhookDelivery.objects.get()
    assert queued  # the Celery message goes out only after commit

    outcomes = [webhooks.deliver(delivery.pk) for _ in range(3)]

    assert [o.status for o in outcomes] == ["pending", "pending", "delivered"]
    assert receiver.count() == 3
    third = receiver.received[2]
    assert third.verified
    event = json.loads(third.body)
    assert event["type"] == "account.linked"
    assert event["data"] == {
        "service": "store",
        "external_id": "S0001",
        "sequence": 1,
        "unified_id": hanako.unified_id,
        "proof": "code",
        "link_event_id": event["data"]["link_event_id"],
    }
    # Every retry carries the same event ID, so the receiver can deduplicate.
    assert {r.headers["webhook-id"] for r in receiver.received} == {event["id"]}
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
    receiver.secret = make_client(
        services=[service], webhook_url=receiver.url
    ).access.webhook_secret
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
    receiver.secret = make_client(
        services=[service], webhook_url=receiver.url
    ).access.webhook_secret
    claims.link(account=make_account(service=service), customer=hanako, proof="code", request=None)
    delivery = WebhookDelivery.objects.get()

    assert [webhooks.deliver(delivery.pk).status for _ in range(4)] == [
        "pending",
        "pending",
        "dead",
        None,
    ]
    assert receiver.count() == 3

    assert outbox.redeliver(WebhookDelivery.objects.filter(pk=delivery.pk)) == 1
    assert webhooks.deliver(delivery.pk).status == "delivered"
    assert receiver.count() == 4


def test_an_unreachable_receiver_counts_as_a_failed_attempt(
    settings, make_client, service, make_account, hanako
):
    settings.WEBHOOK_RETRY_BASE_SECONDS = 0
    settings.WEBHOOK_TIMEOUT_SECONDS = 2
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1:9"]
    make_client(services=[service], webhook_url="http://127.0.0.1:9/nothing-listens")
    claims.link(account=make_account(service=service), customer=hanako, proof="code", request=None)

    outcome = webhooks.deliver(WebhookDelivery.objects.get().pk)

    assert outcome.status == "pending"
    delivery = WebhookDelivery.objects.get()
    assert delivery.last_status_code is None
    assert "ConnectionError" in delivery.last_error


def test_unlink_is_announced_too_with_the_next_sequence_number(
    make_client, service, make_account, hanako
):
    make_client(services=[service], webhook_url="http://127.0.0.1:9/")
    account = make_account(service=service)
    claims.link(account=account, customer=hanako, proof="code", request=None)
    claims.unlink(account=account, customer=hanako, request=None)

    events = [json.loads(d.body) for d in WebhookDelivery.objects.order_by("id")]

    assert [(e["type"], e["data"]["sequence"]) for e in events] == [
        ("account.linked", 1),
        ("account.unlinked", 2),
    ]


def test_a_link_that_rolls_back_announces_nothing(make_client, service, make_account, hanako):
    make_client(services=[service], webhook_url="http://127.0.0.1:9/")
    account = make_account(service=service)

    with pytest.raises(RuntimeError), transaction.atomic():
        claims.link(account=account, customer=hanako, proof="code", request=None)
        raise RuntimeError("the surrounding work failed")

    assert not WebhookDelivery.objects.exists()
    assert not AccountSequence.objects.exists()  # the number was not used up


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

    outbox.emit_account_deleted(hanako)

    bodies = {
        d.client_id: json.loads(d.body)
        for d in WebhookDelivery.objects.filter(event_type="customer.deleted")
    }
    assert len(bodies) == 3  # not the newsletter: it sees none of hanako's accounts
    # Linking was event 1 of each account; the deletion is event 2.
    assert bodies[store_only.client_id]["data"] == {
        "unified_id": hanako.unified_id,
        "accounts": [{"service": "store", "external_id": "S1", "sequence": 2}],
    }
    assert sorted(a["external_id"] for a in bodies[both.client_id]["data"]["accounts"]) == [
        "P1",
        "S1",
    ]
    assert len({body["id"] for body in bodies.values()}) == 1


CHANGELIST = "/admin/allauth_idp_oidc/client/"


def _action(admin_client, action: str, registered) -> str:
    page = admin_client.post(
        CHANGELIST,
        {"action": action, "_selected_action": [registered.client.pk]},
        follow=True,
        headers={"accept-language": "en"},
    )
    assert page.status_code == 200
    return page.content.decode()


def test_during_a_rotation_old_and_new_secret_both_verify_until_the_old_one_is_retired(
    settings, otp_admin_client, make_client, service, make_account, hanako, receiver
):
    registered = make_client(services=[service], webhook_url=receiver.url)
    old = registered.access.webhook_secret
    receiver.secret = old  # the receiver has not switched yet
    page = _action(otp_admin_client, "rotate_webhook_secret", registered)
    registered.access.refresh_from_db()
    new = registered.access.webhook_secret
    assert new != old
    assert new in page  # shown to staff once
    account = make_account(service=service)

    claims.link(account=account, customer=hanako, proof="code", request=None)
    assert webhooks.deliver(WebhookDelivery.objects.get().pk).status == "delivered"

    during = receiver.received[-1]
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    assert Webhook(old).verify(during.body, during.headers)["type"] == "account.linked"
    assert Webhook(new).verify(during.body, during.headers)["type"] == "account.linked"

    receiver.secret = new  # switched; staff retire the old secret
    _action(otp_admin_client, "retire_previous_webhook_secret", registered)
    claims.unlink(account=account, customer=hanako, request=None)
    unlinked = WebhookDelivery.objects.get(event_type="account.unlinked")
    assert webhooks.deliver(unlinked.pk).status == "delivered"

    after = receiver.received[-1]
    assert Webhook(new).verify(after.body, after.headers)["type"] == "account.unlinked"
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(after.body, after.headers)


def test_the_old_secret_stops_signing_when_its_overlap_ends(settings, make_client, receiver):
    settings.WEBHOOK_SECRET_OVERLAP_HOURS = 0
    registered = make_client(webhook_url=receiver.url)
    old = registered.access.webhook_secret
    receiver.secret = registered.access.rotate_webhook_secret()

    assert webhooks.deliver(outbox.ping(registered.access).pk).status == "delivered"

    request = receiver.received[-1]
    assert len(request.headers["webhook-signature"].split(" ")) == 1
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(request.body, request.headers)


def test_staff_send_a_signed_test_ping_from_the_admin(otp_admin_client, make_client, receiver):
    registered = make_client(webhook_url=receiver.url)
    receiver.secret = registered.access.webhook_secret

    page = _action(otp_admin_client, "send_webhook_ping", registered)

    assert "Ping queued for store backend" in page
    ping = WebhookDelivery.objects.get()
    assert webhooks.deliver(ping.pk).status == "delivered"
    event = Webhook(registered.access.webhook_secret).verify(
        receiver.received[0].body, receiver.received[0].headers
    )
    assert (event["type"], event["data"]) == ("ping", {"client": "store backend"})


def test_a_ping_needs_a_webhook_url(otp_admin_client, make_client):
    registered = make_client(webhook_url="")

    page = _action(otp_admin_client, "send_webhook_ping", registered)

    assert "No webhook URL is set for store backend." in page
    assert not WebhookDelivery.objects.exists()


def test_a_pending_delivery_goes_to_the_url_the_client_has_now(
    settings, make_client, service, make_account, hanako, make_receiver
):
    settings.WEBHOOK_RETRY_BASE_SECONDS = 0
    old, new = make_receiver(), make_receiver()
    old.answers = [500]
    registered = make_client(services=[service], webhook_url=old.url)
    old.secret = new.secret = registered.access.webhook_secret
    claims.link(account=make_account(service=service), customer=hanako, proof="code", request=None)
    delivery = WebhookDelivery.objects.get()
    assert webhooks.deliver(delivery.pk).status == "pending"

    registered.access.webhook_url = new.url
    registered.access.full_clean()
    registered.access.save()
    assert webhooks.deliver(delivery.pk).status == "delivered"

    assert (old.count(), new.count()) == (1, 1)
    delivery.refresh_from_db()
    assert delivery.url == new.url  # where the last attempt went


def _apply_in_arrival_order(received) -> dict[tuple[str, str], str | None]:
    """What a receiver does with the sequence: apply an event only if it is newer
    than the last one applied for that account, else drop it as stale."""
    applied: dict[tuple[str, str], tuple[int, str | None]] = {}
    for request in received:
        if request.status != 200:
            continue  # not accepted, so not applied: it will come again
        event = json.loads(request.body)
        data = event["data"]
        key = (data["service"], data["external_id"])
        if key in applied and data["sequence"] <= applied[key][0]:
            continue
        owner = data["unified_id"] if event["type"] == "account.linked" else None
        applied[key] = (data["sequence"], owner)
    return {key: owner for key, (_sequence, owner) in applied.items()}


def test_a_receiver_drops_a_late_retry_by_its_sequence(
    settings, make_client, service, make_account, make_customer, receiver
):
    settings.WEBHOOK_RETRY_BASE_SECONDS = 0
    receiver.answers = [200, 500]  # the unlink fails the first time
    receiver.secret = make_client(
        services=[service], webhook_url=receiver.url
    ).access.webhook_secret
    hanako, taro = make_customer("hanako@example.jp"), make_customer("taro@example.jp")
    account = make_account("S0009", service=service)

    claims.link(account=account, customer=hanako, proof="code", request=None)
    claims.unlink(account=account, customer=hanako, request=None)
    claims.link(account=account, customer=taro, proof="code", request=None)
    linked, unlinked, relinked = WebhookDelivery.objects.order_by("id")
    assert webhooks.deliver(linked.pk).status == "delivered"
    assert webhooks.deliver(unlinked.pk).status == "pending"
    assert webhooks.deliver(relinked.pk).status == "delivered"
    assert webhooks.deliver(unlinked.pk).status == "delivered"  # the retry, last

    accepted = [json.loads(r.body)["type"] for r in receiver.received if r.status == 200]
    assert accepted == ["account.linked", "account.linked", "account.unlinked"]
    assert _apply_in_arrival_order(receiver.received) == {("store", "S0009"): taro.unified_id}


def test_secrets_from_before_standard_webhooks_keep_their_key(make_client):
    """Migration api.0004 respells the old URL-safe secrets in standard base64."""
    registered = make_client()
    key = b"\xfb\xff" + secrets.token_bytes(30)  # URL-safe base64 starts "-_"
    old = "whsec_" + base64.urlsafe_b64encode(key).decode().rstrip("=")
    ServiceClient.objects.filter(pk=registered.access.pk).update(webhook_secret=old)
    migration = importlib.import_module("linking.api.migrations.0004_webhooks_standard")

    migration.standard_base64_secrets(django_apps, None)

    converted = ServiceClient.objects.get(pk=registered.access.pk).webhook_secret
    now = datetime.now(UTC)
    assert Webhook(converted).sign("msg", now, b"{}") == Webhook(key).sign("msg", now, b"{}")
