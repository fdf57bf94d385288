"""Step-up before what matters: linking, unlinking, changing the email address or
the password, and changing the second factor. First a recent re-authentication
(password, or a sign-in at the customer's own IdP; for linking, a password sign-in
within the timeout counts), then, for a customer with a second factor, a fresh
code. A suspended POST goes through once both are done."""

from urllib.parse import urlsplit

import pytest
from allauth.account.models import EmailAddress
from allauth.socialaccount.models import SocialAccount
from django.contrib.auth.hashers import make_password
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from linking import claims
from tests.conftest import PASSWORD
from tests.fixtures.idp import LINE
from tests.fixtures.mfa import code, pass_second_factor, reauthenticate, sign_in_with_password

LEGACY_SECRET = "legacy-Secret-99"
VERIFY = "/accounts/2fa/verify/"


@pytest.fixture
def signed_in(mfa_customer) -> Client:
    """Signed in with password and code a while ago: nothing counts as recent."""
    client = Client()
    sign_in_with_password(client, mfa_customer)
    pass_second_factor(client, TOTPDevice.objects.get(user=mfa_customer))
    _age_authentication(client)
    return client


def _age_authentication(client: Client) -> None:
    session = client.session
    session["account_authentication_methods"] = [
        {**record, "at": record["at"] - 3600}
        for record in session["account_authentication_methods"]
    ]
    session.save()


def _device(customer) -> TOTPDevice:
    return TOTPDevice.objects.get(user=customer)


@pytest.fixture
def legacy(make_account):
    return make_account("S0001234", password_hash=make_password(LEGACY_SECRET, "pbkdf2_sha256"))


def test_linking_by_password_asks_for_password_then_code_then_links(
    signed_in, mfa_customer, service, legacy
):
    url = f"/link/service/{service.code}/"
    proof = {"pw-external_id": "S0001234", "pw-password": LEGACY_SECRET}
    assert signed_in.get(url).status_code == 200  # looking is free

    response = signed_in.post(url, proof)
    assert urlsplit(response["Location"]).path == "/accounts/reauthenticate/"
    legacy.refresh_from_db()
    assert legacy.owner is None

    # The password; allauth replays the POST, which now meets the second step.
    response = signed_in.post(response["Location"], {"password": PASSWORD})
    assert urlsplit(response["Location"]).path == VERIFY
    legacy.refresh_from_db()
    assert legacy.owner is None

    # The code; the suspended proof goes through.
    response = signed_in.post(VERIFY, {"token": code(_device(mfa_customer), drift=1), "next": url})
    assert response["Location"] == "/link/"
    legacy.refresh_from_db()
    assert legacy.owner == mfa_customer


def test_a_customer_without_second_factor_only_reauthenticates(client, customer, service, legacy):
    sign_in_with_password(client, customer)
    _age_authentication(client)
    url = f"/link/service/{service.code}/"
    response = client.post(url, {"pw-external_id": "S0001234", "pw-password": LEGACY_SECRET})
    assert urlsplit(response["Location"]).path == "/accounts/reauthenticate/"
    response = client.post(response["Location"], {"password": PASSWORD})
    assert response["Location"] == "/link/"
    legacy.refresh_from_db()
    assert legacy.owner == customer


def test_a_password_sign_in_a_moment_ago_counts_for_linking_not_for_unlinking(
    client, customer, service, legacy, make_account
):
    sign_in_with_password(client, customer)
    url = f"/link/service/{service.code}/"
    response = client.post(url, {"pw-external_id": "S0001234", "pw-password": LEGACY_SECRET})
    assert response["Location"] == "/link/"  # no second password entry
    legacy.refresh_from_db()
    assert legacy.owner == customer

    other = make_account("S0002222")
    claims.link(account=other, customer=customer, proof="staff", request=None)
    response = client.get(f"/link/account/{other.pk}/unlink/")
    assert urlsplit(response["Location"]).path == "/accounts/reauthenticate/"


def test_sending_an_ownership_code_needs_step_up(signed_in, mfa_customer, service, make_account):
    make_account("S0005678", email="taro@example.jp")
    response = signed_in.post(f"/link/service/{service.code}/", {"num-external_id": "S0005678"})
    assert urlsplit(response["Location"]).path == "/accounts/reauthenticate/"


def test_unlinking_asks_for_password_and_code(signed_in, mfa_customer, make_account):
    account = make_account("S0001111")
    claims.link(account=account, customer=mfa_customer, proof="staff", request=None)
    url = f"/link/account/{account.pk}/unlink/"
    response = signed_in.get(url)
    assert urlsplit(response["Location"]).path == "/accounts/reauthenticate/"
    reauthenticate(signed_in)
    response = signed_in.get(url)
    assert urlsplit(response["Location"]).path == VERIFY
    pass_second_factor(signed_in, _device(mfa_customer), drift=1)
    assert signed_in.get(url).status_code == 200
    signed_in.post(url, {"confirm": "on"})
    account.refresh_from_db()
    assert account.owner is None


