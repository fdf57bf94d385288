"""The OpenID provider's rules beyond allauth's, through Django's test client: what
discovery advertises and what is refused with the standard errors (other response
types and modes, request objects, the device flow, a malformed or mismatched
`claims` request, an unmet essential acr, prompt=none with a stale sign-in),
auth_time, acr and amr in the ID token, client authentication (form-urldecoded
Basic credentials, limits per client and per address counted before the secret is
checked, one password hash per attempt known client or not), introspection."""

import json
from datetime import timedelta
from urllib.parse import parse_qs, quote_plus, urlsplit

import jwt
import pytest
from allauth.idp.oidc.adapter import get_adapter
from allauth.idp.oidc.models import Token
from django.test import Client
from django.utils import timezone

from accounts import limits, oidc_views
from accounts.models import ProviderGrant, SpentRefreshToken
from accounts.oidc_provider import prune_provider_grants
from tests.fixtures.mfa import pass_second_factor, sign_in_with_password
from tests.hash_counting import Hashes
from tests.oidc_support import (
    CALLBACK,
    TOKEN,
    answer_at_callback,
    authorization_code,
    authorize,
    basic,
)

pytest_plugins = ["tests.fixtures.api"]

INTROSPECT = "/identity/o/api/introspect"
OLD_STYLE_SECRET = "a%2B$#&@^+=b c"


@pytest.fixture
def store_app(make_client):
    return make_client(
        "store app",
        scopes=["openid", "profile", "email"],
        grant_types=["authorization_code", "refresh_token"],
        redirect_uris=[CALLBACK],
    )


@pytest.fixture
def signed_in(client: Client, make_customer) -> Client:
    sign_in_with_password(client, make_customer("hanako@example.jp"))
    return client


def _id_token(app, code: str) -> dict:
    response = Client().post(
        TOKEN,
        {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK},
        HTTP_AUTHORIZATION=basic(app.client_id, app.secret),
    )
    assert response.status_code == 200, response.content
    return jwt.decode(response.json()["id_token"], options={"verify_signature": False})


# --- discovery ------------------------------------------------------------------


def test_discovery_advertises_only_what_works(client: Client):
    config = client.get("/.well-known/openid-configuration").json()
    assert config["response_types_supported"] == ["code"]
    assert config["response_modes_supported"] == ["query"]
    assert config["grant_types_supported"] == [
        "authorization_code",
        "refresh_token",
        "client_credentials",
    ]
    assert "device_authorization_endpoint" not in config
    assert config["request_parameter_supported"] is False
    assert config["request_uri_parameter_supported"] is False
    assert config["claims_parameter_supported"] is True
    assert {"sub", "auth_time", "acr", "amr", "email", "name"} <= set(config["claims_supported"])
    assert config["acr_values_supported"] == ["1", "2"]
    assert config["backchannel_logout_supported"] is True
    assert config["backchannel_logout_session_supported"] is True
    assert config["introspection_endpoint"].endswith(INTROSPECT)
    assert client.post("/identity/o/api/device/code", {"client_id": "x"}).status_code == 404
    assert client.get("/identity/o/device").status_code == 404


# --- what the authorization endpoint refuses -------------------------------------


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"response_type": "code id_token"}, "unsupported_response_type"),
        ({"response_mode": "fragment"}, "invalid_request"),
        ({"response_mode": "form_post"}, "invalid_request"),
        ({"request": "eyJhbGciOiJub25lIn0.eyJzY29wZSI6Im9wZW5pZCJ9."}, "request_not_supported"),
        ({"request_uri": "https://store.example.jp/r/1"}, "request_uri_not_supported"),
    ],
)
def test_unsupported_requests_are_refused_at_the_callback(client, store_app, params, error):
    answer = answer_at_callback(authorize(client, store_app, **params))
    assert (answer["error"], answer["state"]) == (error, "st-1")


def test_a_refusal_goes_only_to_a_registered_redirect_uri(client, store_app):
    response = authorize(
        client, store_app, request="e30.e30.", redirect_uri="https://evil.example/cb"
    )
    assert response.status_code == 400
    assert "Request objects are not supported." in response.content.decode()


@pytest.mark.parametrize("claims", ["[1]", '"x"', "{", '{"id_token": 5}', '{"userinfo": []}'])
def test_a_malformed_claims_request_is_invalid_request(signed_in, store_app, claims):
    answer = answer_at_callback(authorize(signed_in, store_app, claims=claims))
    assert answer["error"] == "invalid_request"


