"""Nobody gets into someone else's unified ID through an email address: a person is
identified by an IdP's issuer and subject, and an email counts only when this site
or a trusted IdP verified it."""

import copy

import pytest
from allauth.account.models import EmailAddress
from allauth.socialaccount.models import SocialAccount
from django.conf import settings as django_settings
from django.contrib.auth import get_user
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from accounts.models import Customer
from tests.conftest import PASSWORD
from tests.fakes.idp import GOOGLE, LINE
from tests.fixtures.idp import TRUSTED_OIDC, UNTRUSTED_OIDC

VICTIM = "hanako@example.jp"
ATTACKER_PASSWORD = "plum-Falcon-3390"


@pytest.fixture(autouse=True)
def _fresh_rate_limits(db):
    """allauth counts sign-in attempts in the cache, which outlives a test."""
    cache.clear()


@pytest.fixture
def victim(make_customer) -> Customer:
    return make_customer(VICTIM)


def signed_in(client: Client) -> Customer | None:
    user = get_user(client)
    return user if user.is_authenticated else None


def assert_untouched(victim: Customer) -> None:
    assert not SocialAccount.objects.filter(user=victim).exists()
    assert list(EmailAddress.objects.filter(email=VICTIM).values_list("user", "verified")) == [
        (victim.pk, True)
    ]


def test_google_verified_email_of_an_existing_customer_does_not_sign_into_it(
    fake_idp, client, victim, mailoutbox
):
    fake_idp.set_user(GOOGLE, sub="g-stranger", email=VICTIM, email_verified=True)

    fake_idp.sign_in(client, GOOGLE)

    assert signed_in(client) is None
    assert_untouched(victim)
    assert not SocialAccount.objects.exists()
    assert Customer.objects.count() == 1
    # Enumeration prevention: the address's owner hears that someone tried.
    assert [message.to for message in mailoutbox] == [[VICTIM]]


def test_owner_connects_google_after_signing_in_with_a_password(fake_idp, client, victim):
    fake_idp.set_user(GOOGLE, sub="g-hanako", email=VICTIM, email_verified=True)
    client.post(reverse("account_login"), {"login": VICTIM, "password": PASSWORD})
    assert signed_in(client) == victim

    fake_idp.sign_in(client, GOOGLE, process="connect")
    client.post(reverse("account_reauthenticate"), {"password": PASSWORD})

    assert SocialAccount.objects.get(provider=GOOGLE).user == victim
    other_browser = Client()
    fake_idp.sign_in(other_browser, GOOGLE)
    assert signed_in(other_browser) == victim


def test_line_email_of_an_existing_customer_makes_a_separate_customer_without_it(
    fake_idp, client, victim
):
    fake_idp.set_user(LINE, sub="U-stranger", email=VICTIM)

    fake_idp.sign_in(client, LINE)

    newcomer = signed_in(client)
    assert newcomer is not None
    assert newcomer != victim
    assert newcomer.email is None
    assert SocialAccount.objects.get().user == newcomer
    assert_untouched(victim)


def test_untrusted_oidc_idp_claiming_a_verified_email_is_treated_as_unverified(
    fake_idp, client, victim
):
    fake_idp.set_user(UNTRUSTED_OIDC, sub="partner-77", email=VICTIM, email_verified=True)

    fake_idp.sign_in(client, UNTRUSTED_OIDC)

    newcomer = signed_in(client)
    assert newcomer is not None
    assert newcomer != victim
    assert newcomer.email is None
    assert not EmailAddress.objects.filter(user=newcomer).exists()
    assert_untouched(victim)


def test_trusted_oidc_idp_verified_email_of_an_existing_customer_does_not_sign_into_it(
    fake_idp, client, victim
):
    fake_idp.set_user(TRUSTED_OIDC, sub="emp-0042", email=VICTIM, email_verified=True)

    fake_idp.sign_in(client, TRUSTED_OIDC)

    assert signed_in(client) is None
    assert_untouched(victim)


def test_squatter_of_an_unverified_address_cannot_sign_in_nor_catch_the_owners_google(
    fake_idp, client
):
    client.post(
        reverse("account_signup"),
        {"email": VICTIM, "password1": ATTACKER_PASSWORD, "password2": ATTACKER_PASSWORD},
    )
    squatter = Customer.objects.get(email=VICTIM)
    assert signed_in(client) is None

    client.post(reverse("account_login"), {"login": VICTIM, "password": ATTACKER_PASSWORD})
    assert signed_in(client) is None
    assert not EmailAddress.objects.get(email=VICTIM).verified

    owner = Client()
    fake_idp.set_user(GOOGLE, sub="g-hanako", email=VICTIM, email_verified=True)
    fake_idp.sign_in(owner, GOOGLE)

    assert signed_in(owner) != squatter
    assert not SocialAccount.objects.filter(user=squatter).exists()


def test_email_authentication_is_off():
    assert django_settings.SOCIALACCOUNT_EMAIL_AUTHENTICATION is False
    assert django_settings.SOCIALACCOUNT_EMAIL_AUTHENTICATION_AUTO_CONNECT is False


@pytest.mark.parametrize("switched_on_by", ["setting", "provider app"])
def test_social_login_is_never_authenticated_by_email_even_if_switched_on(
    fake_idp, client, victim, settings, switched_on_by
):
    if switched_on_by == "setting":
        settings.SOCIALACCOUNT_EMAIL_AUTHENTICATION = True
        settings.SOCIALACCOUNT_EMAIL_AUTHENTICATION_AUTO_CONNECT = True
    else:
        providers = copy.deepcopy(settings.SOCIALACCOUNT_PROVIDERS)
        providers["google"]["APPS"][0]["settings"]["email_authentication"] = True
        settings.SOCIALACCOUNT_PROVIDERS = providers
    fake_idp.set_user(GOOGLE, sub="g-stranger", email=VICTIM, email_verified=True)

    fake_idp.sign_in(client, GOOGLE)

    assert signed_in(client) is None
    assert_untouched(victim)
    assert victim.password == Customer.objects.get(pk=victim.pk).password
