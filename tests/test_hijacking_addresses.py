"""An unconfirmed address belongs to nobody: the pre-account hijacks of issue 15
through one ("unexpired email change", Sudhodanan & Paverd 2022; address squatting),
each played over HTTP with allauth's own URLs, real mails and the fake Google."""

import re
from datetime import timedelta

import pytest
from allauth.account.models import EmailAddress
from allauth.socialaccount.models import SocialAccount
from django.conf import settings as django_settings
from django.contrib.auth import get_user
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts import addresses, deletion
from accounts.audit import AuditEvent
from accounts.models import Customer, IssuedUnifiedID
from linking import claims
from tests.conftest import PASSWORD
from tests.fakes.idp import GOOGLE, LINE
from tests.fixtures.mfa import reauthenticate, stepped_up

ATTACKER = "mallory@example.jp"
VICTIM = "hanako@example.jp"
UNKNOWN = "nobody@example.jp"
ATTACKER_PASSWORD = "plum-Falcon-3390"
VICTIM_PASSWORD = "quince-Heron-5521"
CONFIRM = "/accounts/confirm-email/"
RESET_KEY = "/accounts/password/reset/key/"


def signed_in(client: Client) -> Customer | None:
    user = get_user(client)
    return user if user.is_authenticated else None


def path_in(message, prefix: str) -> str:
    match = re.search(re.escape(prefix) + r"\S+?/(?=\s|$)", message.body)
    assert match, message.body
    return match.group(0)


def mails_to(mailoutbox, email: str) -> list:
    return [message for message in mailoutbox if message.to == [email]]


def sign_up(client: Client, email: str, password: str) -> None:
    response = client.post(
        reverse("account_signup"), {"email": email, "password1": password, "password2": password}
    )
    assert response.status_code == 302, response.content
    assert response["Location"] == CONFIRM


def confirm(client: Client, message):
    """Open the confirmation link of a mail and press the button, as a browser does."""
    path = path_in(message, CONFIRM)
    assert client.get(path).status_code == 200
    return client.post(path)


def later() -> None:
    """Three minutes on: allauth sends one confirmation mail per address per three
    minutes (ACCOUNT_RATE_LIMITS "confirm_email"), and counts in the cache."""
    cache.clear()


@pytest.fixture
def attacker(make_customer, mailoutbox) -> Customer:
    """The attacker's own account, signed in, with the victim's address added to it:
    unconfirmed, as the change of address waits for the victim's mailbox."""
    attacker = make_customer(ATTACKER, password=ATTACKER_PASSWORD)
    browser = Client()
    browser.post(reverse("account_login"), {"login": ATTACKER, "password": ATTACKER_PASSWORD})
    reauthenticate(browser, ATTACKER_PASSWORD)
    response = browser.post(reverse("account_email"), {"action_add": "", "email": VICTIM})
    assert response.status_code == 302, response.content
    assert EmailAddress.objects.get(email=VICTIM).user == attacker
    attacker.browser = browser
    return attacker


def unconfirmed_copies(email: str) -> list[int]:
    rows = EmailAddress.objects.filter(email=email, verified=False)
    return sorted(rows.values_list("user", flat=True))


def holders(email: str) -> list[tuple[int, bool]]:
    return sorted(EmailAddress.objects.filter(email=email).values_list("user", "verified"))


# Finding 2: the attacker adds victim@ to their own account, unconfirmed.


def test_the_victims_signup_makes_the_victims_account_and_confirms_into_it(attacker, mailoutbox):
    later()
    mailoutbox.clear()
    victim_browser = Client()

    sign_up(victim_browser, VICTIM, VICTIM_PASSWORD)

    victim = Customer.objects.get(email=VICTIM)
    assert victim != attacker
    [confirmation] = mails_to(mailoutbox, VICTIM)
    assert unconfirmed_copies(VICTIM) == sorted([attacker.pk, victim.pk])

    confirm(victim_browser, confirmation)

    assert signed_in(victim_browser) == victim
    assert holders(VICTIM) == [(victim.pk, True)]
    assert AuditEvent.objects.filter(customer=attacker, action=addresses.RELEASED).exists()
    attacker.refresh_from_db()
    assert attacker.email == ATTACKER


def _answer(email: str) -> tuple[int, str, str]:
    browser = Client()
    response = browser.post(reverse("account_reset_password"), {"email": email})
    page = browser.get(response["Location"]).content.decode()
    page = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", page).replace(email, "EMAIL")
    return response.status_code, response["Location"], page


def test_a_password_reset_for_the_victims_address_never_resets_the_attackers_account(
    attacker, mailoutbox
):
    mailoutbox.clear()

    # The same answer and the same mail as for an address nobody has.
    assert _answer(VICTIM) == _answer(UNKNOWN)
    [to_victim] = mails_to(mailoutbox, VICTIM)
    [to_unknown] = mails_to(mailoutbox, UNKNOWN)
    assert RESET_KEY not in to_victim.body
    assert to_victim.subject == to_unknown.subject
    assert to_victim.body.replace(VICTIM, "EMAIL") == to_unknown.body.replace(UNKNOWN, "EMAIL")
    attacker.refresh_from_db()
    assert attacker.check_password(ATTACKER_PASSWORD)


