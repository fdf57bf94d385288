"""Step-up: before something sensitive (linking, unlinking, changes to addresses,
password, second factors or sign-in methods, export, deletion), prove again that it
is you: a recent re-authentication (accounts.reauth), then, for a customer with a
second factor, a fresh one (accounts.mfa.flows.is_fresh). For linking a recent
sign-in counts (sign_in_counts). The rules and their tests: docs/security.md."""

from functools import wraps

from allauth.account.decorators import reauthentication_required
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest
from django.shortcuts import redirect
from django.urls import reverse

from accounts.allauth_compat import is_reauthentication_required, suspend_request
from accounts.mfa import flows
from accounts.reauth import (
    authenticated_recently,
    mark,
    marked_recently,
    needs_idp_reauthentication,
    reauthentication_url,
)


def step_up_required(view=None, *, allow_get: bool = False, sign_in_counts: bool = False):
    """With allow_get, a GET shows the page as it is and only what changes something
    (POST) asks for step-up; the POST is replayed once it is done. With
    sign_in_counts, a recent password sign-in is re-authentication enough."""

    def decorator(view):
        @wraps(view)
        def second_factor(request: HttpRequest, *args, **kwargs):
            if not (allow_get and request.method == "GET"):
                if needs_idp_reauthentication(request, sign_in_counts=sign_in_counts):
                    return redirect(reauthentication_url(request.get_full_path()))
                if flows.is_enrolled(request.user) and not flows.is_fresh(request):
                    return suspend_request(request, reverse("mfa_verify"))
            return view(request, *args, **kwargs)

        def asks_for_password(request: HttpRequest) -> bool:
            return not (
                sign_in_counts
                and (
                    authenticated_recently(
                        request, lambda record: record.get("method") == "password"
                    )
                    or marked_recently(request, SIGNED_UP)
                )
            )

        return login_required(
            reauthentication_required(second_factor, allow_get=allow_get, enabled=asks_for_password)
        )

    return decorator(view) if view is not None else decorator


# An email sign-up signed in on confirming its address: {"user", "at"}.
SIGNED_UP = "accounts_signed_up"


def record_sign_up(request: HttpRequest) -> None:
    """The sign-in that ends an email sign-up (the password typed at sign-up, the
    address just confirmed in the same browser) leaves allauth no authentication
    record; for linking (sign_in_counts) it counts like a password sign-in."""
    mark(request, SIGNED_UP)


def is_stepped_up(request: HttpRequest) -> bool:
    """The same test, for views that answer JSON instead of redirecting."""
    return (
        request.user.is_authenticated
        and not is_reauthentication_required(request)
        and not needs_idp_reauthentication(request)
        and (not flows.is_enrolled(request.user) or flows.is_fresh(request))
    )
