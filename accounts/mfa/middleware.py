"""No page before the second factor.

Every way of signing in (password, LINE, Google, any OIDC IdP, the sign-in that
follows an email confirmation) ends with allauth logging the customer in; the
second factor is not part of those flows. So instead of hooking each flow, this
middleware stands after them all: a signed-in person who has a confirmed device
but whose session has not passed it is sent to the verification page, whatever
they ask for. Only what the second step itself needs stays reachable.
"""

from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.urls import reverse
from django.utils.translation import gettext as _

from accounts.mfa import flows


class SecondFactorMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if (
            user is not None
            and user.is_authenticated
            and not user.is_verified()
            and not _allowed(request.path)
            and flows.is_enrolled(user)
        ):
            if "application/json" in request.headers.get("Accept", ""):
                return JsonResponse({"detail": _("Second factor required.")}, status=403)
            target = request.get_full_path() if request.method == "GET" else ""
            url = reverse("mfa_verify")
            if target:
                url += "?" + urlencode({"next": target})
            return HttpResponseRedirect(url)
        return self.get_response(request)


def _allowed(path: str) -> bool:
    return path.startswith(_allowed_prefixes()) or path in _allowed_paths()


def _allowed_prefixes() -> tuple[str, ...]:
    return (
        "/" + settings.STATIC_URL.lstrip("/"),
        # The admin site asks for the second factor itself (linking.staff.site).
        reverse("admin:index"),
    )


def _allowed_paths() -> set[str]:
    return {
        reverse("mfa_verify"),
        reverse("account_logout"),
        reverse("set_language"),
        reverse("healthz"),
        reverse("otp_webauthn:credential-authentication-begin"),
        reverse("otp_webauthn:credential-authentication-complete"),
        reverse("otp_webauthn:js-i18n-catalog"),
    }
