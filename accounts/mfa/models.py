from allauth.usersessions.models import UserSession
from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_otp.plugins.otp_totp.models import TOTPDevice


class BackupCode(models.Model):
    """A single-use backup code, stored as a keyed hash ("<salt>$<hex digest>").

    Deliberately not a django-otp Device: it is no factor of its own (a customer with
    backup codes only is not enrolled); it stands in once for one of the person's
    devices. Customers and staff share it: it is one person's set of codes."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="backup_codes"
    )
    code_hash = models.CharField(max_length=100)
    created_at = models.DateTimeField(default=timezone.now)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("backup code")
        verbose_name_plural = _("backup codes")

    def __str__(self) -> str:
        return f"backup code of {self.user_id}"


class AuthenticatorApp(TOTPDevice):
    """django-otp's TOTP device as staff see it in the admin (a proxy: no table of
    its own), named in both languages; django-otp's own admin would show the keys."""

    class Meta:
        proxy = True
        verbose_name = _("authenticator app")
        verbose_name_plural = _("authenticator apps")


class SignedInSession(UserSession):
    """allauth's record of a signed-in browser as staff see it in the admin (a proxy),
    named in both languages."""

    class Meta:
        proxy = True
        verbose_name = _("signed-in session")
        verbose_name_plural = _("signed-in sessions")
