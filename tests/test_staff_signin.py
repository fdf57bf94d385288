"""Staff sign-in at /admin/login/ holds to the customer sign-in's limits (per typed
email, per client address, counted before the password is checked), and every
sign-in attempt, at /admin/login/ or /accounts/login/, costs exactly one password
hash whoever the email belongs to. Costs are counted with a counting hasher."""

import re

import pytest
from allauth.account.adapter import get_adapter
from allauth.account.models import EmailAddress
from django.db import connection
from django.test import Client
from django.urls import reverse

from accounts import backends, limits
from accounts.models import Customer
from tests.conftest import PASSWORD
from tests.hash_counting import Hashes
from tests.http_race import all_at_once, csrf_token, english_session

ADMIN_LOGIN = "/admin/login/"
WRONG = "guess-Wrong-1"


@pytest.fixture
def hashes(settings) -> Hashes:
    return Hashes(settings)


def _too_many() -> str:
    return str(get_adapter().error_messages["too_many_login_attempts"])


def _admin_sign_in(client: Client, email: str, password: str):
    return client.post(ADMIN_LOGIN, {"username": email, "password": password})


def _customer_sign_in(client: Client, email: str, password: str):
    return client.post(reverse("account_login"), {"login": email, "password": password})


def _signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def _form_errors(response) -> list[str]:
    return list(response.context["form"].non_field_errors())


def _page(response, email: str) -> str:
    html = response.content.decode()
    html = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", html)
    return html.replace(email, "EMAIL")


@pytest.fixture
def people(hashes, make_staff, make_customer) -> dict[str, Customer]:
    found = {
        "staff": make_staff("staff@example.jp"),
        "customer": make_customer("hanako@example.jp"),
        "idp_only": make_customer("line@example.jp", password=None),
        "unconfirmed": make_customer("taro@example.jp", verified=False),
    }
    # Someone else added taro's address to their own account, unconfirmed.
    squatter = make_customer("squatter@example.jp")
    EmailAddress.objects.create(user=squatter, email="taro@example.jp", verified=False)
    hashes.since()
    return found


ATTEMPTS = {
    "unknown email": ("nobody@example.jp", PASSWORD),
    "customer, right password": ("hanako@example.jp", PASSWORD),
    "customer, wrong password": ("hanako@example.jp", WRONG),
    "customer without a password": ("line@example.jp", PASSWORD),
    "address also unconfirmed elsewhere": ("taro@example.jp", WRONG),
    "staff, wrong password": ("staff@example.jp", WRONG),
    "staff, right password": ("staff@example.jp", PASSWORD),
}


@pytest.mark.parametrize("attempt", ATTEMPTS, ids=list(ATTEMPTS))
def test_each_staff_sign_in_attempt_costs_one_hash(client, people, hashes, attempt):
    email, password = ATTEMPTS[attempt]

    response = _admin_sign_in(client, email, password)

    assert response.status_code in (200, 302)
    assert hashes.since() == 1


@pytest.mark.parametrize("attempt", ATTEMPTS, ids=list(ATTEMPTS))
def test_each_customer_sign_in_attempt_costs_one_hash(client, people, hashes, attempt):
    email, password = ATTEMPTS[attempt]

    response = _customer_sign_in(client, email, password)

    assert response.status_code in (200, 302)
    assert hashes.since() == 1


def test_staff_sign_in_answers_alike_for_unknown_non_staff_and_wrong_password(people):
    pages = {
        attempt: _admin_sign_in(Client(), *ATTEMPTS[attempt])
        for attempt in ("unknown email", "customer, right password", "staff, wrong password")
    }

    assert {response.status_code for response in pages.values()} == {200}
    errors = {attempt: _form_errors(response) for attempt, response in pages.items()}
    assert len({tuple(found) for found in errors.values()}) == 1, errors
    texts = {_page(response, ATTEMPTS[attempt][0]) for attempt, response in pages.items()}
    assert len(texts) == 1


