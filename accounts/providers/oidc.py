"""What every OpenID Connect IdP here shares: a nonce on every authorization request,
checked against the ID token, and re-authentication requests that ask for a new
sign-in (prompt, max_age=0) so that auth_time can prove one (accounts.reauth).
Both are checked in SocialAccountAdapter.pre_social_login, which has the state.
"""

import secrets
import time

from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.helpers import render_authentication_error
from allauth.socialaccount.models import SocialLogin
from allauth.socialaccount.providers.base import AuthAction, AuthProcess, ProviderException
from allauth.socialaccount.providers.openid_connect.provider import (
    OpenIDConnectProvider as BaseOpenIDConnectProvider,
)
from django.http import HttpRequest

# Set in the stashed state of a re-authentication: when its request was made.
REAUTHENTICATION_STARTED_AT = "reauthentication_started_at"


class OpenIDConnectMixin:
    """For OAuth2Provider subclasses whose IdP issues ID tokens."""

    # OpenID Connect's value; Google accepts only none, consent and select_account.
    reauthentication_prompt = "login"

    def id_token_claims(self, extra_data: dict) -> dict:
        """Where the provider keeps the ID token's claims in SocialAccount.extra_data."""
        return extra_data

    def get_redirect_from_request_kwargs(self, request: HttpRequest) -> dict:
        """A re-authentication (see accounts.reauth) signs nobody in: process
        "redirect" with action "reauthenticate" only proves a new sign-in."""
        kwargs = super().get_redirect_from_request_kwargs(request)
        if (
            kwargs.get("process") == AuthProcess.REDIRECT
            and request.GET.get("action") == AuthAction.REAUTHENTICATE
        ):
            kwargs[REAUTHENTICATION_STARTED_AT] = time.time()
        return kwargs

    def redirect(self, request: HttpRequest, process, next_url=None, data=None, **kwargs):
        nonce = secrets.token_urlsafe(32)
        auth_params = kwargs.pop("auth_params", None) or self.get_auth_params()
        auth_params["nonce"] = nonce
        if REAUTHENTICATION_STARTED_AT in kwargs:
            auth_params.update(prompt=self.reauthentication_prompt, max_age="0")
        return super().redirect(
            request, process, next_url, data, auth_params=auth_params, nonce=nonce, **kwargs
        )


class OpenIDConnectProvider(OpenIDConnectMixin, BaseOpenIDConnectProvider):
    """allauth's generic provider (its URLs and views), with the nonce and
    re-authentication above; SOCIALACCOUNT_PROVIDERS names it as provider_class."""

    package = "allauth.socialaccount.providers.openid_connect"

    def id_token_claims(self, extra_data: dict) -> dict:
        return extra_data.get("id_token") or {}


def id_token_claims(sociallogin: SocialLogin) -> dict | None:
    """The ID token's claims, or None for a provider that is not OpenID Connect."""
    provider = sociallogin.account.get_provider()
    if not isinstance(provider, OpenIDConnectMixin):
        return None
    return provider.id_token_claims(sociallogin.account.extra_data or {})


def check_nonce(request: HttpRequest, sociallogin: SocialLogin) -> None:
    """The ID token must carry the nonce this browser's request was sent with: a
    token from another sign-in (replayed or injected) is refused."""
    claims = id_token_claims(sociallogin)
    if claims is None:
        return
    expected, nonce = sociallogin.state.get("nonce"), claims.get("nonce")
    if (
        isinstance(expected, str)
        and isinstance(nonce, str)
        and secrets.compare_digest(expected.encode(), nonce.encode())
    ):
        return
    provider = sociallogin.account.get_provider()
    raise ImmediateHttpResponse(
        render_authentication_error(
            request, provider, exception=ProviderException("ID token nonce does not match")
        )
    )
