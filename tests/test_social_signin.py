"""Signing in with LINE, Google and OpenID Connect IdPs, connecting and disconnecting
identities, all against the fake IdPs in tests/fakes/idp.py over real HTTP."""

from urllib.parse import parse_qs, urlsplit

import pytest
from allauth.account.models import EmailAddress
from allauth.socialaccount.models import SocialAccount
from django.contrib.auth import get_user
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from accounts import unified_id
from accounts.models import Customer
from tests.conftest import PASSWORD
from tests.fakes.idp import GOOGLE, LINE, Tamper
from tests.fixtures.idp import TRUSTED_OIDC, UNTRUSTED_OIDC, login_url

HANAKO_LINE_ID = "U4af4980629d0e1f4a3b2c1d0e9f8a7b6"


@pytest.fixture(autouse=True)
def _fresh_rate_limits(db):
    """allauth counts sign-in attempts in the cache, which outlives a test."""
    cache.clear()


def signed_in(client: Client) -> Customer | None:
    user = get_user(client)
    return user if user.is_authenticated else None


def refusal(response) -> str:
    """What the site's sign-in error page was rendered for ("" if it was not)."""
    if "socialaccount/authentication_error.html" not in [t.name for t in response.templates]:
        return ""
    return str(response.context["auth_error"]["exception"])


def test_line_sign_in_creates_a_customer_with_a_unified_id(fake_idp, client):
    fake_idp.set_user(LINE, sub=HANAKO_LINE_ID, name="山田 花子")

    response = fake_idp.sign_in(client, LINE)

    assert response.status_code == 302
    assert response["Location"] == reverse("me")
    customer = Customer.objects.get()
    assert unified_id.is_valid(customer.unified_id)
    assert customer.name == "山田 花子"
    assert not customer.has_usable_password()
    account = SocialAccount.objects.get()
    assert (account.provider, account.uid, account.user) == ("line", HANAKO_LINE_ID, customer)
    assert signed_in(client) == customer
    assert customer.unified_id_display in client.get(reverse("me")).content.decode()


def test_second_line_sign_in_finds_the_same_customer(fake_idp, client):
    fake_idp.set_user(LINE, sub=HANAKO_LINE_ID, name="山田 花子")
    fake_idp.sign_in(client, LINE)
    first = Customer.objects.get()

    other_browser = Client()
    fake_idp.sign_in(other_browser, LINE)

    assert signed_in(other_browser) == first
    assert Customer.objects.count() == 1
    assert SocialAccount.objects.count() == 1


def test_line_email_is_not_stored_because_line_does_not_say_it_is_verified(fake_idp, client):
    fake_idp.set_user(LINE, sub=HANAKO_LINE_ID, email="hanako@example.jp")

    fake_idp.sign_in(client, LINE)

    customer = signed_in(client)
    assert customer is not None
    assert customer.email is None
    assert not EmailAddress.objects.exists()
    # LINE did hand the email over: it stays among the IdP's claims only.
    assert SocialAccount.objects.get().extra_data["email"] == "hanako@example.jp"


def test_line_authorize_request_carries_state_nonce_and_s256_challenge(fake_idp, client):
    first = parse_qs(urlsplit(fake_idp.start_login(client, LINE)).query)
    second = parse_qs(urlsplit(fake_idp.start_login(client, LINE)).query)

    assert first["response_type"] == ["code"]
    assert first["client_id"] == [fake_idp.server.clients[LINE].client_id]
    assert first["redirect_uri"] == ["http://testserver/accounts/line/login/callback/"]
    assert set(first["scope"][0].split()) == {"openid", "profile", "email"}
    assert first["code_challenge_method"] == ["S256"]
    assert len(first["code_challenge"][0]) == 43  # base64url of a SHA-256 digest
    assert len(first["state"][0]) >= 16
    assert len(first["nonce"][0]) >= 32
    for name in ("state", "nonce", "code_challenge"):
        assert first[name] != second[name], name