def test_a_claims_request_for_someone_else_is_login_required(signed_in, store_app):
    claims = json.dumps({"id_token": {"sub": {"value": "999999999999"}}})
    answer = answer_at_callback(authorize(signed_in, store_app, claims=claims))
    assert answer["error"] == "login_required"


def test_an_essential_second_factor_for_a_customer_without_one_is_unmet(signed_in, store_app):
    claims = json.dumps({"id_token": {"acr": {"essential": True, "values": ["2"]}}})
    answer = answer_at_callback(authorize(signed_in, store_app, claims=claims))
    assert answer["error"] == "unmet_authentication_requirements"


def test_prompt_none_with_a_sign_in_older_than_max_age_is_login_required(signed_in, store_app):
    answer = answer_at_callback(authorize(signed_in, store_app, prompt="none", max_age="0"))
    assert answer["error"] == "login_required"
    assert answer_at_callback(authorize(signed_in, store_app, max_age="-1"))["error"] == (
        "invalid_request"
    )


def test_max_age_sends_a_signed_in_customer_to_re_authenticate_once(signed_in, store_app):
    response = authorize(signed_in, store_app, max_age="0")
    assert response.status_code == 302
    assert urlsplit(response["Location"]).path == "/accounts/reauthenticate/"
    back = parse_qs(urlsplit(response["Location"]).query)["next"][0]
    signed_in.post("/accounts/reauthenticate/", {"password": "kiwi-Orange-7741", "next": back})
    # Back at the authorization endpoint, the re-authentication counts: consent is next.
    assert signed_in.get(back).status_code == 200
    # A later request with max_age=0 asks again.
    assert authorize(signed_in, store_app, max_age="0").status_code == 302


# --- the ID token ----------------------------------------------------------------


def test_the_id_token_says_when_and_how_the_customer_signed_in(signed_in, store_app):
    claims = json.dumps({"id_token": {"email": {"essential": True}}, "userinfo": None})
    token = _id_token(store_app, authorization_code(signed_in, store_app, claims=claims))
    grant = ProviderGrant.objects.get()
    assert token["auth_time"] == int(grant.auth_time.timestamp())
    assert (token["acr"], token["amr"], token["email"]) == ("1", ["pwd"], "hanako@example.jp")
    assert grant.claims == {"id_token": {"email": {"essential": True}}, "userinfo": None}


def test_a_second_factor_gives_acr_2_and_amr_otp_and_mfa(
    client: Client, make_customer, enroll_totp, store_app
):
    customer = make_customer("taro@example.jp")
    device = enroll_totp(customer)
    sign_in_with_password(client, customer)
    pass_second_factor(client, device)
    claims = json.dumps({"id_token": {"acr": {"essential": True, "values": ["2"]}}})
    token = _id_token(store_app, authorization_code(client, store_app, claims=claims))
    assert (token["acr"], token["amr"]) == ("2", ["pwd", "otp", "mfa"])


# --- client authentication at the token endpoint ----------------------------------


@pytest.fixture
def old_style_app(make_client):
    registered = make_client("old app", grant_types=["client_credentials"], scopes=["resolve"])
    registered.client.set_secret(OLD_STYLE_SECRET)
    registered.client.save()
    registered.secret = OLD_STYLE_SECRET
    return registered