def test_the_victim_cannot_confirm_the_address_into_the_attackers_account(attacker, mailoutbox):
    # The mail the attacker's change sent: opened outside the attacker's own
    # session, it confirms nothing.
    [change_mail] = mails_to(mailoutbox, VICTIM)
    victim_browser = Client()

    response = confirm(victim_browser, change_mail)

    assert response.status_code == 302
    page = victim_browser.get(response["Location"]).content.decode()
    assert "このリンクは、登録またはログインしたブラウザでのみ使えます" in page
    assert holders(VICTIM) == [(attacker.pk, False)]
    assert signed_in(victim_browser) is None
    attacker.refresh_from_db()
    assert attacker.email == ATTACKER
    # Nor does signing in with the unconfirmed address sign anyone in.
    victim_browser.post(reverse("account_login"), {"login": VICTIM, "password": ATTACKER_PASSWORD})
    assert signed_in(victim_browser) is None


def test_a_new_address_replaces_the_old_one_only_once_confirmed_in_the_owners_session(
    make_customer, client, mailoutbox
):
    customer = make_customer(ATTACKER, password=PASSWORD)
    client.post(reverse("account_login"), {"login": ATTACKER, "password": PASSWORD})
    reauthenticate(client)
    client.post(reverse("account_email"), {"action_add": "", "email": VICTIM})
    customer.refresh_from_db()
    assert customer.email == ATTACKER  # nothing changed yet

    confirm(client, mails_to(mailoutbox, VICTIM)[-1])

    customer.refresh_from_db()
    assert customer.email == VICTIM
    assert list(EmailAddress.objects.filter(user=customer).values_list("email", "verified")) == [
        (VICTIM, True)
    ]


def test_the_attacker_cannot_link_the_victims_legacy_account_by_the_unconfirmed_address(
    attacker, make_account
):
    legacy = make_account("S0007777", email=VICTIM)
    browser = stepped_up(attacker.browser, ATTACKER_PASSWORD)

    assert "****7777" not in browser.get("/link/").content.decode()
    assert browser.post(f"/link/suggested/{legacy.pk}/").status_code == 404

    legacy.refresh_from_db()
    assert legacy.owner is None


def test_the_victim_never_lands_in_the_attackers_unified_id(attacker, mailoutbox, make_account):
    legacy = make_account("S0007777", email=VICTIM)
    victim_browser = Client()
    # Right after the attacker's change mail: allauth sends the victim none of his
    # own, and the one mail he has is the attacker's.
    sign_up(victim_browser, VICTIM, VICTIM_PASSWORD)
    victim = Customer.objects.get(email=VICTIM)
    [change_mail] = mails_to(mailoutbox, VICTIM)
    confirm(victim_browser, change_mail)
    assert holders(VICTIM) == [(attacker.pk, False), (victim.pk, False)]

    later()
    mailoutbox.clear()
    victim_browser.post(reverse("account_login"), {"login": VICTIM, "password": VICTIM_PASSWORD})
    [confirmation] = mails_to(mailoutbox, VICTIM)
    confirm(victim_browser, confirmation)
    # The attacker resets their password through their own address and signs in.
    mailoutbox.clear()
    Client().post(reverse("account_reset_password"), {"email": ATTACKER})
    attacker_browser = Client()
    attacker_browser.post(
        reverse("account_login"), {"login": ATTACKER, "password": ATTACKER_PASSWORD}
    )
    stepped_up(attacker_browser, ATTACKER_PASSWORD)

    assert [message.to for message in mailoutbox] == [[ATTACKER]]
    assert signed_in(victim_browser) == victim
    assert victim.unified_id != attacker.unified_id
    assert holders(VICTIM) == [(victim.pk, True)]
    assert signed_in(attacker_browser) == attacker
    assert attacker_browser.post(f"/link/suggested/{legacy.pk}/").status_code == 404
    legacy.refresh_from_db()
    assert legacy.owner is None


def test_the_address_of_an_account_made_outside_allauth_stays_taken(
    make_customer, client, mailoutbox
):
    # createsuperuser and the admin make accounts with an email and no address record.
    staff = Customer.objects.create_user("ops@example.jp", PASSWORD, is_staff=True)

    sign_up(Client(), "ops@example.jp", VICTIM_PASSWORD)
    later()
    make_customer(ATTACKER, password=PASSWORD)
    client.post(reverse("account_login"), {"login": ATTACKER, "password": PASSWORD})
    reauthenticate(client)
    client.post(reverse("account_email"), {"action_add": "", "email": "ops@example.jp"})
    confirm(client, mails_to(mailoutbox, "ops@example.jp")[-1])

    assert list(Customer.objects.filter(email="ops@example.jp")) == [staff]
    assert not EmailAddress.objects.filter(email="ops@example.jp", verified=True).exists()


