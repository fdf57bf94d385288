"""The site as an OpenID Connect provider for group services (allauth.idp.oidc):
"sign in with the unified ID". The subject (sub) a service receives is the
customer's unified ID; the issuer is SITE_URL. Signing in goes through the site's
own sign-in pages (allauth's login_required), so whatever those demand (password,
IdP, second factor) applies here too. What allauth does not do is added in
accounts.oidc_views (the endpoints) and here (the adapter: claims, keys, discovery).
"""

import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

from allauth.account.authentication import get_authentication_records
from allauth.idp.oidc.adapter import DefaultOIDCAdapter
from allauth.idp.oidc.models import Token
from celery import shared_task
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_otp_webauthn.models import WebAuthnCredential

from accounts.models import Customer, ProviderGrant, SpentRefreshToken

# acr values (documented in docs/architecture.md): one factor, or a second factor passed
# in the session as well.
ACR_ONE_FACTOR = "1"
ACR_TWO_FACTORS = "2"
ACR_VALUES = (ACR_ONE_FACTOR, ACR_TWO_FACTORS)

# What a relying party may ask for and get, by scope; auth_time, acr and amr are in
# every ID token.
CLAIMS_SUPPORTED = [
    "sub",
    "iss",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "acr",
    "amr",
    "azp",
    "at_hash",
    "sid",
    "email",
    "email_verified",
    "name",
]

# Where the ID token's extras for this request were found (accounts.oidc_views sets
# it on the token request before allauth writes the ID token).
GRANT_ATTRIBUTE = "unified_id_provider_grant"


@dataclass(frozen=True)
class Authentication:
    """How the customer of a session authenticated, in ID token terms."""

    auth_time: int
    amr: list[str]
    acr: str


# allauth's authentication records (method, and for "mfa" the type) -> RFC 8176 amr.
_AMR = {"password": "pwd", "code": "otp"}
_SECOND_FACTOR_AMR = {"totp": "otp", "backup_code": "otp", "enroll": "otp"}


def authentication(request: HttpRequest) -> Authentication:
    """From the session's authentication records (allauth's: sign-ins and
    re-authentications, and the site's second factor) and django-otp's verified
    device."""
    user = request.user
    records = get_authentication_records(request, user)
    times = [record["at"] for record in records if isinstance(record.get("at"), int | float)]
    if not times and user.last_login is not None:
        times.append(user.last_login.timestamp())
    amr: list[str] = []
    for record in records:
        method = record.get("method")
        value = _AMR.get(method)
        if method == "mfa":
            value = _SECOND_FACTOR_AMR.get(record.get("type")) or _key_amr(user)
        if value and value not in amr:
            amr.append(value)
    verified = bool(getattr(user, "is_verified", lambda: False)())
    if verified and any(record.get("method") == "mfa" for record in records):
        amr.append("mfa")
    return Authentication(
        auth_time=int(max(times, default=time.time())),
        amr=amr,
        acr=ACR_TWO_FACTORS if verified else ACR_ONE_FACTOR,
    )


def _key_amr(user: Customer) -> str | None:
    """A passkey: hwk when bound to one device, swk when it may be synced (backup
    eligible), as the session's verified device (django-otp) says."""
    device = getattr(user, "otp_device", None)
    if isinstance(device, WebAuthnCredential):
        return "swk" if device.backup_eligible else "hwk"
    return None


