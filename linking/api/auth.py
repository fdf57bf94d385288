"""Who is calling: an OAuth 2 bearer token from the client-credentials grant at
the site's token endpoint (allauth.idp.oidc), resolved to the client's scopes and
visible services.

The resolution is cached for at most API_AUTH_CACHE_SECONDS from when it was read
from the database, and never past the token's expiry: in the site's cache (Redis in
production), shared by every web process, and in each process's memory until the
same moment, so most calls cost neither a query nor a cache read. The price: a
revoked token, or a change to the client's services, takes effect within that many
seconds.
"""

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from allauth.idp.oidc.adapter import get_adapter
from allauth.idp.oidc.models import Token
from django.conf import settings
from django.core.cache import cache
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest
from django.utils import timezone

from linking.api.models import API_SCOPES, ServiceClient


@dataclass(frozen=True)
class ApiClient:
    client_id: str
    scopes: frozenset[str]
    services: dict[str, int]  # visible legacy services: code -> id
    rate_limit_per_minute: int

    @property
    def service_ids(self) -> list[int]:
        return list(self.services.values())


REALM = "unified-id"


def bearer_sent(request: HttpRequest) -> bool:
    """Whether the call came with bearer credentials at all, good or not: one without
    is challenged without an error code (RFC 6750 section 3.1)."""
    return request.META.get("HTTP_AUTHORIZATION", "").partition(" ")[0].lower() == "bearer"


def bearer_token(request: HttpRequest) -> str | None:
    # From META: request.headers builds a dict of every header first.
    scheme, _, token = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 2048:
        return None
    return token


# token hash -> (expires at, the client or None); cleared when it grows past _LOCAL_MAX
_local: dict[str, tuple[float, ApiClient | None]] = {}
_LOCAL_MAX = 10_000


def authenticate(request: HttpRequest) -> ApiClient | None:
    token = bearer_token(request)
    if token is None:
        return None
    token_hash = _hash(token)
    now = time.time()
    known = _local.get(token_hash)
    if known is not None and known[0] > now:
        return known[1]
    key = f"api:auth:{token_hash}"
    cached = cache.get(key)
    if cached is None:
        found, lifetime = _load(token_hash)
        expires = now + max(1, min(settings.API_AUTH_CACHE_SECONDS, lifetime))
        cached = {"client": found, "expires": expires}
        cache.set(key, cached, timeout=math.ceil(expires - now))
    client = ApiClient(**cached["client"]) if cached["client"] else None
    if len(_local) >= _LOCAL_MAX:
        _local.clear()
    _local[token_hash] = (cached["expires"], client)
    return client


# allauth's OIDC adapter's hash_token; building the adapter for each call (an import
# by name, an instance) cost twice the hashing.
_hasher: Callable[[str], str] | None = None


def _hash(token: str) -> str:
    global _hasher
    if _hasher is None:
        _hasher = get_adapter().hash_token
    return _hasher(token)


@receiver(setting_changed)
def _forget_hasher(**kwargs) -> None:
    global _hasher
    _hasher = None


def forget() -> None:
    """Drop this process's remembered tokens (the shared cache is not touched)."""
    _local.clear()


def _load(token_hash: str) -> tuple[dict | None, int]:
    row = (
        Token.objects.valid()
        .filter(type=Token.Type.ACCESS_TOKEN, hash=token_hash)
        .values("client_id", "user_id", "scopes", "expires_at")
        .first()
    )
    # Tokens issued to a person (sign-in) are not for the API: it answers services.
    if row is None or row["user_id"] is not None or row["client_id"] is None:
        return None, settings.API_AUTH_CACHE_SECONDS
    lifetime = settings.API_AUTH_CACHE_SECONDS
    if row["expires_at"] is not None:
        lifetime = int((row["expires_at"] - timezone.now()).total_seconds())
    access = ServiceClient.objects.filter(pk=row["client_id"]).first()
    if access is None:
        return None, lifetime
    scopes = frozenset(row["scopes"].split()) & frozenset(API_SCOPES)
    services = dict(access.services.values_list("code", "id"))
    return (
        {
            "client_id": row["client_id"],
            "scopes": scopes,
            "services": services,
            "rate_limit_per_minute": access.rate_limit_per_minute,
        },
        lifetime,
    )
