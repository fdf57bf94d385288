"""OpenID Connect Back-Channel Logout 1.0: when a customer's session here ends
(signing out, a session ended from the session list, the idle or absolute timeout,
deletion of the unified ID), every group service that session signed into is told.
A worker POSTs a signed logout token (sub, sid) to the service's registered
back-channel logout URI, through the public-address guard (accounts.outbound).
The tokens those sign-ins got are revoked at once: they were bound to the session.
"""

import logging
import secrets
import time
import uuid
from importlib import import_module
from urllib.parse import urlencode

import jwt
import requests
from allauth.idp.oidc.adapter import get_adapter
from allauth.usersessions.adapter import DefaultUserSessionsAdapter
from celery import shared_task
from django.conf import settings
from django.contrib.auth.signals import user_logged_out
from django.db import transaction
from django.db.models.signals import pre_delete
from django.dispatch import receiver
from django.http import HttpRequest

from accounts import allauth_compat, outbound
from accounts.models import BackchannelLogout, Customer, ProviderGrant

log = logging.getLogger(__name__)

# In the session's data: the sid of every sign-in at a group service made in it.
SID_KEY = "oidc_provider_sid"
EVENT = "http://schemas.openid.net/event/backchannel-logout"
LOGOUT_TOKEN_SECONDS = 120
RETRY_DELAYS = (10, 60, 300, 1800)


def session_sid(request: HttpRequest) -> str:
    """The sid of this browser session (made on its first sign-in at a service)."""
    sid = request.session.get(SID_KEY)
    if not isinstance(sid, str):
        sid = secrets.token_urlsafe(24)
        request.session[SID_KEY] = sid
    return sid


def sessions_ended(sids: list[str]) -> None:
    """Tell the services; the sign-ins of those sessions are over."""
    sids = [sid for sid in sids if isinstance(sid, str) and sid]
    if sids:
        _end(ProviderGrant.objects.filter(sid__in=sids))


def _end(grants) -> None:
    ended = list(grants.values_list("client_id", "grant_id", "customer__unified_id", "sid"))
    allauth_compat.revoke_grants((client_id, grant_id) for client_id, grant_id, _, _ in ended)
    grants.delete()
    notified = {(client_id, sub, sid) for client_id, _, sub, sid in ended}
    with_uri = set(
        BackchannelLogout.objects.filter(
            client_id__in={client_id for client_id, _, _ in notified}
        ).values_list("client_id", flat=True)
    )
    for client_id, sub, sid in sorted(notified):
        if client_id in with_uri:
            transaction.on_commit(
                lambda args=(client_id, sub, sid): send_logout_token.delay(*args), robust=True
            )


@receiver(user_logged_out)
def _signed_out(sender, request: HttpRequest | None, **kwargs) -> None:
    if request is not None and hasattr(request, "session"):
        sessions_ended([request.session.get(SID_KEY)])


@receiver(pre_delete, sender=Customer)
def _deleted(sender, instance: Customer, **kwargs) -> None:
    _end(ProviderGrant.objects.filter(customer=instance))


class UserSessionsAdapter(DefaultUserSessionsAdapter):
    """allauth's session list: a session ended there ends its sign-ins at services."""

    def end_sessions(self, sessions) -> None:
        store = import_module(settings.SESSION_ENGINE).SessionStore
        sids = [store(session_key=session.session_key).get(SID_KEY) for session in sessions]
        super().end_sessions(sessions)
        sessions_ended(sids)


def logout_token(client_id: str, sub: str, sid: str) -> str:
    """Signed with the provider's signing key, as its ID tokens are."""
    adapter = get_adapter()
    now = int(time.time())
    claims = {
        "iss": adapter.get_issuer(),
        "aud": client_id,
        "iat": now,
        "exp": now + LOGOUT_TOKEN_SECONDS,
        "jti": uuid.uuid4().hex,
        "sub": sub,
        "sid": sid,
        "events": {EVENT: {}},
    }
    pem = adapter.get_signing_key().pem
    return jwt.encode(
        claims,
        pem,
        algorithm="RS256",
        headers={"kid": allauth_compat.key_id(pem), "typ": "logout+jwt"},
    )


@shared_task(name="accounts.send_logout_token", bind=True, max_retries=len(RETRY_DELAYS))
def send_logout_token(self, client_id: str, sub: str, sid: str) -> int | None:
    """POST one logout token; retried when the service is unreachable or answers 5xx.
    A refused (non-public) address is logged and never retried."""
    endpoint = BackchannelLogout.objects.filter(client_id=client_id).first()
    if endpoint is None:
        return None
    body = urlencode({"logout_token": logout_token(client_id, sub, sid)}).encode()
    try:
        response = outbound.post(
            endpoint.uri,
            body=body,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            timeout=settings.WEBHOOK_TIMEOUT_SECONDS,
        )
    except outbound.Refused as refused:
        log.warning("back-channel logout to client %s %s", client_id, refused)
        return None
    except requests.RequestException as exc:
        raise self.retry(exc=exc, countdown=_delay(self.request.retries)) from exc
    if response.status_code >= 500:
        raise self.retry(countdown=_delay(self.request.retries))
    return response.status_code


def _delay(retries: int) -> int:
    return RETRY_DELAYS[min(retries, len(RETRY_DELAYS) - 1)]