# Finding 3: an unconfirmed sign-up squats the real owner's address.


@pytest.fixture
def squatter(db, mailoutbox) -> Customer:
    sign_up(Client(), VICTIM, ATTACKER_PASSWORD)
    return Customer.objects.get(email=VICTIM)


def test_the_owner_arriving_through_google_gets_his_verified_address(squatter, fake_idp, client):
    fake_idp.set_user(GOOGLE, sub="g-hanako", email=VICTIM, email_verified=True)

    fake_idp.sign_in(client, GOOGLE)

    owner = signed_in(client)
    assert owner is not None and owner != squatter
    assert owner.email == VICTIM
    assert holders(VICTIM) == [(owner.pk, True)]
    squatter.refresh_from_db()
    assert squatter.email is None
    assert AuditEvent.objects.filter(customer=squatter, action=addresses.RELEASED).exists()


def test_the_owner_signing_up_by_email_gets_an_account_and_the_address(
    squatter, client, mailoutbox
):
    [squatters_mail] = mails_to(mailoutbox, VICTIM)
    sign_up(client, VICTIM, VICTIM_PASSWORD)
    owner = Customer.objects.get(email=VICTIM)
    assert owner != squatter
    # Within allauth's mail limit the owner's one mail is the squatter's: opened in
    # the owner's browser, it confirms nothing.
    confirm(client, squatters_mail)
    assert unconfirmed_copies(VICTIM) == sorted([squatter.pk, owner.pk])

    later()
    mailoutbox.clear()
    client.post(reverse("account_login"), {"login": VICTIM, "password": VICTIM_PASSWORD})
    [confirmation] = mails_to(mailoutbox, VICTIM)
    confirm(client, confirmation)

    assert signed_in(client) == owner
    assert holders(VICTIM) == [(owner.pk, True)]


def _age(*customers: Customer, days: int) -> None:
    then = timezone.now() - timedelta(days=days)
    Customer.objects.filter(pk__in=[c.pk for c in customers]).update(date_joined=then)


def test_unconfirmed_signups_expire_but_confirmed_social_and_staff_accounts_stay(
    squatter, make_customer, make_account, fake_idp, settings
):
    settings.UNCONFIRMED_SIGNUP_EXPIRY_DAYS = 7
    sign_up(Client(), "fresh@example.jp", PASSWORD)
    fresh = Customer.objects.get(email="fresh@example.jp")
    confirmed = make_customer("confirmed@example.jp")
    outside = Customer.objects.create_user("made-in-admin@example.jp", PASSWORD)
    # Unconfirmed too, but each with something an expired sign-up never has.
    staff = make_customer("new-staff@example.jp", verified=False, is_staff=True)
    used = make_customer("used@example.jp", verified=False, last_login=timezone.now())
    with_idp = make_customer("with-idp@example.jp", verified=False)
    SocialAccount.objects.create(user=with_idp, provider=GOOGLE, uid="g-by-staff")
    owner = make_customer("owner@example.jp", verified=False)
    claims.link(account=make_account(), customer=owner, proof="staff", request=None)
    fake_idp.set_user(LINE, sub="U-no-email")
    fake_idp.sign_in(Client(), LINE)
    by_line = SocialAccount.objects.get(uid="U-no-email").user
    released = squatter  # yields its address to the owner through Google, then ages
    fake_idp.set_user(GOOGLE, sub="g-hanako", email=VICTIM, email_verified=True)
    fake_idp.sign_in(Client(), GOOGLE)
    sign_up(Client(), "stale@example.jp", PASSWORD)
    stale = Customer.objects.get(email="stale@example.jp")
    _age(fresh, days=6)
    _age(stale, released, confirmed, outside, staff, used, with_idp, owner, by_line, days=8)

    assert deletion.expire_unconfirmed_signups() == 2

    assert not Customer.objects.filter(pk__in=[stale.pk, released.pk]).exists()
    kept = set(Customer.objects.values_list("pk", flat=True))
    stayed = [fresh, confirmed, outside, staff, used, with_idp, owner, by_line]
    assert {customer.pk for customer in stayed} <= kept
    assert IssuedUnifiedID.objects.get(pk=stale.unified_id).retired_at is not None
    deleted = AuditEvent.objects.filter(
        action="customer_deleted", customer_unified_id=stale.unified_id
    )
    assert deleted.get().reason == deletion.EXPIRED_REASON
    beat = [entry["task"] for entry in django_settings.CELERY_BEAT_SCHEDULE.values()]
    assert "accounts.expire_unconfirmed_signups" in beat


def test_an_expiry_of_zero_keeps_every_signup(squatter, settings):
    settings.UNCONFIRMED_SIGNUP_EXPIRY_DAYS = 0
    _age(squatter, days=4000)

    assert deletion.expire_unconfirmed_signups() == 0
    assert Customer.objects.filter(pk=squatter.pk).exists()
