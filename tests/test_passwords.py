from django.contrib.auth.hashers import Argon2PasswordHasher, make_password
from django.urls import reverse

from accounts.models import Customer
from tests.conftest import PASSWORD

# Argon2id, version 19, 19 MiB, 2 passes, 1 lane: OWASP's first recommended setting.
OUR_ARGON2ID = "argon2$argon2id$v=19$m=19456,t=2,p=1$"


def _sign_in(client, email: str, password: str = PASSWORD):
    return client.post(reverse("account_login"), {"login": email, "password": password})


def test_a_new_password_is_stored_as_argon2id(db):
    customer = Customer.objects.create_user("new@example.jp", PASSWORD)

    customer.refresh_from_db()
    assert customer.password.startswith(OUR_ARGON2ID)
    assert customer.check_password(PASSWORD)


def test_signing_up_stores_the_password_as_argon2id(client, db):
    response = client.post(
        reverse("account_signup"),
        {"email": "signup@example.jp", "password1": PASSWORD, "password2": PASSWORD},
    )

    assert response.status_code == 302
    customer = Customer.objects.get(email="signup@example.jp")
    assert customer.password.startswith(OUR_ARGON2ID)


def test_it_upgrades_a_pbkdf2_hash_on_sign_in(client, customer):
    customer.password = make_password(PASSWORD, hasher="pbkdf2_sha256")
    customer.save(update_fields=["password"])

    response = _sign_in(client, customer.email)

    assert response.status_code == 302
    assert response["Location"] == reverse("me")
    customer.refresh_from_db()
    assert customer.password.startswith(OUR_ARGON2ID)
    assert customer.check_password(PASSWORD)


def test_it_upgrades_argon2_at_django_default_parameters_on_sign_in(client, customer):
    customer.password = make_password(PASSWORD, hasher=Argon2PasswordHasher())
    customer.save(update_fields=["password"])
    assert not customer.password.startswith(OUR_ARGON2ID)

    response = _sign_in(client, customer.email)

    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.password.startswith(OUR_ARGON2ID)


def test_a_failed_sign_in_leaves_an_old_hash_alone(client, customer):
    old_hash = make_password(PASSWORD, hasher="pbkdf2_sha256")
    customer.password = old_hash
    customer.save(update_fields=["password"])

    response = _sign_in(client, customer.email, "wrong-password-123")

    assert response.status_code == 200
    customer.refresh_from_db()
    assert customer.password == old_hash