def test_wrong_passwords_for_a_staff_account_are_cut_off_then_the_right_one_too(
    client, people, hashes
):
    staff = people["staff"]
    allowed = limits.rule(backends.PER_EMAIL).amount
    answers = [_admin_sign_in(client, staff.email, f"guess-{n}-Wrong") for n in range(25)]

    assert hashes.since() == allowed
    assert all(response.status_code == 200 for response in answers)
    assert all(_form_errors(response) == [_too_many()] for response in answers[allowed:])

    response = _admin_sign_in(client, staff.email, PASSWORD)

    assert response.status_code == 200
    assert _form_errors(response) == [_too_many()]
    assert hashes.since() == 0
    assert not _signed_in(client)


def test_a_customers_right_password_at_the_staff_sign_in_counts_as_a_failure(
    client, people, hashes
):
    customer = people["customer"]
    for _ in range(limits.rule(backends.PER_EMAIL).amount):
        assert _form_errors(_admin_sign_in(Client(), customer.email, PASSWORD)) != [_too_many()]
    hashes.since()

    response = _admin_sign_in(client, customer.email, PASSWORD)

    assert _form_errors(response) == [_too_many()]
    assert hashes.since() == 0


def test_failures_at_the_staff_sign_in_lock_the_customer_sign_in_too(client, people, hashes):
    customer = people["customer"]
    for _ in range(limits.rule(backends.PER_EMAIL).amount):
        _admin_sign_in(Client(), customer.email, WRONG)
    hashes.since()

    response = _customer_sign_in(client, customer.email, PASSWORD)

    assert response.status_code == 200
    assert _form_errors(response) == [_too_many()]
    assert hashes.since() == 0
    assert not _signed_in(client)


def test_one_address_trying_many_accounts_is_cut_off(hashes, make_staff):
    allowed = limits.rule(backends.PER_IP).amount
    staff = [make_staff(f"staff{n}@example.jp", device=False) for n in range(allowed + 1)]
    hashes.since()
    attacker = Client(REMOTE_ADDR="203.0.113.9")

    for member in staff[:allowed]:
        _admin_sign_in(attacker, member.email, WRONG)
    assert hashes.since() == allowed

    # Refused at the address, these count nothing against the account they name:
    # a blocked address cannot lock someone else out.
    for _ in range(limits.rule(backends.PER_EMAIL).amount):
        response = _admin_sign_in(attacker, staff[-1].email, PASSWORD)
        assert _form_errors(response) == [_too_many()]
    assert hashes.since() == 0
    assert not _signed_in(attacker)

    elsewhere = Client(REMOTE_ADDR="198.51.100.4")
    response = _admin_sign_in(elsewhere, staff[-1].email, PASSWORD)
    assert response.status_code == 302
    assert _signed_in(elsewhere)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("path", "field"), [(ADMIN_LOGIN, "username"), ("/accounts/login/", "login")]
)
def test_fifty_parallel_wrong_passwords_get_at_most_the_limit_checked(
    live_server, hashes, make_staff, path, field
):
    if connection.vendor != "postgresql":
        pytest.skip(
            "concurrent writers need PostgreSQL (SQLite serializes them); "
            "run with DATABASE_URL=postgres://..., as CI does"
        )
    guesses = 50
    staff = make_staff("staff@example.jp")
    url = f"{live_server.url}{path}"
    sessions = [english_session() for _ in range(guesses)]
    tokens = [csrf_token(session, url) for session in sessions]
    hashes.since()

    def guess(number: int) -> int:
        data = {
            "csrfmiddlewaretoken": tokens[number],
            field: staff.email,
            "password": f"w-{number}-Wrong",
        }
        return sessions[number].post(url, data, timeout=120, allow_redirects=False).status_code

    statuses = all_at_once(guess, guesses)

    assert all(status < 500 for status in statuses), statuses
    assert hashes.since() == limits.rule(backends.PER_EMAIL).amount

    data = {"csrfmiddlewaretoken": tokens[0], field: staff.email, "password": PASSWORD}
    response = sessions[0].post(url, data, timeout=30, allow_redirects=False)
    assert response.status_code in (200, 429)
    assert hashes.since() == 0
