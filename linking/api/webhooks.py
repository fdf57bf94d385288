"""Webhooks: delivering the outbox's events (linking.api.outbox) to group services,
signed per Standard Webhooks, to the client's webhook URL as it is at each attempt
(public addresses only, accounts.outbound). Any 2xx is delivered; anything else is
retried with backoff until WEBHOOK_MAX_ATTEMPTS, then dead-lettered for staff to
redeliver. At least once, not in order; the protocol: docs/architecture.md."""

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import requests
from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from standardwebhooks import Webhook

from accounts import outbound
from linking.api.models import WebhookAttempt, WebhookDelivery

log = logging.getLogger(__name__)


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
    leased = WebhookDelivery.objects.filter(
        Q(status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now)
        | Q(status=WebhookDelivery.Status.SENDING, lease_until__lt=now),
        pk=delivery_id,
    ).update(status=WebhookDelivery.Status.SENDING, lease_until=now + lease)
    if not leased:
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
