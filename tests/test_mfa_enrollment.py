"""Turning on a second factor: an authenticator app by QR code or key, backup codes
shown once and stored hashed, each working once; removing a factor. Every change
is audited and mailed."""

import re

import pytest
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.audit import AuditEvent
from accounts.mfa import backup_codes
from accounts.mfa.models import BackupCode
from tests.fixtures.mfa import code, pass_second_factor, sign_in_with_password, stepped_up

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)")


@pytest.fixture
def stepped_up_client(customer) -> Client:
    client = Client()
    sign_in_with_password(client, customer)
    return stepped_up(client)


def test_my_page_leads_to_the_overview(customer_client):
    assert 'href="/accounts/2fa/"' in customer_client.get("/me/").content.decode()


def test_the_overview_says_off_and_offers_both_factors(customer_client):
    page = customer_client.get("/accounts/2fa/").content.decode()
    assert 'data-testid="mfa-status"' in page
    assert "/accounts/2fa/totp/add/" in page and "/accounts/2fa/passkeys/add/" in page


def test_a_customer_turns_on_an_authenticator_app(
    stepped_up_client, customer, mailoutbox, django_capture_on_commit_callbacks
):
    page = stepped_up_client.get("/accounts/2fa/totp/add/").content.decode()
    assert "<svg" in page
    assert 'data-testid="totp-key"' in page
    assert not INLINE_SCRIPT.search(page) and 'style="' not in page
    device = TOTPDevice.objects.get(user=customer, confirmed=False)
    assert TOTPDevice.objects.get(pk=device.pk).config_url  # the QR encodes it

    with django_capture_on_commit_callbacks(execute=True):
        response = stepped_up_client.post("/accounts/2fa/totp/add/", {"token": code(device)})
    assert response.status_code == 200
    codes = response.context["codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    device.refresh_from_db()
    assert device.confirmed
    assert AuditEvent.objects.filter(
        action="mfa_device_added", customer=customer, method="totp"
    ).exists()
    assert [m.to for m in mailoutbox] == [[customer.email]] * 2  # app added, codes made
    assert "/accounts/2fa/" in stepped_up_client.get("/accounts/2fa/").content.decode()


def test_a_wrong_first_code_turns_nothing_on(stepped_up_client, customer):
    stepped_up_client.get("/accounts/2fa/totp/add/")
    device = TOTPDevice.objects.get(user=customer)
    wrong = f"{(int(code(device)) + 1) % 1_000_000:06d}"
    response = stepped_up_client.post("/accounts/2fa/totp/add/", {"token": wrong})
    assert response.status_code == 200
    assert response.context["form"].errors
    device.refresh_from_db()
    assert not device.confirmed
    assert not BackupCode.objects.filter(user=customer).exists()
    assert AuditEvent.objects.filter(action="mfa_failed", method="enroll").exists()


def test_an_idp_customer_without_email_is_labelled_by_unified_id(db, make_customer):
    from accounts.mfa import totp

    customer = make_customer("x@example.jp")
    customer.email = None
    customer.save()
    device = TOTPDevice.objects.create(user=customer, confirmed=False)
    url = totp.config_url(device)
    assert "None" not in url
    assert customer.unified_id_display.replace(" ", "%20") in url


def test_backup_codes_are_stored_as_salted_keyed_hashes(customer):
    codes = backup_codes.replace(customer)
    stored = list(BackupCode.objects.filter(user=customer).values_list("code_hash", flat=True))
    assert len(stored) == 10
    assert not any(c.replace("-", "") in row or c in row for c in codes for row in stored)
    # Salted: the same code would not give the same row twice.
    assert len({row.partition("$")[0] for row in stored}) == 10


def test_a_backup_code_signs_in_once(client, mfa_customer):
    codes = backup_codes.replace(mfa_customer)
    sign_in_with_password(client, mfa_customer)
    response = client.post("/accounts/2fa/verify/", {"token": codes[0].upper()})
    assert response["Location"] == "/me/"
    assert client.get("/me/").status_code == 200
    assert AuditEvent.objects.filter(action="mfa_verified", method="backup_code").exists()

    other = Client()
    sign_in_with_password(other, mfa_customer)
    response = other.post("/accounts/2fa/verify/", {"token": codes[0]})
    assert response.status_code == 200
    assert other.get("/me/").status_code == 302
    assert backup_codes.unused(mfa_customer) == 9


def test_new_backup_codes_replace_the_old_ones(verified_client, mfa_customer):
    old = backup_codes.replace(mfa_customer)
    response = verified_client.post("/accounts/2fa/backup-codes/")
    new = response.context["codes"]
    assert len(new) == 10
    assert backup_codes.unused(mfa_customer) == 10
    assert not backup_codes.use(mfa_customer, old[0])
    assert AuditEvent.objects.filter(action="mfa_backup_codes_replaced").exists()


def test_removing_the_last_factor_turns_mfa_off_and_drops_the_codes(verified_client, mfa_customer):
    backup_codes.replace(mfa_customer)
    device = TOTPDevice.objects.get(user=mfa_customer)
    response = verified_client.post(f"/accounts/2fa/devices/totp/{device.pk}/remove/")
    assert response["Location"] == "/accounts/2fa/"
    assert not TOTPDevice.objects.filter(user=mfa_customer).exists()
    assert not BackupCode.objects.filter(user=mfa_customer).exists()
    assert AuditEvent.objects.filter(action="mfa_device_removed", method="totp").exists()


def test_a_device_of_someone_else_cannot_be_removed(verified_client, make_customer, enroll_totp):
    other = enroll_totp(make_customer("taro@example.jp"))
    response = verified_client.post(f"/accounts/2fa/devices/totp/{other.pk}/remove/")
    assert response.status_code == 404
    assert TOTPDevice.objects.filter(pk=other.pk).exists()


def test_a_second_app_keeps_the_existing_backup_codes(verified_client, mfa_customer):
    codes = backup_codes.replace(mfa_customer)
    verified_client.get("/accounts/2fa/totp/add/")
    pending = TOTPDevice.objects.get(user=mfa_customer, confirmed=False)
    response = verified_client.post("/accounts/2fa/totp/add/", {"token": code(pending)})
    assert response["Location"] == "/accounts/2fa/"
    assert backup_codes.use(mfa_customer, codes[1])


def test_signing_in_with_the_new_app(client, mfa_customer):
    sign_in_with_password(client, mfa_customer)
    response = pass_second_factor(client, TOTPDevice.objects.get(user=mfa_customer))
    assert response["Location"] == "/me/"
