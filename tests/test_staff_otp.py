"""The admin behind a second factor: password, then TOTP or a backup code; TOTP
enrollment at first sign-in; throttling per device and per staff member."""

import re

import pytest
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.audit import AuditEvent
from accounts.mfa.models import BackupCode
from tests.conftest import PASSWORD
from tests.fixtures.staff import verified_login

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)")
ADMIN_PAGES = [
    "/admin/",
    "/admin/linking/legacyaccount/",
    "/admin/accounts/auditevent/",
    "/admin/accounts/customer/",
    "/admin/campaigns/campaign/",
    "/admin/dashboard/",
    "/admin/dashboard.csv",
    "/admin/search/?q=x",
    "/admin/matching/",
    "/admin/backup-codes/",
]


def _code(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, step=device.step, digits=device.digits):06d}"


@pytest.mark.parametrize("url", ADMIN_PAGES)
def test_no_admin_page_answers_staff_without_second_factor(client, make_staff, url):
    staff = make_staff(superuser=True)
    client.force_login(staff)
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    # The sign-in page sends a staff member past the password on to the second factor.
    onward = client.get(response["Location"])
    assert onward.status_code == 302
    assert onward["Location"].startswith("/admin/verify/")


@pytest.mark.parametrize("url", ADMIN_PAGES)
def test_verified_superuser_reaches_every_admin_page(otp_admin_client, url):
    assert otp_admin_client.get(url).status_code == 200


def test_admin_pages_list_every_registered_model(otp_admin_client):
    page = otp_admin_client.get("/admin/").content.decode()
    assert reverse("admin:staff_dashboard") in page
    assert "/admin/accounts/auditevent/" in page


def test_it_signs_in_with_password_then_totp(client, make_staff):
    staff = make_staff(role="analyst")
    response = client.post(
        "/admin/login/?next=/admin/accounts/auditevent/",
        {"username": staff.email, "password": PASSWORD, "next": "/admin/accounts/auditevent/"},
    )
    assert response.status_code == 302
    assert response["Location"] == "/admin/verify/?next=%2Fadmin%2Faccounts%2Fauditevent%2F"
    assert client.get("/admin/").status_code == 302

    device = TOTPDevice.objects.get(user=staff)
    response = client.post(
        "/admin/verify/", {"token": _code(device), "next": "/admin/accounts/auditevent/"}
    )
    assert response.status_code == 302
    assert response["Location"] == "/admin/accounts/auditevent/"
    assert client.get("/admin/accounts/auditevent/").status_code == 200
    assert AuditEvent.objects.filter(action="staff_otp_verified", customer=staff).exists()


def test_it_refuses_a_wrong_code_and_throttles_the_device(client, make_staff):
    staff = make_staff()
    client.force_login(staff)
    device = TOTPDevice.objects.get(user=staff)
    wrong = f"{(int(_code(device)) + 1) % 1_000_000:06d}"
    response = client.post("/admin/verify/", {"token": wrong})
    assert response.status_code == 200
    assert "errornote" in response.content.decode()
    # django-otp makes the device wait after a failure: even the right code is refused now.
    client.post("/admin/verify/", {"token": _code(device)})
    assert client.get("/admin/").status_code == 302
    device.refresh_from_db()
    assert device.throttling_failure_count >= 1


