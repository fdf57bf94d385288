"""allauth's rate limits, at the amounts set in settings.ACCOUNT_RATE_LIMITS.

The counters live in the cache, which tests/conftest.py empties around every test.
"""

from allauth.account.adapter import get_adapter
from django.conf import settings
from django.core.cache import cache
from django.urls import reverse

from accounts.models import Customer
from tests.conftest import PASSWORD


def _limit(action: str, per: str) -> int:
    """How many attempts ACCOUNT_RATE_LIMITS allows for action, counted per ip/key/user."""
    for rate in settings.ACCOUNT_RATE_LIMITS[action].split(","):
        amount, _duration, *scope = rate.strip().split("/")
        if (scope[0] if scope else "ip") == per:
            return int(amount)
    raise AssertionError(f"no per-{per} limit for {action}")


def _refused(response) -> bool:
    return response.status_code == 429


def test_failed_sign_ins_lock_the_email_even_for_the_right_password(client, customer):
    for _ in range(_limit("login_failed", "key")):
        response = client.post(
            reverse("account_login"), {"login": customer.email, "password": "guess-Wrong-1"}
        )
        assert response.status_code == 200

    response = client.post(
        reverse("account_login"), {"login": customer.email, "password": PASSWORD}
    )

    assert response.status_code == 200
    too_many = str(get_adapter().error_messages["too_many_login_attempts"])
    assert response.context["form"].non_field_errors() == [too_many]
    assert client.get(reverse("me")).status_code == 302


def test_sign_in_attempts_per_ip_are_limited(client, customer):
    for attempt in range(_limit("login", "ip")):
        response = client.post(
            reverse("account_login"), {"login": f"who{attempt}@example.jp", "password": "x"}
        )
        assert not _refused(response)

    response = client.post(
        reverse("account_login"), {"login": customer.email, "password": PASSWORD}
    )

    assert _refused(response)
    assert client.get(reverse("me")).status_code == 302


def test_signups_per_ip_are_limited(client, db):
    for _ in range(_limit("signup", "ip")):
        assert not _refused(client.post(reverse("account_signup"), {}))

    response = client.post(
        reverse("account_signup"),
        {"email": "late@example.jp", "password1": PASSWORD, "password2": PASSWORD},
    )

    assert _refused(response)
    assert not Customer.objects.filter(email="late@example.jp").exists()


def test_password_reset_mails_per_address_are_limited(client, customer, mailoutbox):
    allowed = _limit("reset_password", "key")
    for _ in range(allowed):
        response = client.post(reverse("account_reset_password"), {"email": customer.email})
        assert response.status_code == 302

    response = client.post(reverse("account_reset_password"), {"email": customer.email})

    assert _refused(response)
    assert len(mailoutbox) == allowed


def test_confirmation_mails_per_address_are_limited(client, db, mailoutbox):
    email = "new@example.jp"
    allowed = _limit("confirm_email", "key")
    client.post(
        reverse("account_signup"), {"email": email, "password1": PASSWORD, "password2": PASSWORD}
    )
    # Each sign-in to the unverified account asks for another confirmation mail.
    for _ in range(allowed + 2):
        response = client.post(reverse("account_login"), {"login": email, "password": PASSWORD})
        assert response["Location"] == reverse("account_email_verification_sent")

    assert len(mailoutbox) == allowed
    assert all(message.to == [email] for message in mailoutbox)

    cache.clear()
    client.post(reverse("account_login"), {"login": email, "password": PASSWORD})
    assert len(mailoutbox) == allowed + 1, "the limit, not something else, held the mails back"
