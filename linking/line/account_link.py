"""Binding a LINE Official Account friend to a unified ID (LINE's account link).

The friend asks the bot; the bot issues a link token for that LINE user and replies
with our link page. A signed-in customer confirms there; we store a single-use nonce
(its SHA-256 only) and send the browser to LINE's dialog, which sends our webhook an
accountLink event with the nonce. Spending the nonce is one conditional UPDATE.
A LINE user bound elsewhere is refused; a customer's earlier LINE user is replaced.
"""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from accounts import audit
from accounts.audit import ActorKind
from linking.line import client
from linking.line.friendship import friend
from linking.line.models import AccountLinkNonce, LineFriend, LinkToken

LINK_TOKEN_SECONDS = 600  # LINE's own lifetime of a link token
NONCE_SECONDS = 600
METHOD = "line"


class LinkExpired(Exception):
    """A link token we did not issue, or issued too long ago."""


@dataclass(frozen=True)
class Outcome:
    linked: bool
    reason: str = ""


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def issue_link_token(*, line_user_id: str) -> str:
    """A link token from LINE for this friend, remembered (by digest) for as long as
    LINE honours it, so our page opens only for tokens our bot handed out."""
    link_token = client.issue_link_token(line_user_id=line_user_id)
    LinkToken.objects.create(
        token_hash=_digest(link_token),
        line_user_id=line_user_id,
        expires_at=timezone.now() + timedelta(seconds=LINK_TOKEN_SECONDS),
    )
    return link_token


def link_page_url(link_token: str) -> str:
    """Our confirmation page, as the bot's reply carries it."""
    return f"{settings.SITE_URL}{reverse('line:link')}?{urlencode({'linkToken': link_token})}"


def _open_tokens(link_token: str):
    return LinkToken.objects.filter(
        token_hash=_digest(link_token), used_at__isnull=True, expires_at__gt=timezone.now()
    )


def line_user_for(link_token: str) -> str:
    """The LINE user our bot issued link_token for, while it is open."""
    line_user_id = _open_tokens(link_token).values_list("line_user_id", flat=True).first()
    if not link_token or not line_user_id:
        raise LinkExpired
    return line_user_id


def start(*, customer, link_token: str, request: HttpRequest) -> str:
    """The customer confirmed: a new nonce, and the URL of LINE's dialog."""
    line_user_id = line_user_for(link_token)
    if not _open_tokens(link_token).update(used_at=timezone.now()):
        raise LinkExpired  # confirmed at the same moment in another tab
    nonce = secrets.token_urlsafe(32)
    AccountLinkNonce.objects.create(
        nonce_hash=_digest(nonce),
        customer=customer,
        link_token=link_token,
        line_user_id=line_user_id,
        expires_at=timezone.now() + timedelta(seconds=NONCE_SECONDS),
    )
    audit.record(
        "line_link_confirmed",
        request=request,
        customer=customer,
        method=METHOD,
        data={"line_user_id": line_user_id},
    )
    return client.account_link_url(link_token=link_token, nonce=nonce)


def complete(*, line_user_id: str, result: str, nonce: str, request: HttpRequest) -> Outcome:
    """An accountLink event from LINE (signature already checked)."""
    data = {"line_user_id": line_user_id, "result": result}
    if result != "ok":
        _refuse("line_link_failed", "LINE reported the link failed", data, request)
        return Outcome(False, "failed")
    now = timezone.now()
    with transaction.atomic():
        spent = AccountLinkNonce.objects.filter(
            nonce_hash=_digest(nonce or ""),
            used_at__isnull=True,
            expires_at__gt=now,
            line_user_id=line_user_id,
        ).update(used_at=now)
        if not spent:
            _refuse(
                "line_link_refused",
                "nonce unknown, used, expired or not this user's",
                data,
                request,
            )
            return Outcome(False, "nonce")
        customer = (
            AccountLinkNonce.objects.select_related("customer")
            .get(nonce_hash=_digest(nonce))
            .customer
        )
        return bind(customer=customer, line_user_id=line_user_id, request=request)


def bind(*, customer, line_user_id: str, request: HttpRequest | None) -> Outcome:
    """Bind line_user_id to customer: never away from another customer; the
    customer's earlier LINE user, if any, is unbound."""
    data = {"line_user_id": line_user_id}
    row = friend(line_user_id)
    now = timezone.now()
    try:
        with transaction.atomic():
            earlier = list(
                LineFriend.objects.filter(customer=customer).exclude(pk=row.pk).select_for_update()
            )
            LineFriend.objects.filter(pk__in=[e.pk for e in earlier]).update(
                customer=None, linked_at=None
            )
            taken = LineFriend.objects.filter(
                Q(customer__isnull=True) | Q(customer=customer), pk=row.pk
            ).update(customer=customer, linked_at=now)
            if not taken:
                raise IntegrityError("bound to another customer")
    except IntegrityError:
        audit.record(
            "line_link_conflict",
            request=request,
            customer=customer,
            method=METHOD,
            reason="this LINE account is linked to another unified ID",
            data=data,
        )
        return Outcome(False, "taken")
    for old in earlier:
        audit.record(
            "line_unlinked",
            request=request,
            customer=customer,
            method=METHOD,
            reason="replaced by another LINE account",
            data={"line_user_id": old.line_user_id},
        )
    audit.record("line_linked", request=request, customer=customer, method=METHOD, data=data)
    return Outcome(True)


def unlink(
    *,
    customer,
    request: HttpRequest | None,
    reason: str = "customer unlinked",
    actor_kind: str = ActorKind.CUSTOMER,
) -> bool:
    with transaction.atomic():
        row = LineFriend.objects.select_for_update().filter(customer=customer).first()
        if row is None:
            return False
        LineFriend.objects.filter(pk=row.pk).update(customer=None, linked_at=None)
        audit.record(
            "line_unlinked",
            request=request,
            customer=customer,
            method=METHOD,
            reason=reason,
            actor_kind=actor_kind,
            data={"line_user_id": row.line_user_id},
        )
    return True


def _refuse(action: str, reason: str, data: dict, request: HttpRequest | None) -> None:
    audit.record(
        action,
        request=request,
        method=METHOD,
        reason=reason,
        actor_kind=ActorKind.SYSTEM,
        data=data,
    )
