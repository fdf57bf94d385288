"""Passkeys (django-otp-webauthn) as a second factor.

The package's views run the WebAuthn ceremonies; these subclasses add this site's
rules: registering is changing MFA, so it needs step-up; a passkey only verifies a
signed-in person (no passwordless sign-in, OTP_WEBAUTHN_ALLOW_PASSWORDLESS_LOGIN is
off); every outcome goes through accounts.mfa.flows (session key cycled, session
marked fresh, audit). Only these views are routed: the package's own urls are not
included.

The package's script reads its configuration as the text of the element with id
otp_webauthn_config. Its own template puts that in an inline JSON <script>; ours
(templates/mfa/_passkey_config.html) puts it in a hidden element instead, so the
pages carry no inline script at all under the CSP.
"""

import json
from urllib.parse import urlencode

from django.conf import settings
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _
from django.views.i18n import JavaScriptCatalog
from django_otp_webauthn import exceptions
from django_otp_webauthn import views as webauthn
from django_otp_webauthn.templatetags.otp_webauthn import get_configuration

from accounts import audit, notifications
from accounts.mfa import flows


class StepUpRequired(exceptions.OTPWebAuthnApiError):
    status_code = 403
    default_detail = _("Please confirm it is you again, then add the passkey.")
    default_code = "step_up_required"


class PasskeysOff(exceptions.OTPWebAuthnApiError):
    status_code = 403
    default_detail = _("Passkeys cannot be used at this site's address.")
    default_code = "passkeys_off"


class _StepUpFirst:
    """Registering a passkey changes the second factor: step-up first."""

    def check_can_register(self) -> None:
        from accounts.stepup import is_stepped_up

        if not settings.PASSKEYS_ENABLED:
            raise PasskeysOff()
        if not is_stepped_up(self.request):
            raise StepUpRequired()


class _SignedInOnly:
    """A passkey confirms a signed-in person; it never signs anyone in."""

    def check_can_authenticate(self) -> None:
        if not settings.PASSKEYS_ENABLED:
            raise PasskeysOff()
        user = self.request.user
        if not (user.is_authenticated and user.is_active):
            raise exceptions.PasswordlessLoginDisabled()


class RegistrationBegin(_StepUpFirst, webauthn.BeginCredentialRegistrationView):
    pass


class RegistrationComplete(_StepUpFirst, webauthn.CompleteCredentialRegistrationView):
    def post(self, *args, **kwargs):
        response = super().post(*args, **kwargs)
        request = self.request
        audit.record("mfa_device_added", request=request, customer=request.user, method="passkey")
        notifications.notify_mfa_changed(request.user, change="passkey_added", request=request)
        return response


class AuthenticationBegin(_SignedInOnly, webauthn.BeginCredentialAuthenticationView):
    pass


class AuthenticationComplete(_SignedInOnly, webauthn.CompleteCredentialAuthenticationView):
    def complete_auth(self, device) -> None:
        flows.verified(self.request, device, "passkey", flows.CUSTOMER)

    def get_success_url(self) -> str:
        # Back to the verification page, which continues where the person was going
        # (also a request that step-up suspended).
        url = reverse("mfa_verify")
        target = self.get_redirect_url()
        return f"{url}?{urlencode({'next': target})}" if target else url

    def handle_exception(self, exc):
        if isinstance(exc, exceptions.OTPWebAuthnApiError) and self.request.user.is_authenticated:
            audit.record(
                "mfa_failed",
                request=self.request,
                customer=self.request.user,
                method="passkey",
                reason=getattr(exc, "code", ""),
            )
        return super().handle_exception(exc)


def configuration_json(request) -> str:
    """The script's configuration (URLs, CSRF token), for the hidden element."""
    return json.dumps(get_configuration(request))


app_name = "otp_webauthn"
urlpatterns = [
    path("registration/begin/", RegistrationBegin.as_view(), name="credential-registration-begin"),
    path(
        "registration/complete/",
        RegistrationComplete.as_view(),
        name="credential-registration-complete",
    ),
    path(
        "authentication/begin/",
        AuthenticationBegin.as_view(),
        name="credential-authentication-begin",
    ),
    path(
        "authentication/complete/",
        AuthenticationComplete.as_view(),
        name="credential-authentication-complete",
    ),
    path(
        "jsi18n/",
        JavaScriptCatalog.as_view(packages=["django_otp_webauthn"]),
        name="js-i18n-catalog",
    ),
]
