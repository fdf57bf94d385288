"""Hostile input in the customer forms (sign-up, sign-in, re-authentication, the
link center's member number, password and code forms, marketing consent): very
long text, emoji, right-to-left text, NUL bytes and other control characters.
Every answer is a page or a redirect with a clear error, never a 500, and nothing
is half-written: no customer, no link, no change of owner."""

import pytest
from allauth.account.models import EmailAddress
from django.test import Client

from accounts.models import Customer
from linking.models import LinkEvent
from tests.conftest import PASSWORD

HOSTILE = {
    "long": "あ" * 20_000,
    "emoji": "👨‍👩‍👧‍👦🇯🇵🙂" * 30,
    "rtl": "\u202eمرحبا بالعالم\u202c שלום",
    "nul": "abc\x00def",
    "controls": "\x01\x07\x1b[31m\r\n\t\x7f",
    "surrogate-like": "\ud800".encode("utf-8", "surrogatepass").decode("utf-8", "replace"),
}
CASES = pytest.mark.parametrize("value", HOSTILE.values(), ids=HOSTILE.keys())


def _no_server_error(response) -> None:
    assert response.status_code < 500, response.content[:500]


def _reauthenticated(client: Client) -> None:
    """Linking asks for the password again: type it, as a customer would."""
    response = client.post("/accounts/reauthenticate/", {"password": PASSWORD})
    assert response.status_code == 302


@CASES
def test_sign_up_refuses_hostile_input_and_creates_nobody(client, db, value):
    before = Customer.objects.count()

    response = client.post(
        "/accounts/signup/",
        {"email": value, "password1": value, "password2": value, "agree": "on"},
    )

    _no_server_error(response)
    assert response.status_code == 200  # the form again, with its errors
    assert Customer.objects.count() == before
    assert not EmailAddress.objects.exists()


@CASES
def test_sign_in_refuses_hostile_input(client, customer, value):
    for data in (
        {"login": value, "password": PASSWORD},
        {"login": customer.email, "password": value},
    ):
        response = client.post("/accounts/login/", data)

        _no_server_error(response)
        assert response.status_code == 200
        assert "_auth_user_id" not in client.session


@CASES
def test_reauthentication_refuses_hostile_passwords(customer_client, value):
    response = customer_client.post("/accounts/reauthenticate/", {"password": value})

    _no_server_error(response)
    assert response.status_code == 200


@CASES
def test_link_center_forms_refuse_hostile_input_and_link_nothing(
    customer_client, service, make_account, value
):
    account = make_account(password_hash="sha256$salt$" + "0" * 64)
    _reauthenticated(customer_client)
    path = f"/link/service/{service.code}/"

    answers = [
        customer_client.post(path, {"pw-external_id": value, "pw-password": "x"}),
        customer_client.post(path, {"pw-external_id": account.external_id, "pw-password": value}),
        customer_client.post(path, {"num-external_id": value}),
        customer_client.post(path, {"pw-external_id": value}),  # a field missing
    ]

    for response in answers:
        _no_server_error(response)
        assert response.status_code in (200, 302)
    account.refresh_from_db()
    assert account.owner is None
    assert not LinkEvent.objects.exists()


@CASES
def test_the_code_form_refuses_hostile_codes_and_links_nothing(
    customer_client, service, make_account, value
):
    account = make_account(email="legacy@example.jp")
    _reauthenticated(customer_client)
    started = customer_client.post(
        f"/link/service/{service.code}/", {"num-external_id": account.external_id}
    )
    assert started.status_code == 302 and started["Location"].endswith(
        f"/account/{account.pk}/code/"
    )

    for data in ({"code": value}, {"channel": value}):
        response = customer_client.post(f"/link/account/{account.pk}/code/", data)

        _no_server_error(response)
    account.refresh_from_db()
    assert account.owner is None
    assert not LinkEvent.objects.exists()


@CASES
def test_the_marketing_form_refuses_hostile_input(customer_client, customer, value):
    response = customer_client.post("/me/marketing/", {"marketing_email": value})

    _no_server_error(response)
    assert Customer.objects.filter(pk=customer.pk).exists()
