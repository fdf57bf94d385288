import re

import pytest
from django.test import Client
from django.urls import reverse

from tests.conftest import PASSWORD
from tests.fixtures.mfa import stepped_up

NEW_PASSWORD = "plum-Violet-5820"


def _signed_in(client: Client) -> bool:
    return client.get(reverse("me")).status_code == 200


@pytest.fixture
def other_device(customer) -> Client:
    """The same customer, signed in on a second browser."""
    other = Client()
    response = other.post(reverse("account_login"), {"login": customer.email, "password": PASSWORD})
    assert response.status_code == 302
    assert _signed_in(other)
    return other


def test_changing_the_password_ends_every_other_session(client, customer, other_device):
    client.post(reverse("account_login"), {"login": customer.email, "password": PASSWORD})
    assert _signed_in(client)
    stepped_up(client)  # changing the password asks for it again first

    response = client.post(
        reverse("account_change_password"),
        {"oldpassword": PASSWORD, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )

    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.check_password(NEW_PASSWORD)
    assert _signed_in(client), "the session that changed the password stays signed in"
    assert not _signed_in(other_device)


def test_a_wrong_old_password_changes_nothing(client, customer, other_device):
    client.force_login(customer)
    stepped_up(client)

    response = client.post(
        reverse("account_change_password"),
        {"oldpassword": "not-the-password-1", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )

    assert response.status_code == 200
    customer.refresh_from_db()
    assert customer.check_password(PASSWORD)
    assert _signed_in(other_device)


def test_resetting_the_password_ends_every_other_session(
    client, customer, other_device, mailoutbox
):
    response = client.post(reverse("account_reset_password"), {"email": customer.email})
    assert response.status_code == 302
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == [customer.email]
    link = re.search(r"https?://[^/\s]+(/accounts/password/reset/key/\S+/)", mailoutbox[0].body)
    assert link, mailoutbox[0].body

    form_page = client.get(link.group(1), follow=True)
    assert form_page.status_code == 200
    set_password_url = form_page.redirect_chain[-1][0]
    response = client.post(set_password_url, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})

    assert response.status_code == 302
    assert response["Location"] == reverse("account_reset_password_from_key_done")
    customer.refresh_from_db()
    assert customer.check_password(NEW_PASSWORD)
    assert not _signed_in(other_device)
    assert not _signed_in(client), "a reset does not sign the resetting browser in"
    signed_in_again = client.post(
        reverse("account_login"), {"login": customer.email, "password": NEW_PASSWORD}
    )
    assert signed_in_again["Location"] == reverse("me")
