"""Nothing a stranger sees says whether an email address is registered here."""

import re

import pytest
from allauth.account.adapter import get_adapter
from django.test import Client
from django.urls import reverse
from django.utils import translation

from accounts.models import Customer
from tests.conftest import PASSWORD

TAKEN = "taken@example.jp"
FRESH = "fresh@example.jp"
UNKNOWN = "nobody@example.jp"


def _page_text(response, email: str) -> str:
    """The page with the typed address and the per-session CSRF token blanked out."""
    html = response.content.decode()
    html = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", html)
    return html.replace(email, "EMAIL")


def _post_from_new_browser(url: str, data: dict, email: str) -> tuple[int, str, str]:
    """Status, redirect target and the text of the page the browser ends up on."""
    browser = Client()
    response = browser.post(url, data)
    location = response.get("Location", "")
    landing = browser.get(location) if location else response
    return response.status_code, location, _page_text(landing, email)


@pytest.fixture
def taken(make_customer):
    return make_customer(TAKEN)


def _signup(email: str) -> tuple[int, str, str]:
    data = {"email": email, "password1": PASSWORD, "password2": PASSWORD}
    return _post_from_new_browser(reverse("account_signup"), data, email)


def test_signing_up_with_a_registered_email_looks_like_a_fresh_signup(taken, mailoutbox):
    assert _signup(TAKEN) == _signup(FRESH)


def test_signing_up_with_a_registered_email_tells_its_owner_instead(taken, mailoutbox):
    _signup(TAKEN)

    assert Customer.objects.filter(email=TAKEN).count() == 1
    assert Customer.objects.count() == 1
    assert len(mailoutbox) == 1
    notice = mailoutbox[0]
    assert notice.to == [TAKEN]
    assert "/accounts/confirm-email/" not in notice.body
    assert "/accounts/password/reset/" in notice.body


def test_a_fresh_signup_gets_a_confirmation_link(db, mailoutbox):
    _signup(FRESH)

    assert Customer.objects.filter(email=FRESH).exists()
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == [FRESH]
    assert "/accounts/confirm-email/" in mailoutbox[0].body


def _reset(email: str) -> tuple[int, str, str]:
    return _post_from_new_browser(reverse("account_reset_password"), {"email": email}, email)


def test_password_reset_for_an_unknown_email_looks_like_a_known_one(taken, mailoutbox):
    assert _reset(UNKNOWN) == _reset(TAKEN)


def test_password_reset_mails_a_link_only_to_a_registered_address(taken, mailoutbox):
    _reset(UNKNOWN)
    _reset(TAKEN)

    by_recipient = {message.to[0]: message.body for message in mailoutbox}
    assert set(by_recipient) == {UNKNOWN, TAKEN}
    assert "/accounts/password/reset/key/" in by_recipient[TAKEN]
    assert "/accounts/password/reset/key/" not in by_recipient[UNKNOWN]


def _sign_in(email: str):
    return Client().post(reverse("account_login"), {"login": email, "password": "wrong-Password-9"})


def test_a_failed_sign_in_does_not_say_whether_the_email_exists(taken):
    known = _sign_in(TAKEN)
    unknown = _sign_in(UNKNOWN)

    assert known.status_code == unknown.status_code == 200
    assert _page_text(known, TAKEN) == _page_text(unknown, UNKNOWN)
    with translation.override("ja"):
        mismatch = str(get_adapter().error_messages["email_password_mismatch"])
    assert known.context["form"].non_field_errors() == [mismatch]
    assert unknown.context["form"].non_field_errors() == [mismatch]
