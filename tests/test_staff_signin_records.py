"""How people sign in, as staff see it in the admin: authenticator apps without
their keys, sessions that end when removed, IdP identities that cannot be added by
hand, and no sign-in provider pages that would clash with the settings."""

from allauth.socialaccount.models import SocialAccount
from allauth.usersessions.models import UserSession
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.conftest import PASSWORD


def test_an_authenticator_app_is_shown_without_its_key(otp_admin_client, make_staff):
    staff = make_staff("support@example.jp")
    device = TOTPDevice.objects.get(user=staff)
    page = otp_admin_client.get(f"/admin/mfa/authenticatorapp/{device.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "support@example.jp" in html
    assert device.key not in html and "qrcode" not in html
    # Dates as the admin writes them; a device never used says so, not "None".
    assert "None" not in html and "+00:00" not in html
    assert otp_admin_client.get("/admin/mfa/authenticatorapp/add/").status_code == 403
    assert otp_admin_client.get("/admin/otp_totp/totpdevice/").status_code == 404


def test_removing_an_authenticator_app_makes_staff_enroll_again(otp_admin_client, make_staff):
    staff = make_staff("support@example.jp")
    device = TOTPDevice.objects.get(user=staff)
    otp_admin_client.post(f"/admin/mfa/authenticatorapp/{device.pk}/delete/", {"post": "yes"})
    assert not TOTPDevice.objects.filter(user=staff).exists()
    other = Client()
    response = other.post("/admin/login/", {"username": staff.email, "password": PASSWORD})
    assert response["Location"].startswith("/admin/enroll/")


def test_removing_a_session_signs_that_browser_out(otp_admin_client, customer):
    browser = Client()
    browser.post("/accounts/login/", {"login": customer.email, "password": PASSWORD})
    assert browser.get("/me/").status_code == 200
    session = UserSession.objects.get(user=customer)

    page = otp_admin_client.get("/admin/mfa/signedinsession/").content.decode()
    assert customer.email in page
    otp_admin_client.post(f"/admin/mfa/signedinsession/{session.pk}/delete/", {"post": "yes"})

    assert not UserSession.objects.filter(user=customer).exists()
    assert browser.get("/me/")["Location"].startswith("/accounts/login/")


def test_an_idp_identity_can_be_removed_but_not_added(otp_admin_client, customer):
    identity = SocialAccount.objects.create(user=customer, provider="line", uid="U1234567890")
    assert otp_admin_client.get("/admin/socialaccount/socialaccount/add/").status_code == 403
    page = otp_admin_client.get("/admin/socialaccount/socialaccount/").content.decode()
    assert "U1234567890" in page and "LINE" in page
    otp_admin_client.post(
        f"/admin/socialaccount/socialaccount/{identity.pk}/delete/", {"post": "yes"}
    )
    assert not SocialAccount.objects.exists()


def test_sign_in_providers_are_configured_in_settings_not_in_the_admin(otp_admin_client):
    assert otp_admin_client.get("/admin/socialaccount/socialapp/").status_code == 404
    assert otp_admin_client.get("/admin/socialaccount/socialtoken/").status_code == 404
