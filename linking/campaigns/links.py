"""The personal link in a campaign email, and linking through it.

The link carries a random token; only its SHA-256 is stored, with an expiry. The
mail reaching the legacy record's address is the proof of ownership, so whoever
follows the link and confirms, signed in with a unified ID, links that account
(proof "campaign", attributed to the campaign) if its service accepts that proof.
"""

from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from linking import claims
from linking.campaigns.models import Delivery
from linking.campaigns.sending import token_hash
from linking.models import Proof

SESSION_KEY = "campaign_link"


class LinkInvalid(Exception):
    """No such link, or it has expired."""


def _deliveries() -> QuerySet[Delivery]:
    return Delivery.objects.select_related("campaign", "account__service")


def find(token: str) -> Delivery:
    if not token or len(token) > 100:
        raise LinkInvalid
    delivery = _deliveries().filter(token_hash=token_hash(token)).first()
    if delivery is None or delivery.token_expires_at is None:
        raise LinkInvalid
    if delivery.token_expires_at <= timezone.now():
        raise LinkInvalid
    return delivery


def record_click(delivery: Delivery, request: HttpRequest) -> None:
    """Counted once (the first time), and remembered in the session, so sign-up and
    email verification can happen before the confirmation."""
    Delivery.objects.filter(pk=delivery.pk, clicked_at__isnull=True).update(
        clicked_at=timezone.now()
    )
    request.session[SESSION_KEY] = delivery.token_hash


def pending(request: HttpRequest) -> Delivery | None:
    """The delivery whose link this browser followed, if still valid."""
    hashed = request.session.get(SESSION_KEY)
    if not isinstance(hashed, str):
        return None
    delivery = _deliveries().filter(token_hash=hashed).first()
    if delivery is None or delivery.token_expires_at <= timezone.now():
        return None
    return delivery


def forget(request: HttpRequest) -> None:
    request.session.pop(SESSION_KEY, None)


def accepts_campaign_proof(delivery: Delivery) -> bool:
    return delivery.account.service.accepts(Proof.CAMPAIGN)


def link_through(delivery: Delivery, *, customer, request: HttpRequest) -> bool:
    """Link the delivery's legacy account to the customer; True if linked now.
    Raises claims.AccountTaken when it belongs to another unified ID."""
    linked = claims.link(
        account=delivery.account,
        customer=customer,
        proof=Proof.CAMPAIGN,
        request=request,
        campaign_id=delivery.campaign_id,
    )
    if linked:
        Delivery.objects.filter(pk=delivery.pk, linked_at__isnull=True).update(
            linked_at=delivery.account.linked_at
        )
    return linked
