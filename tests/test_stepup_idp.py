"""Step-up for customers who sign in only through IdPs, end to end against the fake
IdPs over HTTP: a sign-in is no re-authentication; a re-authentication asks the IdP
for a new sign-in (prompt, max_age=0) and counts only with a fresh auth_time; an IdP
that sends none is followed by a code mailed to a confirmed address. And the nonce
of every OpenID Connect sign-in is sent and checked."""

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from allauth.socialaccount.models import SocialAccount
from django.contrib.auth import get_user
from django.contrib.auth.hashers import make_password
from django.test import Client

from accounts.models import Customer
from tests.fakes.idp import GOOGLE, LINE, Reauthentication, Tamper
from tests.fixtures.idp import TRUSTED_OIDC

pytestmark = pytest.mark.django_db

EXPORT = "/me/export/?download=1"
DELETE = "/me/delete/"
REAUTH_PAGE = "/accounts/reauthenticate/idp/"
CODE_PAGE = "/accounts/reauthenticate/code/"
CONFIRM_PAGE = "/accounts/reauthenticate/code/confirm/"
# Each IdP's user; Google and the trusted OIDC IdP vouch for the address, LINE does not.
USERS = {
    LINE: {"sub": "U-stepup-1", "name": "山田 花子", "email": "hanako@example.jp"},
    GOOGLE: {"sub": "G-stepup-1", "email": "hanako@example.jp", "email_verified": True},
    TRUSTED_OIDC: {"sub": "emp-0042", "email": "hanako@example.jp", "email_verified": True},
}


def _sign_in(fake_idp, client: Client, provider: str) -> Customer:
    fake_idp.set_user(provider, **USERS[provider])
    response = fake_idp.sign_in(client, provider)
    assert response.status_code == 302, response.content
    customer = get_user(client)
    assert customer.is_authenticated and not customer.has_usable_password()
    return customer


def _path(response) -> str:
    assert response.status_code == 302, response.status_code
    return urlsplit(response["Location"]).path


def _messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def _downloads(client: Client) -> bool:
    response = client.get(EXPORT)
    return response.status_code == 200 and response["Content-Type"] == "application/json"


@pytest.mark.parametrize("provider", [LINE, GOOGLE, TRUSTED_OIDC])
def test_right_after_an_idp_sign_in_export_and_deletion_ask_to_reauthenticate(
    fake_idp, client, provider
):
    customer = _sign_in(fake_idp, client, provider)

    assert _path(client.get(EXPORT)) == REAUTH_PAGE
    assert _path(client.get(DELETE)) == REAUTH_PAGE
    assert _path(client.post(DELETE, {"confirm": "on"})) == REAUTH_PAGE
    assert Customer.objects.filter(pk=customer.pk).exists()


def test_right_after_an_idp_sign_in_linking_still_goes_through(
    fake_idp, client, service, make_account
):
    """Linking alone keeps "a sign-in within the timeout counts" (accounts.stepup)."""
    customer = _sign_in(fake_idp, client, LINE)
    legacy = make_account("S0001234", password_hash=make_password("legacy-Secret-99"))

    response = client.post(
        f"/link/service/{service.code}/",
        {"pw-external_id": "S0001234", "pw-password": "legacy-Secret-99"},
    )

    assert response["Location"] == "/link/"
    legacy.refresh_from_db()
    assert legacy.owner == customer


@pytest.mark.parametrize(
    ("provider", "prompt"),
    [(LINE, "login"), (TRUSTED_OIDC, "login"), (GOOGLE, "select_account consent")],
)
def test_the_reauthentication_asks_for_a_new_sign_in_and_then_export_works(
    fake_idp, client, provider, prompt
):
    # Google refuses prompt=login (and so does the fake): it gets max_age=0 and its own.
    _sign_in(fake_idp, client, provider)

    authorize_url = fake_idp.start_reauthentication(client, provider, EXPORT)
    sent = parse_qs(urlsplit(authorize_url).query)
    assert (sent["prompt"], sent["max_age"]) == ([prompt], ["0"])
    back = client.get(fake_idp.approve(authorize_url))

    assert back["Location"] == EXPORT
    assert _downloads(client)
    assert client.get(DELETE).status_code == 200


