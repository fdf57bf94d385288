"""Re-authentication for customers without a password: a new sign-in at one of
their own IdPs, asked for with max_age=0 and proved by the ID token's auth_time (a
sign-in alone does not count). An IdP that sends no auth_time cannot prove it: a
code mailed to a confirmed address then completes it (allauth's, gated here).
"""

import time
from collections.abc import Callable
from numbers import Real
from urllib.parse import urlencode

from allauth.account.authentication import get_authentication_records
from allauth.account.models import EmailAddress
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.models import SocialAccount, SocialLogin
from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext as _

from accounts.providers.oidc import REAUTHENTICATION_STARTED_AT, id_token_claims

# How far the IdP's clock may be behind ours when its auth_time is compared.
CLOCK_SKEW_SECONDS = 60
# A re-authentication at an IdP, proved by auth_time: {"user", "at", "provider", "uid"}.
IDP_REAUTHENTICATED = "accounts_idp_reauthenticated"
# The IdP could not prove a fresh sign-in, so a mailed code may finish: {"user", "at"}.
CODE_ALLOWED = "accounts_reauthentication_code_allowed"


def needs_idp_reauthentication(request: HttpRequest, *, sign_in_counts: bool = False) -> bool:
    """With sign_in_counts (linking), a sign-in at their own IdP within
    ACCOUNT_REAUTHENTICATION_TIMEOUT is enough; everything else needs a
    re-authentication within that time."""
    user = request.user
    if not user.is_authenticated or user.has_usable_password():
        return False  # anonymous: login_required handles it; password: allauth asks for it
    if marked_recently(request, IDP_REAUTHENTICATED) or authenticated_recently(
        request, lambda record: record.get("method") == "code" and record.get("reauthenticated")
    ):
        return False
    return not (sign_in_counts and _signed_in_at_own_idp_recently(request))


def code_allowed(request: HttpRequest) -> bool:
    """May this customer re-authenticate with a mailed code? Only without a password,
    and only right after their IdP could not prove a fresh sign-in."""
    user = request.user
    return (
        user.is_authenticated
        and not user.has_usable_password()
        and marked_recently(request, CODE_ALLOWED)
    )


def check_idp_reauthentication(request: HttpRequest, sociallogin: SocialLogin) -> None:
    """Called for every IdP callback; acts on re-authentications only. Records a proved
    one (allauth then redirects to its next URL); answers itself otherwise."""
    started_at = sociallogin.state.get(REAUTHENTICATION_STARTED_AT)
    if started_at is None:
        return
    user, account = request.user, sociallogin.account
    next_url = sociallogin.state.get("next") or reverse("me")
    name = account.get_provider().name
    if not (user.is_authenticated and sociallogin.is_existing and sociallogin.user.pk == user.pk):
        _refuse(request, next_url, _("Please sign in again with a sign-in method of this account."))
    auth_time = (id_token_claims(sociallogin) or {}).get("auth_time")
    if auth_time is None:
        if not EmailAddress.objects.filter(user=user, verified=True).exists():
            _refuse(
                request,
                next_url,
                _(
                    "%(name)s could not confirm that you signed in again just now, and "
                    "this account has no confirmed email address to send a code to. "
                    "Please sign in again with another of your sign-in methods."
                )
                % {"name": name},
            )
        mark(request, CODE_ALLOWED)
        messages.info(
            request,
            _(
                "%(name)s could not confirm that you signed in again just now. "
                "We will send a code to your email address instead."
            )
            % {"name": name},
        )
        code_url = reverse("account_request_reauthentication_code")
        raise ImmediateHttpResponse(
            HttpResponseRedirect(f"{code_url}?{urlencode({'next': next_url})}")
        )
    if not _is_fresh(auth_time, started_at):
        _refuse(
            request,
            next_url,
            _("%(name)s did not ask you to sign in again. Please try again.") % {"name": name},
        )
    mark(request, IDP_REAUTHENTICATED, provider=account.provider, uid=account.uid)


def _is_fresh(auth_time: object, started_at: float) -> bool:
    """Did the sign-in happen after the request was made (give or take the skew)?"""
    if not isinstance(auth_time, Real) or isinstance(auth_time, bool):
        return False
    return started_at - CLOCK_SKEW_SECONDS <= auth_time <= time.time() + CLOCK_SKEW_SECONDS


def _refuse(request: HttpRequest, next_url: str, message: str) -> None:
    messages.error(request, message)
    raise ImmediateHttpResponse(HttpResponseRedirect(reauthentication_url(next_url)))


def mark(request: HttpRequest, key: str, **details: str) -> None:
    """Note in the session that the signed-in customer just did `key`."""
    request.session[key] = {"user": str(request.user.pk), "at": time.time(), **details}


def marked_recently(request: HttpRequest, key: str) -> bool:
    """Did this customer do `key` within ACCOUNT_REAUTHENTICATION_TIMEOUT?"""
    noted = request.session.get(key)
    return (
        isinstance(noted, dict)
        and noted.get("user") == str(request.user.pk)
        and noted.get("at", 0) >= time.time() - settings.ACCOUNT_REAUTHENTICATION_TIMEOUT
    )


def authenticated_recently(request: HttpRequest, matches: Callable[[dict], bool]) -> bool:
    """Has this session an authentication record (allauth's: a sign-in, a
    re-authentication, a second factor) that matches, within
    ACCOUNT_REAUTHENTICATION_TIMEOUT?"""
    cutoff = time.time() - settings.ACCOUNT_REAUTHENTICATION_TIMEOUT
    return any(
        record.get("at", 0) >= cutoff and matches(record)
        for record in get_authentication_records(request, request.user)
    )


def _signed_in_at_own_idp_recently(request: HttpRequest) -> bool:
    own = set(SocialAccount.objects.filter(user=request.user).values_list("provider", "uid"))
    return authenticated_recently(
        request,
        lambda record: (
            record.get("method") == "socialaccount"
            and (record.get("provider"), record.get("uid")) in own
        ),
    )


def reauthentication_url(next_url: str) -> str:
    return f"{reverse('reauthenticate_idp')}?{urlencode({'next': next_url})}"