def test_callback_with_a_state_the_site_did_not_issue_is_refused(fake_idp, client):
    fake_idp.set_user(LINE, sub=HANAKO_LINE_ID)
    callback_url = fake_idp.approve(fake_idp.start_login(client, LINE))
    forged = callback_url.replace("state=", "state=x")

    response = client.get(forged)

    assert "socialaccount/authentication_error.html" in [t.name for t in response.templates]
    assert signed_in(client) is None
    assert not Customer.objects.exists()


@pytest.mark.parametrize("tamper", list(Tamper))
def test_line_id_token_that_does_not_check_out_is_refused(fake_idp, client, tamper):
    fake_idp.set_user(LINE, sub=HANAKO_LINE_ID, name="山田 花子")
    fake_idp.tamper_next_id_token(LINE, tamper)

    response = fake_idp.sign_in(client, LINE)

    assert "invalid LINE ID token" in refusal(response)
    assert signed_in(client) is None
    assert not Customer.objects.exists()
    assert not SocialAccount.objects.exists()


@pytest.mark.parametrize("tamper", [Tamper.SIGNATURE, Tamper.AUDIENCE, Tamper.EXPIRED])
def test_google_id_token_that_does_not_check_out_is_refused(fake_idp, client, tamper):
    fake_idp.set_user(GOOGLE, sub="108234567890", email="hanako@example.jp", email_verified=True)
    fake_idp.tamper_next_id_token(GOOGLE, tamper)

    response = fake_idp.sign_in(client, GOOGLE)

    assert "Invalid id_token" in refusal(response)
    assert signed_in(client) is None
    assert not Customer.objects.exists()


def test_oidc_id_token_for_another_audience_is_refused(fake_idp, client):
    fake_idp.set_user(TRUSTED_OIDC, sub="emp-0042")
    fake_idp.tamper_next_id_token(TRUSTED_OIDC, Tamper.AUDIENCE)

    response = fake_idp.sign_in(client, TRUSTED_OIDC)

    assert "Invalid id_token" in refusal(response)
    assert signed_in(client) is None


def test_google_sign_in_with_a_verified_email_stores_it_verified(fake_idp, client):
    fake_idp.set_user(
        GOOGLE, sub="108234567890", name="Hanako", email="hanako@example.jp", email_verified=True
    )

    fake_idp.sign_in(client, GOOGLE)

    customer = signed_in(client)
    assert customer is not None
    assert customer.email == "hanako@example.jp"
    address = EmailAddress.objects.get()
    assert (address.user, address.email, address.verified, address.primary) == (
        customer,
        "hanako@example.jp",
        True,
        True,
    )
    assert SocialAccount.objects.get().uid == "108234567890"


def test_google_sign_in_with_an_unverified_email_stores_no_email(fake_idp, client):
    fake_idp.set_user(GOOGLE, sub="108234567890", email="hanako@example.jp", email_verified=False)

    fake_idp.sign_in(client, GOOGLE)

    customer = signed_in(client)
    assert customer is not None
    assert customer.email is None
    assert not EmailAddress.objects.exists()


@pytest.mark.parametrize(
    ("provider", "email_verified", "stored"),
    [
        (TRUSTED_OIDC, True, True),
        (TRUSTED_OIDC, False, False),
        (UNTRUSTED_OIDC, True, False),
    ],
)
def test_oidc_email_is_stored_only_when_a_trusted_idp_verified_it(
    fake_idp, client, provider, email_verified, stored
):
    fake_idp.set_user(
        provider, sub="emp-0042", email="hanako@example.jp", email_verified=email_verified
    )

    fake_idp.sign_in(client, provider)

    customer = signed_in(client)
    assert customer is not None
    account = SocialAccount.objects.get()
    assert (account.provider, account.uid, account.user) == (provider, "emp-0042", customer)
    assert (customer.email == "hanako@example.jp") is stored
    assert EmailAddress.objects.filter(email="hanako@example.jp", verified=True).exists() is stored
    assert EmailAddress.objects.filter(verified=False).count() == 0


