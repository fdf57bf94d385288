"""The webhook outbox: each event becomes one WebhookDelivery per subscribed client,
written in the transaction of the change itself, so a change that rolls back leaves
no delivery and a committed one always has its rows. After commit the deliveries
are queued for a worker (linking.api.tasks); the beat sweep re-queues any whose
message was lost. Every event about a legacy account carries that account's
sequence number, which grows by one per event in commit order: a receiver applies
an event only if its sequence is above the last one applied for that account.
"""

import json
import uuid
from collections.abc import Iterable

from django.db import connection, transaction
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.utils import timezone

from linking.api import tasks
from linking.api.models import ServiceClient, WebhookDelivery
from linking.models import LinkEvent

EventType = WebhookDelivery.EventType
_LINK_EVENT_TYPES = {
    LinkEvent.Action.LINK: EventType.LINKED,
    LinkEvent.Action.UNLINK: EventType.UNLINKED,
}


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
    for delivery_id in delivery_ids:
        tasks.deliver.delay(delivery_id)


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
