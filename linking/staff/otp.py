"""Staff second factor: TOTP enrollment at first sign-in, verification, backup codes.

The flows are the customers' (accounts.mfa): django-otp throttles each device, a
person has a limit of failed attempts per window whichever code they try, backup
codes are stored hashed. Staff outcomes are audited as staff_otp_* by staff actors.
"""

from django.http import HttpRequest
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import SafeString, mark_safe
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.mfa import backup_codes, flows, totp

DEVICE_NAME = "staff admin"
BACKUP_CODES = backup_codes.COUNT

manual_key = totp.manual_key
is_locked = flows.is_locked
new_backup_codes = backup_codes.replace
unused_backup_codes = backup_codes.unused


def qr_svg(device: TOTPDevice) -> SafeString:
    """The QR code as inline SVG markup, safe to insert as is: segno writes only
    paths of modules (the otpauth:// URL is encoded, never written as text), no
    script and no style attribute."""
    return mark_safe(totp.qr_svg(device))  # noqa: S308


def confirmed_device(user) -> TOTPDevice | None:
    return TOTPDevice.objects.devices_for_user(user, confirmed=True).order_by("pk").first()


def pending_device(user) -> TOTPDevice:
    return totp.pending_device(user, name=DEVICE_NAME)


def confirm_enrollment(*, request: HttpRequest, device: TOTPDevice, token: str) -> list[str] | None:
    """Confirm the device with a first code; returns backup codes, or None."""
    codes = flows.confirm_totp(request=request, device=device, token=token, audience=flows.STAFF)
    if codes == []:  # codes left from before (a customer passkey, say): start afresh
        codes = backup_codes.replace(request.user)
    return codes


def verify(*, request: HttpRequest, token: str) -> bool:
    """Check a TOTP code or a backup code; on success the session is OTP-verified."""
    return flows.verify(request=request, token=token, audience=flows.STAFF)


def safe_next(request: HttpRequest) -> str:
    """The "next" address of a sign-in step, if it is on this site."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return ""