def _client_credentials(header: str, ip: str = "203.0.113.5"):
    return Client(REMOTE_ADDR=ip).post(
        TOKEN, {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=header
    )


def test_basic_credentials_are_form_urldecoded(old_style_app):
    assert _client_credentials(basic(old_style_app.client_id, OLD_STYLE_SECRET)).status_code == 200
    # Sent without the encoding RFC 6749 §2.3.1 asks for, "+" is a space: wrong secret.
    raw = basic(old_style_app.client_id, OLD_STYLE_SECRET, encode=False)
    assert _client_credentials(raw).status_code == 401


def test_new_client_secrets_survive_form_urlencoding():
    secret = get_adapter().generate_client_secret()
    assert quote_plus(secret) == secret and len(secret) >= 48


@pytest.fixture
def hashes(settings) -> Hashes:
    return Hashes(settings)


def test_a_known_client_is_refused_after_its_limit_before_its_secret_is_checked(
    old_style_app, hashes
):
    hashes.since()
    wrong = basic(old_style_app.client_id, "wrong-secret")
    for number in range(limits.rule(oidc_views.PER_CLIENT).amount):
        # Each from its own address: the per-client limit is what holds.
        assert _client_credentials(wrong, ip=f"203.0.113.{number}").status_code == 401
    assert hashes.since() == limits.rule(oidc_views.PER_CLIENT).amount
    right = basic(old_style_app.client_id, OLD_STYLE_SECRET)
    refused = _client_credentials(right, ip="198.51.100.1")
    assert refused.status_code == 429 and refused.json()["error"] == "temporarily_unavailable"
    assert hashes.since() == 0


def test_unknown_clients_cost_one_hash_each_and_count_per_address(old_style_app, hashes):
    hashes.since()
    for number in range(limits.rule(oidc_views.PER_ADDRESS).amount):
        unknown = basic(f"no-such-client-{number}", "some-secret")
        assert _client_credentials(unknown).status_code == 401
    assert hashes.since() == limits.rule(oidc_views.PER_ADDRESS).amount
    known_wrong = basic(old_style_app.client_id, "wrong")
    assert _client_credentials(known_wrong, ip="192.0.2.1").status_code == 401
    assert hashes.since() == 1  # a known client with a wrong secret: the same one hash
    # From the address that used up its limit even the right secret is not checked.
    right = basic(old_style_app.client_id, OLD_STYLE_SECRET)
    assert _client_credentials(right).status_code == 429
    assert hashes.since() == 0


def test_successes_do_not_use_up_the_limit(old_style_app):
    right = basic(old_style_app.client_id, OLD_STYLE_SECRET)
    for _ in range(limits.rule(oidc_views.PER_CLIENT).amount + 5):
        assert _client_credentials(right).status_code == 200


# --- introspection (RFC 7662) -----------------------------------------------------


def test_a_service_introspects_its_own_tokens_with_how_the_customer_signed_in(
    signed_in, store_app, make_client
):
    response = Client().post(
        TOKEN,
        {
            "grant_type": "authorization_code",
            "code": authorization_code(signed_in, store_app),
            "redirect_uri": CALLBACK,
        },
        HTTP_AUTHORIZATION=basic(store_app.client_id, store_app.secret),
    )
    access_token = response.json()["access_token"]
    answer = (
        Client()
        .post(
            INTROSPECT,
            {"token": access_token},
            HTTP_AUTHORIZATION=basic(store_app.client_id, store_app.secret),
        )
        .json()
    )
    grant = ProviderGrant.objects.get()
    assert answer["active"] is True
    assert answer["sub"] == grant.customer.unified_id
    assert (answer["acr"], answer["amr"]) == ("1", ["pwd"])
    assert answer["auth_time"] == int(grant.auth_time.timestamp())
    other = make_client("other app", grant_types=["client_credentials"], scopes=["resolve"])
    foreign = Client().post(
        INTROSPECT,
        {"token": access_token},
        HTTP_AUTHORIZATION=basic(other.client_id, other.secret),
    )
    assert foreign.json() == {"active": False}


# --- housekeeping -------------------------------------------------------------------


def test_grants_and_spent_tokens_no_token_can_use_are_pruned(signed_in, store_app, settings):
    response = Client().post(
        TOKEN,
        {
            "grant_type": "authorization_code",
            "code": authorization_code(signed_in, store_app),
            "redirect_uri": CALLBACK,
        },
        HTTP_AUTHORIZATION=basic(store_app.client_id, store_app.secret),
    )
    refreshed = Client().post(
        TOKEN,
        {"grant_type": "refresh_token", "refresh_token": response.json()["refresh_token"]},
        HTTP_AUTHORIZATION=basic(store_app.client_id, store_app.secret),
    )
    assert refreshed.status_code == 200
    long_ago = timezone.now() - timedelta(days=60)
    ProviderGrant.objects.update(created_at=long_ago)
    SpentRefreshToken.objects.update(spent_at=long_ago)
    settings.IDP_OIDC_REFRESH_TOKEN_EXPIRES_IN = 30 * 24 * 3600

    # The spent token goes; the grant stays while its refreshed tokens live.
    assert prune_provider_grants() == 1
    assert ProviderGrant.objects.count() == 1 and not SpentRefreshToken.objects.exists()

    Token.objects.update(expires_at=long_ago)
    assert prune_provider_grants() == 1
    assert not ProviderGrant.objects.exists()
