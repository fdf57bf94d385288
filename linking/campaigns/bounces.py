"""Bounces and complaints suppress the address (no campaign email again).

Two ways in: an email service's tracking webhook, normalized by django-anymail
(its `tracking` signal: bounced, complained, rejected), and delivery status
notifications (RFC 3464 DSN mail) read by `manage.py read_campaign_mail`.
"""

import email
import email.policy
import logging
import re
from dataclasses import dataclass
from email.message import Message

from anymail.signals import AnymailTrackingEvent, EventType, tracking
from django.conf import settings
from django.dispatch import receiver
from django.utils import timezone

from linking.campaigns import content
from linking.campaigns.models import Delivery, Suppression
from linking.normalize import normalize_email

logger = logging.getLogger(__name__)
_SUPPRESSING = {
    EventType.BOUNCED: Suppression.Reason.BOUNCED,
    EventType.REJECTED: Suppression.Reason.BOUNCED,
    EventType.COMPLAINED: Suppression.Reason.COMPLAINED,
}
_MESSAGE_ID = re.compile(r"<campaign\.(\d+)\.(\d+)\.(\d+)@[^>]+>")
_ADDRESS = re.compile(r"[^\s<>;]+@[^\s<>;]+")


@dataclass(frozen=True)
class Bounce:
    email: str
    hard: bool
    message_id: str = ""
    detail: str = ""
    reason: str = Suppression.Reason.BOUNCED
    delivery_id: int | None = None  # as the email service reports it back (metadata)


def delivery_for(message_id: str) -> Delivery | None:
    match = _MESSAGE_ID.search(message_id or "")
    if not match:
        return None
    campaign_id, step, pk = (int(part) for part in match.groups())
    delivery = Delivery.objects.filter(pk=pk, campaign_id=campaign_id, step=step).first()
    if delivery is None or content.message_id(delivery) != match[0]:
        return None
    return delivery


@receiver(tracking)
def on_tracking(sender, event: AnymailTrackingEvent, esp_name: str, **kwargs) -> None:
    """An email service reports on a sent email; bounces, rejections and complaints
    suppress the address. Ignored unless the webhook needs its secret: without one,
    anymail would take reports from anyone."""
    reason = _SUPPRESSING.get(event.event_type)
    if reason is None or not event.recipient:
        return
    if not settings.ANYMAIL.get("WEBHOOK_SECRET"):
        logger.warning("%s report ignored: ANYMAIL_WEBHOOK_SECRET is not set", esp_name)
        return
    delivery_id = str((event.metadata or {}).get("delivery", ""))[:18]
    said = (esp_name, event.event_type, event.reject_reason, event.mta_response)
    record(
        Bounce(
            email=event.recipient,
            hard=True,
            detail=" ".join(part for part in said if part),
            reason=reason,
            delivery_id=int(delivery_id) if delivery_id.isdigit() else None,
        )
    )


def record(bounce: Bounce) -> bool:
    """Record one bounce; True if it suppressed an address."""
    if bounce.delivery_id is not None:
        delivery = Delivery.objects.filter(pk=bounce.delivery_id).first()
    else:
        delivery = delivery_for(bounce.message_id)
    email_key = normalize_email(bounce.email) or (delivery.email_key if delivery else "")
    if not email_key or not bounce.hard:
        return False
    if delivery is not None and delivery.email_key == email_key:
        Delivery.objects.filter(pk=delivery.pk, bounced_at__isnull=True).update(
            bounced_at=timezone.now()
        )
    _, created = Suppression.objects.get_or_create(
        email_key=email_key,
        defaults={
            "reason": bounce.reason,
            "campaign_id": delivery.campaign_id if delivery else None,
            "detail": bounce.detail[:1000],
        },
    )
    return created


def parse_dsn(raw: bytes) -> list[Bounce]:
    """The failed recipients of a delivery status notification (RFC 3464); [] for
    any other message."""
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    if message.get_content_type() != "multipart/report":
        return []
    original_id = _original_message_id(message)
    bounces = []
    for part in message.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        blocks = part.get_payload()
        for block in blocks[1:] if isinstance(blocks, list) else []:
            action = (block.get("Action") or "").strip().lower()
            status = (block.get("Status") or "").strip()
            recipient = _ADDRESS.search(
                block.get("Final-Recipient") or block.get("Original-Recipient") or ""
            )
            if action != "failed" or not recipient:
                continue
            bounces.append(
                Bounce(
                    email=recipient[0],
                    hard=status.startswith("5"),
                    message_id=original_id,
                    detail=f"{status} {block.get('Diagnostic-Code', '')}".strip(),
                )
            )
    return bounces


def _original_message_id(report: Message) -> str:
    for part in report.walk():
        kind = part.get_content_type()
        if kind == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list) and inner:
                return inner[0].get("Message-ID", "")
        if kind == "text/rfc822-headers":
            headers = email.message_from_string(
                part.get_payload(decode=True).decode("utf-8", "replace")
            )
            return headers.get("Message-ID", "")
    return ""
