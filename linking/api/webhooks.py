"""Webhooks: group services hear about links, unlinks and deleted unified IDs.

Each event becomes one WebhookDelivery per subscribed client, written in the
transaction of the change itself (an outbox): a change that rolls back leaves no
delivery, and a committed one always has its rows. After commit the deliveries
are queued for Celery (linking.api.tasks); the beat sweep re-queues any whose
message was lost.

A delivery is an HTTP POST of a JSON body, signed per the Standard Webhooks
specification (https://www.standardwebhooks.com), so any of its libraries verifies it:

    webhook-id: the event's UUID (the same in every retry: deduplicate on it)
    webhook-timestamp: Unix time of this attempt, in seconds
    webhook-signature: v1,<base64 HMAC-SHA256(key, id + "." + timestamp + "." + body)>

The key is the client's secret (whsec_<base64>) decoded. After a rotation the header
carries two signatures, space-separated, one per secret, until the old one is
retired. Every event about a legacy account carries that account's sequence
number, which grows by one per event in commit order: a receiver applies an event
only if its sequence is above the last one applied for that account.
Each attempt goes to the client's webhook URL as it is at that moment, through
linking.api.outbound (public addresses only).
Any 2xx answer counts as delivered; anything else is retried with exponential
backoff (WEBHOOK_RETRY_BASE_SECONDS, doubling, at most WEBHOOK_RETRY_MAX_SECONDS)
until WEBHOOK_MAX_ATTEMPTS, then the delivery is dead-lettered for staff to
redeliver from the admin. Delivery is at least once, and not in order.
"""

import json
import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import requests
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.utils import timezone
from standardwebhooks import Webhook

from linking.api import outbound
from linking.api.models import ServiceClient, WebhookAttempt, WebhookDelivery
from linking.models import LinkEvent

log = logging.getLogger(__name__)

EventType = WebhookDelivery.EventType
_LINK_EVENT_TYPES = {
    LinkEvent.Action.LINK: EventType.LINKED,
    LinkEvent.Action.UNLINK: EventType.UNLINKED,
}


# Emitting (inside the transaction of the change) -------------------------------------


@receiver(post_save, sender=LinkEvent)
def _link_event_created(sender, instance: LinkEvent, created: bool, **kwargs) -> None:
    """linking.claims writes exactly one LinkEvent per link and unlink, in the
    transaction of the change: the outbox rows join that transaction."""
    if created:
        link_changed(instance)


def link_changed(event: LinkEvent) -> list[WebhookDelivery]:
    """The deliveries of one link or unlink, one per subscribed client."""
    account = event.account
    subscribers = ServiceClient.objects.filter(services=account.service_id).exclude(webhook_url="")
    if not subscribers:
        return []
    data = {
        "service": account.service.code,
        "external_id": account.external_id,
        "sequence": next_sequences([account.pk])[account.pk],
        "unified_id": event.customer_unified_id,
        "proof": event.proof or None,
        "link_event_id": str(event.pk),
    }
    return _emit(_LINK_EVENT_TYPES[event.action], {client: data for client in subscribers})


def emit_account_deleted(customer) -> list[WebhookDelivery]:
    """Tell every client that can see one of the customer's linked accounts that the
    unified ID is gone. Call it in the deletion's transaction, before the accounts
    are unlinked; each client hears only about the accounts it may see."""
    accounts = list(customer.legacy_accounts.select_related("service"))
    subscribers = list(
        ServiceClient.objects.filter(services__in={account.service_id for account in accounts})
        .exclude(webhook_url="")
        .distinct()
        .prefetch_related("services")
    )
    if not subscribers:
        return []
    sequences = next_sequences([account.pk for account in accounts])
    by_service: dict[int, list[dict]] = {}
    for account in accounts:
        by_service.setdefault(account.service_id, []).append(
            {
                "service": account.service.code,
                "external_id": account.external_id,
                "sequence": sequences[account.pk],
            }
        )
    payloads = {}
    for client in subscribers:
        visible = [
            item for service in client.services.all() for item in by_service.get(service.pk, [])
        ]
        payloads[client] = {"unified_id": customer.unified_id, "accounts": visible}
    return _emit(EventType.CUSTOMER_DELETED, payloads)


def ping(client: ServiceClient) -> WebhookDelivery | None:
    """A signed test event for one client, delivered like any other; None if the
    client has no webhook URL."""
    if not client.webhook_url:
        return None
    with transaction.atomic():
        return _emit(EventType.PING, {client: {"client": client.client.name}})[0]


def next_sequences(account_ids: Iterable[int]) -> dict[int, int]:
    """Each account's next event number, in the caller's transaction. The upsert
    locks the account's counter row until commit, so events about one account are
    numbered in the order their transactions commit, by any number of processes."""
    sql = (
        'INSERT INTO api_accountsequence (account_id, "last") VALUES (%s, 1) '
        'ON CONFLICT (account_id) DO UPDATE SET "last" = api_accountsequence."last" + 1 '
        'RETURNING "last"'
    )
    numbers = {}
    with connection.cursor() as cursor:
        # One order for every caller, so two multi-account events cannot deadlock.
        for account_id in sorted(set(account_ids)):
            cursor.execute(sql, [account_id])
            numbers[account_id] = cursor.fetchone()[0]
    return numbers


