"""Guessing codes does not work: django-otp makes a device wait after each failure,
ten failures lock the account for codes for 15 minutes (from any session, with any
kind of code), a TOTP code is never accepted twice, and every failure is audited."""

from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.audit import AuditEvent
from accounts.mfa import backup_codes
from tests.fixtures.mfa import code, sign_in_with_password

VERIFY = "/accounts/2fa/verify/"


def _wrong(device: TOTPDevice) -> str:
    return f"{(int(code(device)) + 500_000) % 1_000_000:06d}"


def test_after_a_wrong_code_the_device_makes_you_wait(client, mfa_customer):
    device = TOTPDevice.objects.get(user=mfa_customer)
    sign_in_with_password(client, mfa_customer)
    response = client.post(VERIFY, {"token": _wrong(device)})
    assert response.status_code == 200
    # Even the right code is refused while the device waits (OTP_TOTP_THROTTLE_FACTOR).
    assert client.post(VERIFY, {"token": code(device)}).status_code == 200
    assert client.get("/me/").status_code == 302
    device.refresh_from_db()
    assert device.throttling_failure_count >= 1
    assert (
        AuditEvent.objects.filter(action="mfa_failed", customer=mfa_customer, method="totp").count()
        == 2
    )


def test_ten_failures_lock_the_account_for_every_code(client, mfa_customer, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0  # only the per-account limit is at work
    device = TOTPDevice.objects.get(user=mfa_customer)
    codes = backup_codes.replace(mfa_customer)
    sign_in_with_password(client, mfa_customer)
    other = Client()
    sign_in_with_password(other, mfa_customer)
    for attempt in range(10):
        # Failures from two sessions, TOTP and backup codes alike, add up.
        session = client if attempt % 2 else other
        guess = _wrong(device) if attempt % 3 else "abcde-fghjk"
        assert session.post(VERIFY, {"token": guess}).status_code == 200

    for token in (code(device), codes[0]):
        response = client.post(VERIFY, {"token": token})
        assert response.status_code == 200
        assert "15" in response.content.decode()
    assert client.get("/me/").status_code == 302
    assert backup_codes.unused(mfa_customer) == 10  # nothing spent while locked
    assert (
        AuditEvent.objects.filter(
            action="mfa_failed", customer=mfa_customer, method="locked"
        ).count()
        == 2
    )
    assert AuditEvent.objects.filter(action="mfa_failed", customer=mfa_customer).count() == 12


def test_the_lock_is_per_account(client, mfa_customer, make_customer, enroll_totp, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    device = TOTPDevice.objects.get(user=mfa_customer)
    sign_in_with_password(client, mfa_customer)
    for _ in range(10):
        client.post(VERIFY, {"token": _wrong(device)})

    taro = make_customer("taro@example.jp")
    taro_device = enroll_totp(taro)
    other = Client()
    sign_in_with_password(other, taro)
    assert other.post(VERIFY, {"token": code(taro_device)}).status_code == 302


def test_a_totp_code_is_accepted_once(mfa_customer, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0  # no wait after the refused replay
    device = TOTPDevice.objects.get(user=mfa_customer)
    first, second = Client(), Client()
    sign_in_with_password(first, mfa_customer)
    sign_in_with_password(second, mfa_customer)
    token = code(device)
    assert first.post(VERIFY, {"token": token}).status_code == 302
    # The same code, seen over a shoulder and typed in elsewhere: refused.
    response = second.post(VERIFY, {"token": token})
    assert response.status_code == 200
    assert second.get("/me/").status_code == 302
    assert AuditEvent.objects.filter(
        action="mfa_failed", customer=mfa_customer, method="totp"
    ).exists()
    # The app's next code works (a later time step).
    assert second.post(VERIFY, {"token": code(device, drift=1)}).status_code == 302