def test_a_fresh_code_at_sign_in_counts_but_an_old_one_does_not(mfa_customer, make_account):
    account = make_account("S0001111")
    claims.link(account=account, customer=mfa_customer, proof="staff", request=None)
    url = f"/link/account/{account.pk}/unlink/"
    client = Client()
    sign_in_with_password(client, mfa_customer)
    pass_second_factor(client, _device(mfa_customer))
    reauthenticate(client)
    assert client.get(url).status_code == 200

    _age_authentication(client)
    reauthenticate(client)  # the password is recent again, the code is not
    assert urlsplit(client.get(url)["Location"]).path == VERIFY


@pytest.mark.parametrize(
    ("url", "data"),
    [
        ("/accounts/email/", {"action_add": "", "email": "new@example.jp"}),
        (
            "/accounts/password/change/",
            {
                "oldpassword": PASSWORD,
                "password1": "Pear-Melon-4410",
                "password2": "Pear-Melon-4410",
            },
        ),
    ],
    ids=["email", "password"],
)
def test_changing_email_or_password_needs_step_up(signed_in, mfa_customer, url, data):
    assert signed_in.get(url).status_code == 200
    response = signed_in.post(url, data)
    assert urlsplit(response["Location"]).path == "/accounts/reauthenticate/"
    response = signed_in.post(response["Location"], {"password": PASSWORD})
    assert urlsplit(response["Location"]).path == VERIFY
    mfa_customer.refresh_from_db()
    assert mfa_customer.check_password(PASSWORD)
    assert not EmailAddress.objects.filter(email="new@example.jp").exists()

    response = signed_in.post(VERIFY, {"token": code(_device(mfa_customer), drift=1), "next": url})
    assert response.status_code == 302
    mfa_customer.refresh_from_db()
    changed = EmailAddress.objects.filter(
        email="new@example.jp"
    ).exists() or not mfa_customer.check_password(PASSWORD)
    assert changed


@pytest.mark.parametrize(
    "url", ["/accounts/2fa/totp/add/", "/accounts/2fa/passkeys/add/", "/accounts/2fa/backup-codes/"]
)
def test_changing_the_second_factor_needs_step_up(signed_in, mfa_customer, url):
    assert urlsplit(signed_in.get(url)["Location"]).path == "/accounts/reauthenticate/"
    reauthenticate(signed_in)
    assert urlsplit(signed_in.get(url)["Location"]).path == VERIFY
    pass_second_factor(signed_in, _device(mfa_customer), drift=1)
    assert signed_in.get(url).status_code == 200


def test_removing_a_device_needs_step_up(signed_in, mfa_customer):
    device = _device(mfa_customer)
    url = f"/accounts/2fa/devices/totp/{device.pk}/remove/"
    response = signed_in.post(url)
    assert urlsplit(response["Location"]).path == "/accounts/reauthenticate/"
    assert TOTPDevice.objects.filter(pk=device.pk).exists()


def test_an_idp_customer_signs_in_again_at_the_idp_then_gives_the_code(
    db, client, fake_idp, enroll_totp, make_account
):
    fake_idp.configure()
    fake_idp.set_user(LINE, sub="U-step-up", name="山田 花子")
    fake_idp.sign_in(client, LINE)
    customer = SocialAccount.objects.get(provider=LINE, uid="U-step-up").user
    device = enroll_totp(customer)
    pass_second_factor(client, device)
    _age_authentication(client)
    account = make_account("S0002222")
    claims.link(account=account, customer=customer, proof="staff", request=None)
    url = f"/link/account/{account.pk}/unlink/"

    response = client.get(url)
    assert urlsplit(response["Location"]).path == "/accounts/reauthenticate/idp/"
    fake_idp.reauthenticate(client, LINE, url)  # signed in at LINE again just now
    response = client.get(url)
    assert urlsplit(response["Location"]).path == VERIFY
    pass_second_factor(client, device, drift=1)
    assert client.get(url).status_code == 200


@pytest.mark.parametrize("kind", ["password", "idp"])
def test_a_code_by_email_is_no_way_to_reauthenticate(client, make_customer, fake_idp, kind):
    # allauth can re-authenticate with a code sent to the customer's email address;
    # here a customer proves it is them with their password or at their own IdP only.
    if kind == "password":
        sign_in_with_password(client, make_customer())
    else:
        fake_idp.set_user(LINE, sub="U-reauth", name="LINE 太郎")
        fake_idp.sign_in(client, LINE)
        customer = SocialAccount.objects.get(uid="U-reauth").user
        EmailAddress.objects.create(
            user=customer, email="line@example.jp", verified=True, primary=True
        )
    _age_authentication(client)

    assert client.get("/accounts/reauthenticate/code/").status_code == 403
    assert client.post("/accounts/reauthenticate/code/").status_code == 403
    response = client.get("/me/export/?download=1")
    assert response.status_code == 302
    expected = (
        "/accounts/reauthenticate/" if kind == "password" else "/accounts/reauthenticate/idp/"
    )
    assert urlsplit(response["Location"]).path == expected
