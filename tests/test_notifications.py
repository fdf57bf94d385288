"""Security notifications by email: links and unlinks, second-factor changes (for
the MFA flows to call), and allauth's own for sign-in methods and passwords."""

import pytest
from allauth.socialaccount.models import SocialAccount
from django.db import transaction
from django.test import Client

from accounts.notifications import notify_mfa_changed
from config.settings import social_providers
from linking import claims
from tests.conftest import PASSWORD
from tests.fixtures.mfa import stepped_up


def test_a_link_is_mailed_to_the_customer_after_commit(
    customer, make_account, mailoutbox, django_capture_on_commit_callbacks
):
    account = make_account("S0001234")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        claims.link(account=account, customer=customer, proof="password", request=None)
        assert mailoutbox == []  # nothing before the commit

    with django_capture_on_commit_callbacks(execute=True):  # the mail task's hand-over
        for callback in callbacks:
            callback()

    assert [m.to for m in mailoutbox] == [[customer.email]]
    assert "****1234" in mailoutbox[0].body
    assert "S0001234" not in mailoutbox[0].body
    assert mailoutbox[0].subject.startswith("[統合ID]")


def test_an_unlink_is_mailed_too(
    customer, make_account, mailoutbox, django_capture_on_commit_callbacks
):
    account = make_account("S0001234")
    with django_capture_on_commit_callbacks(execute=True):
        claims.link(account=account, customer=customer, proof="password", request=None)
        claims.unlink(account=account, customer=customer, request=None)

    assert len(mailoutbox) == 2
    assert mailoutbox[0].subject != mailoutbox[1].subject


def test_a_rolled_back_link_sends_nothing(
    customer, make_account, mailoutbox, django_capture_on_commit_callbacks
):
    account = make_account("S0001234")
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        claims.link(account=account, customer=customer, proof="password", request=None)
        raise RuntimeError("rolled back")

    assert callbacks == [] and mailoutbox == []


def test_no_mail_without_a_verified_address(
    make_customer, make_account, mailoutbox, django_capture_on_commit_callbacks
):
    unverified = make_customer("new@example.jp", verified=False)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        claims.link(account=make_account("S1"), customer=unverified, proof="staff", request=None)

    assert len(callbacks) >= 1
    assert mailoutbox == []


def test_the_mfa_flows_can_announce_a_change(
    customer, mailoutbox, rf, django_capture_on_commit_callbacks
):
    request = rf.post("/", REMOTE_ADDR="198.51.100.7", HTTP_USER_AGENT="Phone")
    with django_capture_on_commit_callbacks(execute=True):
        notify_mfa_changed(customer, change="totp_added", request=request)

    assert [m.to for m in mailoutbox] == [[customer.email]]
    assert "198.51.100.7" in mailoutbox[0].body


def test_unknown_mfa_changes_are_refused(customer):
    with pytest.raises(KeyError):
        notify_mfa_changed(customer, change="something")


def test_disconnecting_a_sign_in_method_is_mailed_by_allauth(customer, mailoutbox, settings):
    settings.SOCIALACCOUNT_PROVIDERS = social_providers(
        line_channel_id="",
        line_channel_secret="",
        google_client_id="client-1",
        google_client_secret="secret-1",
        oidc_providers="",
    )
    account = SocialAccount.objects.create(user=customer, provider="google", uid="g-1")
    client = Client()
    client.post("/accounts/login/", {"login": customer.email, "password": PASSWORD})
    client.post("/accounts/reauthenticate/", {"password": PASSWORD})
    mailoutbox.clear()

    response = client.post("/accounts/3rdparty/", {"account": account.pk})

    assert response.status_code == 302
    assert not SocialAccount.objects.filter(pk=account.pk).exists()
    assert [m.to for m in mailoutbox] == [[customer.email]]


def test_a_password_change_is_mailed_by_allauth(customer, mailoutbox):
    client = Client()
    client.post("/accounts/login/", {"login": customer.email, "password": PASSWORD})
    stepped_up(client)  # changing the password needs a fresh re-authentication
    mailoutbox.clear()

    client.post(
        "/accounts/password/change/",
        {"oldpassword": PASSWORD, "password1": "melon-Grape-9921", "password2": "melon-Grape-9921"},
    )

    assert [m.to for m in mailoutbox] == [[customer.email]]
