"""Unsubscribing: the address gets no campaign email again (any campaign)."""

from django.utils import timezone

from linking.campaigns.models import Delivery, Suppression


def unsubscribe(delivery: Delivery, *, detail: str = "") -> None:
    Suppression.objects.get_or_create(
        email_key=delivery.email_key,
        defaults={
            "reason": Suppression.Reason.UNSUBSCRIBED,
            "campaign_id": delivery.campaign_id,
            "detail": detail,
        },
    )
    Delivery.objects.filter(pk=delivery.pk, unsubscribed_at__isnull=True).update(
        unsubscribed_at=timezone.now()
    )


def is_suppressed(email_key: str) -> bool:
    return Suppression.objects.filter(email_key=email_key).exists()