def test_login_page_offers_every_configured_provider(fake_idp, client):
    page = client.get(reverse("account_login")).content.decode()

    for provider in (LINE, GOOGLE, TRUSTED_OIDC, UNTRUSTED_OIDC):
        assert login_url(provider) in page, provider


def test_unconfigured_provider_has_no_button_and_no_login_url(fake_idp, client):
    fake_idp.configure({GOOGLE, TRUSTED_OIDC})

    page = client.get(reverse("account_login")).content.decode()

    assert login_url(GOOGLE) in page
    assert login_url(TRUSTED_OIDC) in page
    assert login_url(LINE) not in page
    assert login_url(UNTRUSTED_OIDC) not in page
    assert client.post(login_url(LINE)).status_code == 404
    assert client.post(login_url(UNTRUSTED_OIDC)).status_code == 404


def test_connecting_line_requires_reauthentication_then_works(fake_idp, client, customer):
    client.force_login(customer)
    fake_idp.set_user(LINE, sub=HANAKO_LINE_ID)

    response = fake_idp.sign_in(client, LINE, process="connect")

    assert response["Location"] == reverse("account_reauthenticate")
    assert not SocialAccount.objects.exists()

    response = client.post(reverse("account_reauthenticate"), {"password": PASSWORD})

    assert response.status_code == 302
    account = SocialAccount.objects.get()
    assert (account.provider, account.uid, account.user) == ("line", HANAKO_LINE_ID, customer)
    assert signed_in(client) == customer

    other_browser = Client()
    fake_idp.sign_in(other_browser, LINE)
    assert signed_in(other_browser) == customer


def test_reauthentication_with_a_wrong_password_does_not_connect(fake_idp, client, customer):
    client.force_login(customer)
    fake_idp.set_user(LINE, sub=HANAKO_LINE_ID)
    fake_idp.sign_in(client, LINE, process="connect")

    client.post(reverse("account_reauthenticate"), {"password": "not-the-password-1"})

    assert not SocialAccount.objects.exists()


def test_disconnecting_requires_reauthentication_then_works(fake_idp, client, customer):
    account = SocialAccount.objects.create(user=customer, provider="line", uid=HANAKO_LINE_ID)
    client.force_login(customer)
    connections = reverse("socialaccount_connections")

    response = client.post(connections, {"account": account.pk})

    assert response.status_code == 302
    assert urlsplit(response["Location"]).path == reverse("account_reauthenticate")
    assert SocialAccount.objects.filter(pk=account.pk).exists()

    client.post(f"{response['Location']}", {"password": PASSWORD})

    assert not SocialAccount.objects.filter(pk=account.pk).exists()
    assert signed_in(client) == customer


def test_disconnecting_the_only_way_to_sign_in_is_refused(fake_idp, client):
    fake_idp.set_user(LINE, sub=HANAKO_LINE_ID)
    fake_idp.sign_in(client, LINE)
    fake_idp.reauthenticate(client, LINE)
    account = SocialAccount.objects.get()

    response = client.post(reverse("socialaccount_connections"), {"account": account.pk})

    assert response.status_code == 200
    assert response.context["form"].errors
    assert SocialAccount.objects.filter(pk=account.pk).exists()


def test_social_only_customer_can_disconnect_one_of_two_identities(fake_idp, client):
    fake_idp.set_user(LINE, sub=HANAKO_LINE_ID)
    fake_idp.set_user(GOOGLE, sub="108234567890")
    fake_idp.sign_in(client, LINE)
    fake_idp.reauthenticate(client, LINE)
    fake_idp.sign_in(client, GOOGLE, process="connect")
    customer = signed_in(client)
    line, google = (SocialAccount.objects.get(provider=p, user=customer) for p in (LINE, GOOGLE))

    client.post(reverse("socialaccount_connections"), {"account": line.pk})

    assert list(SocialAccount.objects.filter(user=customer)) == [google]
