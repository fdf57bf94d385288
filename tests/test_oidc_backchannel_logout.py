"""Back-channel logout (OpenID Connect Back-Channel Logout 1.0): when a customer's
session ends, the services it signed into get a signed logout token at their
registered URI (a real local HTTP server here), and the tokens of those sign-ins
stop working; only through the public-address guard."""

import jwt
import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from accounts import deletion
from accounts.models import BackchannelLogout, ProviderGrant
from accounts.oidc_logout import EVENT
from tests.fixtures.mfa import sign_in_with_password
from tests.oidc_support import CALLBACK, refresh, tokens_for

pytest_plugins = ["tests.fixtures.api", "tests.fixtures.oidc"]


@pytest.fixture
def store_app(make_client, transactional_db):
    return make_client(
        "store app",
        scopes=["openid", "email"],
        grant_types=["authorization_code", "refresh_token"],
        redirect_uris=[CALLBACK],
    )


@pytest.fixture
def registered(store_app, logout_receiver, logout_worker):
    BackchannelLogout.objects.create(client=store_app.client, uri=logout_receiver.url)
    return store_app


@pytest.fixture
def hanako(make_customer):
    return make_customer("hanako@example.jp")


def _signed_in(customer) -> Client:
    device = Client()
    sign_in_with_password(device, customer)
    return device


def _verified(logout_token: str, client_id: str) -> dict:
    keys = Client().get("/.well-known/jwks.json").json()["keys"]
    kid = jwt.get_unverified_header(logout_token)["kid"]
    key = jwt.PyJWK(next(key for key in keys if key["kid"] == kid))
    return jwt.decode(
        logout_token, key, algorithms=["RS256"], audience=client_id, options={"require": ["exp"]}
    )


def test_signing_out_tells_the_service_and_ends_its_tokens(registered, hanako, logout_receiver):
    phone = _signed_in(hanako)
    tokens = tokens_for(phone, registered)
    sid = jwt.decode(tokens["id_token"], options={"verify_signature": False})["sid"]

    phone.post("/accounts/logout/")

    [token] = logout_receiver.tokens()
    claims = _verified(token, registered.client_id)
    assert (claims["sub"], claims["sid"], claims["events"]) == (hanako.unified_id, sid, {EVENT: {}})
    assert "nonce" not in claims and claims["exp"] - claims["iat"] <= 120
    assert jwt.get_unverified_header(token)["typ"] == "logout+jwt"
    assert refresh(registered, tokens["refresh_token"]).json()["error"] == "invalid_grant"
    assert not ProviderGrant.objects.exists()


def test_ending_another_session_from_the_session_list_ends_only_its_sign_ins(
    registered, hanako, logout_receiver
):
    laptop, phone = _signed_in(hanako), _signed_in(hanako)
    on_laptop, on_phone = tokens_for(laptop, registered), tokens_for(phone, registered)
    phone_sid = jwt.decode(on_phone["id_token"], options={"verify_signature": False})["sid"]

    laptop.post("/accounts/sessions/")  # "sign out the other sessions"

    [token] = logout_receiver.tokens()
    assert _verified(token, registered.client_id)["sid"] == phone_sid
    assert refresh(registered, on_phone["refresh_token"]).status_code == 400
    assert refresh(registered, on_laptop["refresh_token"]).status_code == 200


def test_deleting_the_unified_id_tells_every_service_signed_into(
    registered, hanako, logout_receiver
):
    tokens_for(_signed_in(hanako), registered)
    tokens_for(_signed_in(hanako), registered)

    deletion.delete_customer(customer=hanako)

    subs = {_verified(token, registered.client_id)["sub"] for token in logout_receiver.tokens()}
    assert len(logout_receiver.tokens()) == 2 and subs == {hanako.unified_id}


def test_a_service_without_a_logout_uri_hears_nothing_but_its_tokens_end(
    store_app, hanako, logout_receiver, logout_worker
):
    phone = _signed_in(hanako)
    tokens = tokens_for(phone, store_app)
    phone.post("/accounts/logout/")
    assert logout_receiver.connections == 0
    assert refresh(store_app, tokens["refresh_token"]).status_code == 400


def test_a_logout_uri_must_be_a_public_address(store_app, hanako, logout_receiver, settings):
    for uri in ("http://10.1.2.3/logout", "http://127.0.0.1:6379/", "http://[::1]/x"):
        with pytest.raises(ValidationError):
            BackchannelLogout(client=store_app.client, uri=uri).full_clean()


def test_a_loopback_receiver_not_allowed_is_never_connected_to(
    registered, hanako, logout_receiver, settings
):
    """Registered while allowed, then the allow-list changes: checked again at send."""
    settings.OUTBOUND_ALLOWED_HOSTS = []
    phone = _signed_in(hanako)
    tokens_for(phone, registered)
    phone.post("/accounts/logout/")
    assert logout_receiver.connections == 0
