"""Re-authentication for customers who sign in only through IdPs.

allauth re-authenticates with a password (or an MFA factor); a customer with
neither passes its check unasked. Here such a customer must have signed in at one
of their own IdPs within ACCOUNT_REAUTHENTICATION_TIMEOUT before connecting or
disconnecting a sign-in method.
"""

import time
from collections.abc import Callable
from urllib.parse import urlencode

from allauth.account.internal.flows.login import get_authentication_records
from allauth.socialaccount.models import SocialAccount
from django.conf import settings
from django.http import HttpRequest
from django.urls import reverse


def needs_idp_reauthentication(request: HttpRequest) -> bool:
    user = request.user
    if not user.is_authenticated or user.has_usable_password():
        return False  # anonymous: login_required handles it; password: allauth asks for it
    return not _signed_in_at_own_idp_recently(request)


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
