"""Every reliance of the site on how allauth 65.22 works inside, where it offers no
public hook: its OpenID provider (accounts.oidc_views) and its re-authentication
records and suspended requests (accounts.stepup, accounts.mfa). Nothing else imports
allauth's internals; tests/test_allauth_compat.py pins each one, so an allauth
upgrade that changes them fails there first.
"""

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable
from typing import NamedTuple
from urllib.parse import quote, unquote_plus

import jwt
from allauth.account.internal.flows import login, reauthentication
from allauth.idp.oidc.models import Token
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from django.contrib.auth.models import AnonymousUser
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect


def basic_credentials(header: str) -> tuple[str, str] | None:
    """The client id and secret of an HTTP Basic header, each form-urldecoded as RFC
    6749 §2.3.1 requires. allauth splits the base64-decoded pair as it is, without
    that decoding; None when the header holds no such pair."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        return None
    try:
        pair = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    client_id, colon, secret = pair.partition(":")
    if not colon:
        return None
    return unquote_plus(client_id), unquote_plus(secret)


def basic_header_for_allauth(client_id: str, secret: str) -> str:
    """The header allauth reads: the decoded pair, base64 only. allauth splits at the
    first colon, so a colon in the id is escaped (no such client exists: it fails)."""
    pair = f"{quote(client_id, safe='')}:{secret}" if ":" in client_id else f"{client_id}:{secret}"
    return "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")


def claims_with_session_sub(claims: dict, sub: str) -> str:
    """The `claims` request parameter as allauth can take it. allauth's
    validate_user_match compares a top-level "sub" of the claims request with the
    session's subject (and refuses when it is missing), where OpenID Connect puts
    "sub" under "id_token" or "userinfo"; those are checked by the caller."""
    return json.dumps({**claims, "sub": sub}, separators=(",", ":"))


class CodeGrant(NamedTuple):
    grant_id: str
    claims: dict
    client_id: str


def code_grant(code: str) -> CodeGrant | None:
    """The grant id, the `claims` request and the client of a live authorization
    code: allauth keeps the first two in the code's data ("grant_id", "claims")."""
    token = Token.objects.lookup(Token.Type.AUTHORIZATION_CODE, code)
    if token is None or not isinstance(token.data, dict):
        return None
    grant_id = token.get_grant_id()
    if grant_id is None:
        return None
    claims = token.data.get("claims")
    claims = dict(claims) if isinstance(claims, dict) else {}
    claims.pop("sub", None)  # ours, from claims_with_session_sub
    return CodeGrant(grant_id, claims, token.client_id)


def token_grant(token_type: str, value: str) -> str | None:
    """The grant id of a live access or refresh token (every token issued from one
    authorization code, and every refresh of it, carries its grant id)."""
    token = Token.objects.lookup(token_type, value)
    return token.get_grant_id() if token is not None else None


def revoke_grants(grants: Iterable[tuple[str, str]]) -> int:
    """Delete every access and refresh token of each (client id, grant id) (a
    refresh-token family), in one query. allauth finds a grant's tokens by
    data["grant_id"] too."""
    families = Q()
    for client_id, grant_id in grants:
        families |= Q(client_id=client_id, data__grant_id=grant_id)
    if not families:
        return 0
    deleted, _ = Token.objects.filter(
        families, type__in=[Token.Type.ACCESS_TOKEN, Token.Type.REFRESH_TOKEN]
    ).delete()
    return deleted


def answer_as_signed_out(request: HttpRequest) -> None:
    """Make allauth treat this authorization request as one without a signed-in
    customer: with prompt=none it then answers login_required (its silent-login check
    reads the request's user)."""
    request.user = AnonymousUser()


def key_id(pem: str) -> str:
    """The kid allauth gives a key in its JWKS and ID tokens: the RFC 7638 thumbprint
    of the public key. Logout tokens, signed here, carry the same."""
    public = load_pem_private_key(pem.encode(), password=None).public_key()
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(public))
    canonical = json.dumps({name: jwk[name] for name in ("e", "kty", "n")}, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def record_authentication(request: HttpRequest, user, *, method: str, **extra) -> None:
    """Add a record to the session's authentication log, the one allauth's
    re-authentication check and get_authentication_records read (a verified second
    factor counts there as method "mfa")."""
    login.record_authentication(request, user, method=method, **extra)


def is_reauthentication_required(request: HttpRequest) -> bool:
    """What allauth's reauthentication_required decorator asks, for views that answer
    JSON instead of redirecting."""
    return reauthentication.is_reauthentication_required(request, app="")


def suspend_request(request: HttpRequest, redirect_to: str) -> HttpResponseRedirect:
    """Redirect to redirect_to?next=<this path>, keeping a POST in the session for
    resume_request to replay, the way allauth's re-authentication does."""
    return reauthentication.suspend_request(request, redirect_to)


def resume_request(request: HttpRequest) -> HttpResponse | None:
    """The suspended POST replayed when ?next= names its path, else a redirect to
    ?next=; None without one."""
    return reauthentication.resume_request(request)
