"""Proof by signing in at the legacy service's own login server (OAuth 2 / OpenID
Connect, with authlib): authorization code with PKCE, state and nonce. The ID
token's claim named by LegacyService.oidc_external_id_claim (default "sub") is the
legacy account's external_id.

The sign-in at the service only proves ownership of a legacy account; it never
signs anyone in here (the customer is already signed in and stays who they are).
"""

import requests
from authlib.common.security import generate_token
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from django.core.cache import cache
from django.http import HttpRequest
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from accounts import audit
from accounts.audit import AuditEvent
from linking import claims
from linking.models import LegacyAccount, LegacyService, Proof
from linking.proofs import ProofRefused

_SESSION_KEY = "linking_oidc_states"
_TIMEOUT = 10


def _discovery(service: LegacyService) -> dict:
    key = f"linking:oidc-discovery:{service.pk}:{service.oidc_server_url}"
    metadata = cache.get(key)
    if metadata is None:
        url = service.oidc_server_url.rstrip("/")
        if "/.well-known/" not in url:
            url += "/.well-known/openid-configuration"
        response = requests.get(url, timeout=_TIMEOUT)
        response.raise_for_status()
        metadata = response.json()
        cache.set(key, metadata, 300)
    return metadata


def _client(service: LegacyService, request: HttpRequest) -> OAuth2Session:
    return OAuth2Session(
        service.oidc_client_id,
        service.oidc_client_secret,
        scope="openid",
        redirect_uri=request.build_absolute_uri(reverse("linking:oidc_callback")),
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_post",  # noqa: S106 - a method name
    )


def start(*, service: LegacyService, request: HttpRequest) -> str:
    """The authorization URL to send the customer to; state, nonce and the PKCE
    verifier stay in this session."""
    if not service.accepts(Proof.OIDC) or not service.oidc_server_url:
        raise ProofRefused(_("This service does not offer sign-in for linking."))
    try:
        metadata = _discovery(service)
    except (requests.RequestException, ValueError) as exc:
        raise ProofRefused(
            _("The service's sign-in is not reachable right now. Please try later.")
        ) from exc
    state, nonce, verifier = generate_token(32), generate_token(32), generate_token(48)
    url, _state = _client(service, request).create_authorization_url(
        metadata["authorization_endpoint"], state=state, nonce=nonce, code_verifier=verifier
    )
    states = request.session.get(_SESSION_KEY, {})
    states[state] = {"service": service.pk, "nonce": nonce, "verifier": verifier}
    request.session[_SESSION_KEY] = dict(list(states.items())[-5:])
    return url


def finish(*, request: HttpRequest) -> LegacyAccount:
    """Handle the service's redirect back: check state, exchange the code, verify the
    ID token (signature, issuer, audience, expiry, nonce) and link the account."""
    states = request.session.get(_SESSION_KEY, {})
    stash = states.pop(request.GET.get("state", ""), None)
    request.session[_SESSION_KEY] = states
    if stash is None:
        raise ProofRefused(_("This sign-in has expired. Please start again."))
    service = LegacyService.objects.get(pk=stash["service"])
    customer = request.user
    if "error" in request.GET or "code" not in request.GET:
        _refuse(customer, None, request, f"service said {request.GET.get('error', 'no code')}")
        raise ProofRefused(_("The sign-in at the service was cancelled or failed."))
    try:
        metadata = _discovery(service)
        token = _client(service, request).fetch_token(
            metadata["token_endpoint"],
            code=request.GET["code"],
            code_verifier=stash["verifier"],
            timeout=_TIMEOUT,
        )
        claims_ = _verify_id_token(token.get("id_token"), service, metadata, stash["nonce"])
    except (OAuthError, requests.RequestException, JoseError, ValueError, KeyError) as exc:
        _refuse(customer, None, request, f"token exchange or ID token refused: {exc}"[:500])
        raise ProofRefused(_("The sign-in at the service could not be verified.")) from exc
    external_id = str(claims_.get(service.oidc_external_id_claim or "sub", "")).strip()
    account = LegacyAccount.objects.filter(service=service, external_id=external_id).first()
    if not external_id or account is None:
        _refuse(customer, None, request, f"no legacy account for {service.code}:{external_id[:64]}")
        raise ProofRefused(_("We have no record of this account yet. Please try again tomorrow."))
    audit.record(
        AuditEvent.Action.PROOF_SUCCEEDED,
        request=request,
        customer=customer,
        account=account,
        method=Proof.OIDC,
    )
    claims.link(account=account, customer=customer, proof=Proof.OIDC, request=request)
    return account


def _verify_id_token(
    id_token: str | None, service: LegacyService, metadata: dict, nonce: str
) -> dict:
    if not id_token:
        raise ValueError("no ID token")
    response = requests.get(metadata["jwks_uri"], timeout=_TIMEOUT)
    response.raise_for_status()
    keys = KeySet.import_key_set(response.json())
    token = jwt.decode(id_token, keys, algorithms=["RS256", "ES256"])
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": metadata["issuer"]},
        aud={"essential": True, "value": service.oidc_client_id},
        exp={"essential": True},
        nonce={"essential": True, "value": nonce},
    ).validate(token.claims)
    return dict(token.claims)


def _refuse(customer, account: LegacyAccount | None, request: HttpRequest, reason: str) -> None:
    audit.record(
        AuditEvent.Action.PROOF_FAILED,
        request=request,
        customer=customer,
        account=account,
        method=Proof.OIDC,
        reason=reason,
    )