class OIDCAdapter(DefaultOIDCAdapter):
    scope_display = {
        "openid": _("See your unified ID"),
        "email": _("See your email address"),
        "profile": _("See your name"),
    }

    def generate_client_secret(self) -> str:
        """URL-safe: the same with or without the form-urlencoding of RFC 6749
        §2.3.1, so every client library sends it right."""
        return secrets.token_urlsafe(48)

    def get_issuer(self) -> str:
        return settings.SITE_URL

    def get_user_sub(self, client, user) -> str:
        return user.unified_id

    def get_user_by_sub(self, client, sub: str) -> Customer | None:
        if not isinstance(sub, str):
            return None
        return Customer.objects.filter(unified_id=sub, is_active=True).first()

    def populate_id_token(self, id_token: dict, client, scopes, **kwargs) -> None:
        """auth_time, acr and amr as they were when the code was issued, also in the
        ID tokens of later refreshes."""
        grant = getattr(self.request, GRANT_ATTRIBUTE, None)
        if isinstance(grant, ProviderGrant):
            id_token["auth_time"] = int(grant.auth_time.timestamp())
            id_token["acr"] = grant.acr
            if grant.amr:
                id_token["amr"] = list(grant.amr)
            if grant.sid:
                id_token["sid"] = grant.sid
            return
        # A code issued before grants were recorded: the last sign-in is the best known.
        customer = self.get_user_by_sub(client, id_token.get("sub"))
        if customer is not None and customer.last_login is not None:
            id_token["auth_time"] = int(customer.last_login.timestamp())
            id_token["acr"] = ACR_ONE_FACTOR

    def populate_introspection_response(self, *, response: dict, token) -> None:
        grant_id = token.get_grant_id()
        grant = ProviderGrant.objects.filter(grant_id=grant_id).first() if grant_id else None
        if grant is not None:
            response["auth_time"] = int(grant.auth_time.timestamp())
            response["acr"] = grant.acr
            response["amr"] = list(grant.amr)

    def populate_server_metadata(self, data: dict) -> None:
        """Advertise only what works: the code flow (PKCE), refresh, client
        credentials; query response mode; no request objects; no device flow;
        back-channel logout (accounts.oidc_logout)."""
        data.pop("device_authorization_endpoint", None)
        data.update(
            {
                "grant_types_supported": [
                    "authorization_code",
                    "refresh_token",
                    "client_credentials",
                ],
                "response_types_supported": ["code"],
                "response_modes_supported": ["query"],
                "claims_supported": CLAIMS_SUPPORTED,
                "claims_parameter_supported": True,
                "claim_types_supported": ["normal"],
                "request_parameter_supported": False,
                "request_uri_parameter_supported": False,
                "acr_values_supported": list(ACR_VALUES),
                "backchannel_logout_supported": True,
                "backchannel_logout_session_supported": True,
            }
        )

    def get_signing_key(self):
        """The first configured key signs (OIDC_PRIVATE_KEY); the others
        (OIDC_PREVIOUS_PRIVATE_KEY) are published and trusted, never used to sign."""
        keys = self.list_private_keys(did_activate=True, is_active=True)
        if not keys:
            raise ImproperlyConfigured("No active OpenID Connect signing key.")
        return keys[0]


def prune_grants(batch: int = 1000) -> int:
    """Forget what no token can use any more: grants none of whose tokens is live,
    once older than the refresh-token lifetime, and refresh tokens spent that long
    ago (every token of their family has expired since)."""
    lifetime = settings.IDP_OIDC_REFRESH_TOKEN_EXPIRES_IN or 0
    cutoff = timezone.now() - timedelta(seconds=lifetime, days=1)
    deleted, _ = SpentRefreshToken.objects.filter(spent_at__lt=cutoff).delete()
    old = list(
        ProviderGrant.objects.filter(created_at__lt=cutoff)
        .order_by("created_at")
        .values_list("grant_id", flat=True)[:batch]
    )
    live = set(
        Token.objects.valid()
        .filter(data__grant_id__in=old)
        .values_list("data__grant_id", flat=True)
    )
    gone, _ = ProviderGrant.objects.filter(grant_id__in=set(old) - live).delete()
    return deleted + gone


@shared_task(name="accounts.prune_provider_grants")
def prune_provider_grants() -> int:
    """Beat, hourly: the grants and spent refresh tokens that no token can use any
    more go."""
    return prune_grants()
