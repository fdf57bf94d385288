"""Verifying the second factor, for customers and staff.

A person has the "mfa.user" rule's failed attempts per window, whichever code they
try (TOTP or backup code, on any device), counted before the code is checked,
then every code is refused until the window passes. django-otp's own per-device
wait is kept, its row locked while a code is checked so parallel guesses cannot
lose its count. Passkeys cannot be guessed and stay usable. Every outcome is audited.
"""

from dataclasses import dataclass

from allauth.account.adapter import get_adapter
from allauth.usersessions.models import UserSession
from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest
from django_otp import devices_for_user
from django_otp import login as otp_login
from django_otp.models import Device
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import audit, limits
from accounts.allauth_compat import record_authentication
from accounts.audit import ActorKind
from accounts.mfa import backup_codes, totp
from accounts.reauth import authenticated_recently


@dataclass(frozen=True)
class Audience:
    """Who is verifying, for the audit trail: its action names and actor kind."""

    prefix: str
    actor_kind: str


CUSTOMER = Audience("mfa", ActorKind.CUSTOMER)
STAFF = Audience("staff_otp", ActorKind.STAFF)

PER_USER = "mfa.user"  # settings.RATE_LIMITS


def confirmed_devices(user) -> list[Device]:
    return list(devices_for_user(user, confirmed=True))


def is_enrolled(user) -> bool:
    return user.is_authenticated and any(devices_for_user(user, confirmed=True))


def second_factor_pending(request: HttpRequest) -> bool:
    """Signed in, but the second factor of this sign-in is still to come. (Right
    after login() the user object has no is_verified yet: not verified.)"""
    user = request.user
    verified = getattr(user, "is_verified", None)
    return is_enrolled(user) and not (verified is not None and verified())


def _keys(user) -> dict:
    return {PER_USER: user.pk}


def is_locked(user) -> bool:
    return limits.is_blocked(_keys(user))


def lock_minutes() -> int:
    return limits.rule(PER_USER).get_expiry() // 60


def verify(*, request: HttpRequest, token: str, audience: Audience = CUSTOMER) -> bool:
    """Check a TOTP code from any of the person's authenticator apps, or a backup
    code. On success the session is OTP-verified (and freshly so, see is_fresh)."""
    user = request.user
    devices = confirmed_devices(user)
    if not devices or not limits.attempt(_keys(user)):
        failed(request, "locked" if devices else "no_device", audience)
        return False
    token = "".join((token or "").split())[:32]
    if backup_codes.looks_like_one(token):
        if backup_codes.use(user, token):
            limits.succeeded(_keys(user))
            verified(request, devices[0], "backup_code", audience)
            return True
        failed(request, "backup_code", audience)
        return False
    for device in devices:
        if isinstance(device, TOTPDevice) and _verify_totp(device, token):
            limits.succeeded(_keys(user))
            verified(request, device, "totp", audience)
            return True
    failed(request, "totp", audience)
    return False


def _verify_totp(device: TOTPDevice, token: str) -> bool:
    """verify_token throttles the device and refuses a time step already used; both
    are read-modify-write on the row, so the row is locked while it runs."""
    with transaction.atomic():
        locked = TOTPDevice.objects.select_for_update().get(pk=device.pk)
        return locked.verify_token(token)


def confirm_totp(
    *, request: HttpRequest, device: TOTPDevice, token: str, audience: Audience = CUSTOMER
) -> list[str] | None:
    """Confirm an authenticator app being enrolled with its first code. Returns the
    new backup codes when the person had none left (else an empty list), or None
    when the code is wrong."""
    user = request.user
    token = "".join((token or "").split())[:32]
    if not limits.attempt(_keys(user)) or not totp.confirm(device, token):
        failed(request, "enroll", audience)
        return None
    limits.succeeded(_keys(user))
    codes = backup_codes.replace(user) if not backup_codes.unused(user) else []
    verified(request, device, "enroll", audience)
    return codes


def verified(request: HttpRequest, device: Device, method: str, audience: Audience) -> None:
    # A new session key once the second factor is in: a planted session id is useless.
    # The session list (allauth's usersessions) follows the key, so "sign out other
    # sessions" and account deletion still find this one.
    signing_in = second_factor_pending(request)
    old_key = request.session.session_key
    request.session.cycle_key()
    if old_key:
        UserSession.objects.filter(session_key=old_key).update(
            session_key=request.session.session_key
        )
    otp_login(request, device)
    record_authentication(request, request.user, method="mfa", type=method)
    if signing_in and audience is CUSTOMER:  # held back until now by AccountAdapter
        get_adapter(request).add_message(
            request, messages.SUCCESS, "account/messages/logged_in.txt", {"user": request.user}
        )
    audit.record(
        f"{audience.prefix}_verified",
        request=request,
        customer=request.user,
        method=method,
        actor_kind=audience.actor_kind,
    )


def failed(request: HttpRequest, method: str, audience: Audience) -> None:
    audit.record(
        f"{audience.prefix}_failed",
        request=request,
        customer=request.user,
        method=method,
        actor_kind=audience.actor_kind,
    )


def is_fresh(request: HttpRequest) -> bool:
    """Was the second factor passed in this session within the re-authentication
    timeout? Step-up (accounts.stepup) asks again when not."""
    if not request.user.is_verified():
        return False
    return authenticated_recently(request, lambda record: record.get("method") == "mfa")