def test_it_locks_a_staff_member_after_ten_failures(client, make_staff, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    staff = make_staff()
    client.force_login(staff)
    device = TOTPDevice.objects.get(user=staff)
    for _ in range(10):
        client.post("/admin/verify/", {"token": "not-a-backup-code"})
    response = client.post("/admin/verify/", {"token": _code(device)})
    assert "15" in response.content.decode()
    assert client.get("/admin/").status_code == 302
    assert AuditEvent.objects.filter(action="staff_otp_failed", customer=staff).count() == 11


def test_enrollment_at_first_sign_in(client, make_staff):
    staff = make_staff(device=False)
    response = client.post("/admin/login/", {"username": staff.email, "password": PASSWORD})
    assert response["Location"].startswith("/admin/enroll/")
    page = client.get("/admin/enroll/").content.decode()
    assert re.search(r'data-testid="totp-qr"><svg [^>]*viewBox=', page)
    assert "&lt;svg" not in page
    assert 'data-testid="totp-key"' in page
    assert not INLINE_SCRIPT.search(page) and 'style="' not in page
    device = TOTPDevice.objects.get(user=staff, confirmed=False)

    response = client.post("/admin/enroll/", {"token": _code(device)})
    assert response.status_code == 200
    codes = response.context["codes"]
    assert len(codes) == 10
    device.refresh_from_db()
    assert device.confirmed
    assert client.get("/admin/").status_code == 200
    # Stored as keyed hashes only.
    stored = list(BackupCode.objects.filter(user=staff).values_list("code_hash", flat=True))
    assert len(stored) == 10
    assert not any(code.replace("-", "") in row for code in codes for row in stored)


def test_enrollment_is_only_for_signed_in_staff_without_a_device(client, make_staff, customer):
    assert client.get("/admin/enroll/")["Location"].startswith("/admin/login/")
    client.force_login(customer)
    assert client.get("/admin/enroll/")["Location"].startswith("/admin/login/")
    staff = make_staff()
    client.force_login(staff)
    assert client.get("/admin/enroll/")["Location"].startswith("/admin/verify/")
    assert not TOTPDevice.objects.filter(user=staff, confirmed=False).exists()


def test_a_backup_code_works_once(client, make_staff):
    from linking.staff import otp

    staff = make_staff()
    codes = otp.new_backup_codes(staff)
    client.force_login(staff)
    assert client.post("/admin/verify/", {"token": codes[0]}).status_code == 302
    assert client.get("/admin/").status_code == 200

    other = client.__class__()
    other.force_login(staff)
    response = other.post("/admin/verify/", {"token": codes[0]})
    assert response.status_code == 200
    assert other.get("/admin/").status_code == 302
    assert otp.unused_backup_codes(staff) == 9


def test_staff_replace_their_backup_codes(otp_admin_client):
    response = otp_admin_client.post("/admin/backup-codes/")
    assert len(response.context["codes"]) == 10
    assert BackupCode.objects.count() == 10


def test_customers_are_not_let_in(client, customer):
    client.force_login(customer)
    response = client.get("/admin/")
    assert response["Location"].startswith("/admin/login/")
    assert client.get(response["Location"]).status_code == 200


def test_verification_does_not_redirect_elsewhere(client, make_staff):
    staff = make_staff()
    verified_login(client, staff)
    response = client.get("/admin/verify/?next=https://evil.example/")
    assert response["Location"] == "/admin/"


@pytest.mark.parametrize("device", [True, False], ids=["verify", "enroll"])
def test_the_second_factor_pages_show_no_admin_menu_and_a_sign_out(client, make_staff, device):
    staff = make_staff(superuser=True, device=device)
    client.force_login(staff)
    url = "/admin/verify/" if device else "/admin/enroll/"
    page = client.get(url).content.decode()
    assert 'id="nav-sidebar"' not in page
    assert "/admin/accounts/auditevent/" not in page
    assert 'action="/admin/sign-out/"' in page

    response = client.post("/admin/sign-out/")
    assert response["Location"] == "/admin/login/"
    assert client.get(url)["Location"].startswith("/admin/login/")
    assert client.get("/admin/login/").status_code == 200


def test_signing_out_takes_a_post(client, make_staff):
    client.force_login(make_staff())
    assert client.get("/admin/sign-out/").status_code == 405
    assert client.get("/admin/verify/").status_code == 200


def test_the_audit_trail_old_address_redirects_to_its_new_one(client):
    response = client.get("/admin/linking/auditevent/?q=123456789012")
    assert response.status_code == 301
    assert response["Location"] == "/admin/accounts/auditevent/?q=123456789012"
    response = client.get("/admin/linking/auditevent/7/change/")
    assert response["Location"] == "/admin/accounts/auditevent/7/change/"