def _emit(event_type: str, payloads: dict[ServiceClient, dict]) -> list[WebhookDelivery]:
    if not payloads:
        return []
    # One event ID for every client, so logs line up across services.
    event_id, now = uuid.uuid4(), timezone.now()
    deliveries = [
        WebhookDelivery(
            event_id=event_id,
            event_type=event_type,
            client=client,
            created_at=now,
            body=json.dumps(
                {
                    "id": str(event_id),
                    "type": event_type,
                    "created_at": now.isoformat(),
                    "data": data,
                },
                ensure_ascii=False,
                separators=(",", ":"),
            ),
        )
        for client, data in payloads.items()
    ]
    created = WebhookDelivery.objects.bulk_create(deliveries)
    ids = [delivery.pk for delivery in created]
    transaction.on_commit(lambda: enqueue(ids), robust=True)
    return created


def enqueue(delivery_ids: Iterable[int]) -> None:
    from linking.api import tasks

    for delivery_id in delivery_ids:
        tasks.deliver.delay(delivery_id)


# Delivering (Celery) -----------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    status: str | None  # None: someone else holds it, or it is not due
    retry_in: float | None = None


def retry_delay(attempt: int) -> float:
    """Seconds to wait after the attempt-th failure: base, 2 x base, 4 x base ..."""
    return min(
        settings.WEBHOOK_RETRY_MAX_SECONDS,
        settings.WEBHOOK_RETRY_BASE_SECONDS * 2 ** (attempt - 1),
    )


def deliver(delivery_id: int) -> Outcome:
    """Make one attempt, if the delivery is due and no one else is making it."""
    now = timezone.now()
    lease = timedelta(seconds=settings.WEBHOOK_TIMEOUT_SECONDS * 2 + 30)
    claimed = WebhookDelivery.objects.filter(
        Q(status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now)
        | Q(status=WebhookDelivery.Status.SENDING, lease_until__lt=now),
        pk=delivery_id,
    ).update(status=WebhookDelivery.Status.SENDING, lease_until=now + lease)
    if not claimed:
        return Outcome(status=None)
    # The client's URL and secrets as they are now, not as they were at the event.
    delivery = WebhookDelivery.objects.select_related("client").get(pk=delivery_id)
    number = delivery.attempts + 1
    url = delivery.client.webhook_url
    status_code, error, duration_ms = _post(delivery, url)
    WebhookAttempt.objects.create(
        delivery=delivery,
        number=number,
        status_code=status_code,
        error=error,
        duration_ms=duration_ms,
    )
    fields = {
        "url": url,
        "attempts": number,
        "last_status_code": status_code,
        "last_error": error,
        "lease_until": None,
    }
    retry_in = None
    if status_code is not None and 200 <= status_code < 300:
        fields.update(status=WebhookDelivery.Status.DELIVERED, delivered_at=timezone.now())
    elif number >= settings.WEBHOOK_MAX_ATTEMPTS:
        fields.update(status=WebhookDelivery.Status.DEAD)
        log.warning("webhook delivery %s dead-lettered after %s attempts", delivery.pk, number)
    else:
        retry_in = retry_delay(number)
        fields.update(
            status=WebhookDelivery.Status.PENDING,
            next_attempt_at=timezone.now() + timedelta(seconds=retry_in),
        )
    WebhookDelivery.objects.filter(pk=delivery.pk).update(**fields)
    return Outcome(status=fields["status"], retry_in=retry_in)


def _post(delivery: WebhookDelivery, url: str) -> tuple[int | None, str, int]:
    if not url:
        return None, "no webhook URL", 0
    body = delivery.body.encode()
    started = time.monotonic()
    try:
        response = outbound.post(
            url,
            body=body,
            headers=signed_headers(delivery, body),
            timeout=settings.WEBHOOK_TIMEOUT_SECONDS,
        )
    except outbound.Refused as exc:
        return None, str(exc), _ms_since(started)
    except requests.RequestException as exc:
        return None, f"{type(exc).__name__}: {exc}"[:300], _ms_since(started)
    error = "" if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
    return response.status_code, error, _ms_since(started)


def signed_headers(delivery: WebhookDelivery, body: bytes) -> dict[str, str]:
    """Standard Webhooks headers, one signature per secret that signs now."""
    message_id = str(delivery.event_id)
    sent_at = datetime.fromtimestamp(int(time.time()), UTC)
    signatures = [
        Webhook(secret).sign(message_id, sent_at, body)
        for secret in delivery.client.signing_secrets(timezone.now())
    ]
    return {
        "Content-Type": "application/json",
        "User-Agent": "unified-id-webhooks/2",
        "webhook-id": message_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": " ".join(signatures),
    }


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def redeliver(deliveries: Iterable[WebhookDelivery]) -> int:
    """Staff's second chance for dead (or delivered) deliveries: a fresh round of
    attempts, starting now."""
    ids = [
        delivery.pk for delivery in deliveries if delivery.status != WebhookDelivery.Status.SENDING
    ]
    with transaction.atomic():
        count = WebhookDelivery.objects.filter(pk__in=ids).update(
            status=WebhookDelivery.Status.PENDING,
            attempts=0,
            next_attempt_at=timezone.now(),
            lease_until=None,
        )
        transaction.on_commit(lambda: enqueue(ids), robust=True)
    return count


def overdue(grace_seconds: int = 60) -> list[int]:
    """Deliveries whose queued message seems lost: due a while ago, or held by a
    worker whose lease ran out."""
    now = timezone.now()
    return list(
        WebhookDelivery.objects.filter(
            Q(
                status=WebhookDelivery.Status.PENDING,
                next_attempt_at__lte=now - timedelta(seconds=grace_seconds),
            )
            | Q(status=WebhookDelivery.Status.SENDING, lease_until__lt=now)
        ).values_list("pk", flat=True)[:1000]
    )
