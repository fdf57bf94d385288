"""The second factor after every way of signing in: email and password, LINE,
Google, an OpenID Connect IdP, and the sign-in that follows an email confirmation or
a password reset. Until the code is in, every page sends the customer to it."""

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from allauth.account.models import EmailAddress
from allauth.socialaccount.models import SocialAccount
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.audit import AuditEvent
from tests.conftest import PASSWORD
from tests.fixtures.idp import GOOGLE, LINE, TRUSTED_OIDC
from tests.fixtures.mfa import code, pass_second_factor, sign_in_with_password

VERIFY = "/accounts/2fa/verify/"
# Pages of every kind: my page, the link center, allauth's email page, the MFA
# pages themselves, and the authorize endpoint of our OpenID Connect provider.
GUARDED = [
    "/me/",
    "/link/",
    "/accounts/email/",
    "/accounts/3rdparty/",
    "/accounts/password/change/",
    "/accounts/2fa/",
    "/accounts/2fa/totp/add/",
    "/me/export/",
    "/identity/o/authorize?client_id=x&response_type=code&scope=openid",
]


def assert_held_at_second_factor(client: Client) -> None:
    for url in GUARDED:
        response = client.get(url)
        assert response.status_code == 302, url
        location = urlsplit(response["Location"])
        assert location.path == VERIFY, url
        assert parse_qs(location.query)["next"] == [url], url
    # Changing things by POST is held too.
    response = client.post("/accounts/email/", {"action_add": "", "email": "new@example.jp"})
    assert urlsplit(response["Location"]).path == VERIFY
    assert not EmailAddress.objects.filter(email="new@example.jp").exists()


def assert_through_after_code(client: Client, device: TOTPDevice) -> None:
    response = client.get(VERIFY + "?next=/link/")
    assert response.status_code == 200
    response = pass_second_factor(client, device, next_url="/link/")
    assert response["Location"] == "/link/"
    assert client.get("/me/").status_code == 200
    assert client.get("/link/").status_code == 200


def test_after_email_and_password(client, mfa_customer):
    sign_in_with_password(client, mfa_customer)
    assert_held_at_second_factor(client)
    assert_through_after_code(client, TOTPDevice.objects.get(user=mfa_customer))
    assert AuditEvent.objects.filter(
        action="mfa_verified", customer=mfa_customer, method="totp"
    ).exists()


@pytest.mark.parametrize("provider", [LINE, GOOGLE, TRUSTED_OIDC])
def test_after_social_sign_in(db, client, fake_idp, enroll_totp, provider):
    fake_idp.configure()
    fake_idp.set_user(provider, sub=f"{provider}-user-1", name="山田 花子")
    # The first sign-in makes the customer, who then turns on a second factor.
    fake_idp.sign_in(client, provider)
    customer = SocialAccount.objects.get(provider=provider, uid=f"{provider}-user-1").user
    device = enroll_totp(customer)

    fresh = Client()
    response = fake_idp.sign_in(fresh, provider)
    assert response.status_code == 302
    assert fresh.session["_auth_user_id"] == str(customer.pk)  # signed in at the IdP...
    assert_held_at_second_factor(fresh)  # ...yet held until the second factor
    assert_through_after_code(fresh, device)


def test_after_the_sign_in_that_follows_email_confirmation(
    client, make_customer, enroll_totp, mailoutbox
):
    customer = make_customer("taro@example.jp", verified=False)
    device = enroll_totp(customer)
    response = client.post("/accounts/login/", {"login": customer.email, "password": PASSWORD})
    assert response["Location"] == "/accounts/confirm-email/"
    key_path = _path_in_mail(mailoutbox[-1].body, "/accounts/confirm-email/")
    response = client.post(key_path)
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(customer.pk)
    assert_held_at_second_factor(client)
    assert_through_after_code(client, device)


def test_after_the_sign_in_that_follows_a_password_reset(
    client, mfa_customer, mailoutbox, settings
):
    settings.ACCOUNT_LOGIN_ON_PASSWORD_RESET = True
    client.post("/accounts/password/reset/", {"email": mfa_customer.email})
    form_url = client.get(_path_in_mail(mailoutbox[-1].body, "/accounts/password/reset/key/"))[
        "Location"
    ]
    new_password = "Pear-Melon-4410"
    response = client.post(form_url, {"password1": new_password, "password2": new_password})
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(mfa_customer.pk)
    assert_held_at_second_factor(client)
    assert_through_after_code(client, TOTPDevice.objects.get(user=mfa_customer))


def test_a_customer_without_a_second_factor_goes_straight_in(client, customer):
    sign_in_with_password(client, customer)
    assert client.get("/me/").status_code == 200


def test_what_the_second_step_needs_stays_reachable(client, mfa_customer):
    sign_in_with_password(client, mfa_customer)
    page = client.get(VERIFY)
    assert page.status_code == 200
    assert client.get("/healthz").status_code == 200
    assert client.get("/static/css/site.css").status_code == 200
    assert client.post("/i18n/setlang/", {"language": "en", "next": VERIFY})["Location"] == VERIFY
    assert client.post("/accounts/logout/").status_code == 302
    assert "_auth_user_id" not in client.session


def test_scripts_asking_for_json_get_a_403_not_a_redirect(client, mfa_customer):
    sign_in_with_password(client, mfa_customer)
    response = client.get("/me/", HTTP_ACCEPT="application/json")
    assert response.status_code == 403


def test_the_verification_page_never_sends_elsewhere(client, mfa_customer):
    sign_in_with_password(client, mfa_customer)
    device = TOTPDevice.objects.get(user=mfa_customer)
    response = client.post(VERIFY, {"token": code(device), "next": "https://evil.example/"})
    assert response["Location"] == "/me/"


def test_verification_gives_a_new_session_key(client, mfa_customer):
    sign_in_with_password(client, mfa_customer)
    before = client.session.session_key
    pass_second_factor(client, TOTPDevice.objects.get(user=mfa_customer))
    assert client.session.session_key != before


def test_a_session_signed_in_before_enrollment_is_held_too(client, customer, enroll_totp):
    """Someone who signed in with a stolen password earlier loses access the moment
    the owner turns on a second factor elsewhere."""
    sign_in_with_password(client, customer)
    assert client.get("/me/").status_code == 200
    enroll_totp(customer)
    assert urlsplit(client.get("/me/")["Location"]).path == VERIFY


def _path_in_mail(body: str, prefix: str) -> str:
    return re.search(re.escape(prefix) + r"\S+?/(?=\s|$)", body).group(0)
