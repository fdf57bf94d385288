"""Session lifetime: an idle timeout and an absolute timeout for every sign-in.

The session list and "sign out other sessions" are allauth's usersessions app
(/accounts/sessions/). allauth's own activity tracking (USERSESSIONS_TRACK_ACTIVITY)
writes a row on every request and never ends an idle session, so this middleware
does both jobs instead: it ends a sign-in that was idle longer than
SESSION_IDLE_TIMEOUT or is older than SESSION_COOKIE_AGE, and refreshes the
session's "last seen" (time and IP) at most once a minute.
"""

import time

from allauth.usersessions.models import UserSession
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import audit

SIGNED_IN_AT = "session_signed_in_at"
LAST_SEEN_AT = "session_last_seen_at"
REFRESH_SECONDS = 60


@receiver(user_logged_in)
def _start_clock(sender, request: HttpRequest | None, **kwargs) -> None:
    if request is not None and hasattr(request, "session"):
        now = int(time.time())
        request.session[SIGNED_IN_AT] = now
        request.session[LAST_SEEN_AT] = now


def expired(session, now: float) -> bool:
    """Has this sign-in outlived the idle or the absolute timeout?"""
    signed_in_at = session.get(SIGNED_IN_AT)
    last_seen_at = session.get(LAST_SEEN_AT)
    if not isinstance(signed_in_at, int) or not isinstance(last_seen_at, int):
        return False  # not started by a sign-in here yet: the clock starts now
    return (
        now - signed_in_at > settings.SESSION_COOKIE_AGE
        or now - last_seen_at > settings.SESSION_IDLE_TIMEOUT
    )


class SessionTimeoutMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            self._check(request)
        return self.get_response(request)

    def _check(self, request: HttpRequest) -> None:
        now = int(time.time())
        session = request.session
        if expired(session, now):
            logout(request)
            messages.info(request, _("Your session has ended. Please sign in again."))
            return
        session.setdefault(SIGNED_IN_AT, now)
        last_seen_at = session.get(LAST_SEEN_AT)
        if isinstance(last_seen_at, int) and now - last_seen_at < REFRESH_SECONDS:
            return
        session[LAST_SEEN_AT] = now
        if session.session_key:
            seen = {"last_seen_at": timezone.now()}
            ip = audit.client_ip(request)
            if ip:
                seen["ip"] = ip
            UserSession.objects.filter(
                session_key=session.session_key, user_id=request.user.pk
            ).update(**seen)
