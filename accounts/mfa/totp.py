"""Authenticator apps (django-otp's TOTPDevice): enrollment shows the otpauth:// URL
as an inline SVG QR code (segno: no script, no style attribute) and as a manual key;
the device is confirmed by a first code. django-otp rejects a code whose time step
is not newer than the last accepted one (TOTPDevice.last_t), so a code seen over
someone's shoulder cannot be replayed."""

from base64 import b32encode
from urllib.parse import quote, urlsplit, urlunsplit

import segno
from django.conf import settings
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice


def pending_device(user, *, name: str) -> TOTPDevice:
    """The unconfirmed device the person is enrolling (created on first visit)."""
    device = TOTPDevice.objects.devices_for_user(user, confirmed=False).order_by("pk").first()
    return device or TOTPDevice.objects.create(user=user, name=name, confirmed=False)


def config_url(device: TOTPDevice) -> str:
    """django-otp's otpauth:// URL, labelled with the email address or, for a customer
    who has none, the unified ID (django-otp would write "None")."""
    user = device.user
    account = user.email or getattr(user, "unified_id_display", "") or str(user.pk)
    issuer = str(settings.OTP_TOTP_ISSUER).replace(":", "")
    parts = urlsplit(device.config_url)
    return urlunsplit(parts._replace(path="/" + quote(f"{issuer}:{account}")))


def qr_svg(device: TOTPDevice) -> str:
    return segno.make(config_url(device), error="m").svg_inline(
        scale=4, border=4, light="#fff", omitsize=True
    )


def manual_key(device: TOTPDevice) -> str:
    key = b32encode(device.bin_key).decode()
    return " ".join(key[i : i + 4] for i in range(0, len(key), 4))


def confirm(device: TOTPDevice, token: str) -> bool:
    """Confirm a pending device with a first code (locked row: confirmed once)."""
    with transaction.atomic():
        locked = TOTPDevice.objects.select_for_update().get(pk=device.pk)
        if locked.confirmed or not token.isdigit() or not locked.verify_token(token):
            return False
        TOTPDevice.objects.filter(pk=device.pk).update(confirmed=True)
    device.refresh_from_db()
    return True
