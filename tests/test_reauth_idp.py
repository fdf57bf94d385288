"""Customers without a password re-authenticate at one of their own IdPs before
connecting or disconnecting a sign-in method; the sign-in itself does not count."""

from urllib.parse import parse_qs, urlsplit

import pytest
from allauth.socialaccount.models import SocialAccount
from django.urls import reverse

from accounts.models import Customer
from accounts.reauth import IDP_REAUTHENTICATED


@pytest.fixture
def line_customer(db, client, fake_idp):
    fake_idp.set_user("line", sub="U-line-1", name="LINE 太郎")
    fake_idp.sign_in(client, "line")
    return Customer.objects.get(socialaccount__uid="U-line-1")


def _age_sign_in(client, seconds: int = 3600) -> None:
    session = client.session
    session["account_authentication_methods"] = [
        {**record, "at": record["at"] - seconds}
        for record in session["account_authentication_methods"]
    ]
    if IDP_REAUTHENTICATED in session:
        session[IDP_REAUTHENTICATED] = {
            **session[IDP_REAUTHENTICATED],
            "at": session[IDP_REAUTHENTICATED]["at"] - seconds,
        }
    session.save()


def test_a_fresh_idp_sign_in_is_not_enough_to_connect_a_reauthentication_is(
    client, fake_idp, line_customer
):
    fake_idp.set_user("google", sub="G-1", email="taro@example.jp", email_verified=True)
    response = fake_idp.sign_in(client, "google", process="connect")
    assert response["Location"].startswith(reverse("reauthenticate_idp"))
    assert not SocialAccount.objects.filter(provider="google").exists()

    fake_idp.set_user("line", sub="U-line-1")
    fake_idp.reauthenticate(client, "line", reverse("socialaccount_connections"))
    fake_idp.sign_in(client, "google", process="connect")
    assert set(
        SocialAccount.objects.filter(user=line_customer).values_list("provider", flat=True)
    ) == {
        "line",
        "google",
    }


def test_an_old_idp_sign_in_must_be_renewed_before_the_connections_page(
    client, fake_idp, line_customer
):
    _age_sign_in(client)
    response = client.get(reverse("socialaccount_connections"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("reauthenticate_idp"))
    page = client.get(response["Location"]).content.decode()
    assert "LINE" in page


def test_an_old_idp_sign_in_cannot_connect_even_by_a_direct_request(
    client, fake_idp, line_customer
):
    _age_sign_in(client)
    fake_idp.set_user("google", sub="G-attacker", email="attacker@example.jp", email_verified=True)
    response = fake_idp.sign_in(client, "google", process="connect")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("reauthenticate_idp"))
    assert not SocialAccount.objects.filter(uid="G-attacker").exists()


def test_an_old_idp_sign_in_cannot_disconnect(client, fake_idp, line_customer):
    fake_idp.set_user("line", sub="U-line-1")
    fake_idp.reauthenticate(client, "line")
    fake_idp.set_user("google", sub="G-1")
    fake_idp.sign_in(client, "google", process="connect")
    _age_sign_in(client)
    google = SocialAccount.objects.get(uid="G-1")
    response = client.post(reverse("socialaccount_connections"), {"account": google.pk})
    assert response.status_code == 302
    assert SocialAccount.objects.filter(pk=google.pk).exists()


def test_signing_in_again_at_the_idp_unlocks_the_page(client, fake_idp, line_customer):
    _age_sign_in(client)
    reauth_page = client.get(reverse("socialaccount_connections"))["Location"]
    login_url = client.get(reauth_page).context["providers"][0][1]
    query = parse_qs(urlsplit(login_url).query)
    assert query["action"] == ["reauthenticate"] and query["process"] == ["redirect"]
    fake_idp.set_user("line", sub="U-line-1")
    authorize_url = client.post(login_url)["Location"]
    sent = parse_qs(urlsplit(authorize_url).query)
    assert (sent["prompt"], sent["max_age"]) == (["login"], ["0"])
    back = client.get(fake_idp.approve(authorize_url))
    assert back["Location"] == reverse("socialaccount_connections")
    assert client.get(reverse("socialaccount_connections")).status_code == 200


def test_password_customers_are_left_to_allauth(customer_client):
    assert customer_client.get(reverse("socialaccount_connections")).status_code in (200, 302)
    response = customer_client.get(reverse("socialaccount_connections"))
    assert reverse("reauthenticate_idp") not in response.get("Location", "")


def test_mail_speaks_as_the_product(client, db, mailoutbox):
    client.post(
        reverse("account_signup"),
        {
            "email": "new@example.jp",
            "password1": "kiwi-Orange-7741",
            "password2": "kiwi-Orange-7741",
        },
    )
    greeting = mailoutbox[-1].body.splitlines()[0]
    assert "統合ID" in greeting
    assert "testserver" not in greeting


def test_an_identity_at_an_idp_no_longer_configured_still_shows(client, fake_idp, line_customer):
    fake_idp.configure(providers=["google"])
    page = client.get(reverse("me"))
    assert page.status_code == 200
    assert "line" in page.content.decode()