@pytest.mark.parametrize("provider", [LINE, GOOGLE, TRUSTED_OIDC])
def test_an_idp_that_returns_a_stale_auth_time_does_not_pass(fake_idp, client, provider):
    _sign_in(fake_idp, client, provider)
    fake_idp.answer_reauthentication(provider, Reauthentication.STALE)

    response = fake_idp.reauthenticate(client, provider, EXPORT)

    assert _path(response) == REAUTH_PAGE
    page = client.get(response["Location"])
    assert any("もう一度ログインを求めませんでした" in message for message in _messages(page))
    assert _path(client.get(EXPORT)) == REAUTH_PAGE
    assert client.get(CODE_PAGE).status_code == 403  # a stale sign-in earns no code either


def test_a_reauthentication_as_someone_else_does_not_pass(fake_idp, client):
    _sign_in(fake_idp, client, LINE)
    fake_idp.set_user(LINE, sub="U-someone-else")

    response = fake_idp.reauthenticate(client, LINE, EXPORT)

    assert _path(response) == REAUTH_PAGE
    assert _path(client.get(EXPORT)) == REAUTH_PAGE
    assert get_user(client).socialaccount_set.get().uid == USERS[LINE]["sub"]


def test_without_auth_time_a_code_to_the_confirmed_address_finishes_it(
    fake_idp, client, mailoutbox
):
    customer = _sign_in(fake_idp, client, GOOGLE)
    fake_idp.answer_reauthentication(GOOGLE, Reauthentication.NO_AUTH_TIME)
    assert client.get(CODE_PAGE).status_code == 403  # not before the IdP was asked

    response = fake_idp.reauthenticate(client, GOOGLE, EXPORT)
    assert _path(response) == CODE_PAGE
    assert _path(client.get(EXPORT)) == REAUTH_PAGE  # the IdP alone was not enough

    response = client.post(response["Location"], {"recipient": "hanako@example.jp"})
    assert _path(response) == CONFIRM_PAGE
    [mail] = mailoutbox
    assert mail.to == ["hanako@example.jp"]
    [code] = re.findall(r"^([A-Z0-9]{4}-[A-Z0-9]{4})$", mail.body, re.MULTILINE)

    not_the_code = "AAAA-AAAA" if code != "AAAA-AAAA" else "BBBB-BBBB"
    wrong = client.post(response["Location"], {"code": not_the_code})
    assert wrong.status_code == 200
    assert "コードが正しくありません。" in wrong.context["form"].errors["code"]
    assert _path(client.get(EXPORT)) == REAUTH_PAGE

    right = client.post(response["Location"], {"code": code})
    assert right["Location"] == EXPORT
    assert _downloads(client)
    assert Customer.objects.get(pk=customer.pk).socialaccount_set.count() == 1


def test_without_auth_time_or_a_confirmed_address_the_customer_is_told(fake_idp, client):
    _sign_in(fake_idp, client, LINE)  # LINE's address is never taken as confirmed
    fake_idp.answer_reauthentication(LINE, Reauthentication.NO_AUTH_TIME)

    response = fake_idp.reauthenticate(client, LINE, EXPORT)

    assert _path(response) == REAUTH_PAGE
    page = client.get(response["Location"])
    assert any("確認済みのメールアドレスがない" in message for message in _messages(page))
    assert client.get(CODE_PAGE).status_code == 403
    assert _path(client.get(EXPORT)) == REAUTH_PAGE


@pytest.mark.parametrize("provider", [LINE, GOOGLE, TRUSTED_OIDC])
def test_every_openid_connect_sign_in_sends_a_nonce(fake_idp, client, provider):
    fake_idp.set_user(provider, **USERS[provider])
    first = parse_qs(urlsplit(fake_idp.start_login(client, provider)).query)
    second = parse_qs(urlsplit(fake_idp.start_login(Client(), provider)).query)

    assert len(first["nonce"][0]) >= 32
    assert first["nonce"] != second["nonce"]


@pytest.mark.parametrize("provider", [LINE, GOOGLE, TRUSTED_OIDC])
def test_an_id_token_with_another_nonce_is_refused(fake_idp, client, provider):
    fake_idp.set_user(provider, **USERS[provider])
    fake_idp.tamper_next_id_token(provider, Tamper.NONCE)

    response = fake_idp.sign_in(client, provider)

    assert "socialaccount/authentication_error.html" in [t.name for t in response.templates]
    assert not get_user(client).is_authenticated
    assert not Customer.objects.exists()
    assert not SocialAccount.objects.exists()


def test_a_customer_with_a_password_is_never_offered_a_mailed_code(customer_client):
    page = customer_client.get("/accounts/reauthenticate/")

    assert page.status_code == 200
    assert CODE_PAGE not in page.content.decode()
    assert customer_client.get(CODE_PAGE).status_code == 403
