"""The fake IdPs refuse what the real ones refuse; otherwise the sign-in tests that
lean on them would prove little."""

import base64
import json
import secrets
import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from cryptography import x509

from tests.fakes.idp import GOOGLE, LINE, SESSION_AGE, FakeIdP, Reauthentication, s256

CALLBACK = "http://site.invalid/callback/"


@pytest.fixture(scope="module")
def idp() -> Iterator[FakeIdP]:
    server = FakeIdP().start()
    server.add_oidc_provider("acme")
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _someone_signed_in(idp: FakeIdP) -> None:
    idp.reset()
    idp.set_user(LINE, sub="U1", name="Taro", email="taro@example.jp")
    idp.set_user(GOOGLE, sub="g1", email="taro@example.jp", email_verified=True)
    idp.set_user("acme", sub="a1", email="taro@example.jp", email_verified=True)


AUTHORIZE = {LINE: "/line/oauth2/v2.1/authorize", GOOGLE: "/google-accounts/o/oauth2/v2/auth"}
TOKEN = {LINE: "/line-api/oauth2/v2.1/token", GOOGLE: "/google-oauth2/token"}


def authorize(idp: FakeIdP, provider: str, **overrides: str) -> tuple[requests.Response, str]:
    """An authorize request as a browser makes it; returns the response and verifier."""
    verifier = secrets.token_urlsafe(48)
    params = {
        "response_type": "code",
        "client_id": idp.clients[provider].client_id,
        "redirect_uri": CALLBACK,
        "scope": "openid profile email",
        "state": "s-1",
        "nonce": "n-1",
        "code_challenge": s256(verifier),
        "code_challenge_method": "S256",
        **overrides,
    }
    url = f"{idp.base_url}{AUTHORIZE.get(provider, f'/oidc/{provider}/authorize')}"
    return requests.get(f"{url}?{urlencode(params)}", allow_redirects=False, timeout=10), verifier


def redirect_params(response: requests.Response) -> dict[str, str]:
    assert response.status_code == 302
    return {k: v[0] for k, v in parse_qs(urlsplit(response.headers["Location"]).query).items()}


def exchange(idp: FakeIdP, provider: str, code: str, verifier: str, **overrides: str):
    client = idp.clients[provider]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": CALLBACK,
        "client_id": client.client_id,
        "client_secret": client.secret,
        "code_verifier": verifier,
        **overrides,
    }
    url = f"{idp.base_url}{TOKEN.get(provider, f'/oidc/{provider}/token')}"
    return requests.post(url, data=form, timeout=10)


@pytest.mark.parametrize("provider", [LINE, GOOGLE, "acme"])
def test_code_is_exchanged_once_with_the_right_verifier(idp, provider):
    response, verifier = authorize(idp, provider)
    code = redirect_params(response)["code"]

    assert exchange(idp, provider, code, secrets.token_urlsafe(48)).status_code == 400
    response, verifier = authorize(idp, provider)
    code = redirect_params(response)["code"]
    first = exchange(idp, provider, code, verifier)
    again = exchange(idp, provider, code, verifier)

    assert first.status_code == 200
    assert {"access_token", "id_token", "expires_in", "token_type"} <= first.json().keys()
    assert again.json()["error"] == "invalid_grant"


def test_wrong_client_secret_is_refused(idp):
    response, verifier = authorize(idp, GOOGLE)
    code = redirect_params(response)["code"]

    refused = exchange(idp, GOOGLE, code, verifier, client_secret="guess")

    assert (refused.status_code, refused.json()["error"]) == (401, "invalid_client")


def test_line_authorize_without_nonce_or_pkce_is_sent_back_with_an_error(idp):
    without_nonce, _ = authorize(idp, LINE, nonce="")
    plain_pkce, _ = authorize(idp, LINE, code_challenge_method="plain")

    assert redirect_params(without_nonce)["error"] == "invalid_request"
    assert redirect_params(plain_pkce)["error"] == "invalid_request"
    assert redirect_params(plain_pkce)["state"] == "s-1"


def test_authorize_with_nobody_signed_in_is_denied(idp):
    idp.reset()

    response, _ = authorize(idp, GOOGLE)

    assert redirect_params(response)["error"] == "access_denied"


def test_line_verify_and_profile_endpoints(idp):
    response, verifier = authorize(idp, LINE)
    tokens = exchange(idp, LINE, redirect_params(response)["code"], verifier).json()
    verify = f"{idp.base_url}/line-api/oauth2/v2.1/verify"
    channel_id = idp.clients[LINE].client_id

    claims = requests.post(
        verify, data={"id_token": tokens["id_token"], "client_id": channel_id}, timeout=10
    ).json()
    wrong_nonce = requests.post(
        verify,
        data={"id_token": tokens["id_token"], "client_id": channel_id, "nonce": "other"},
        timeout=10,
    )
    profile = requests.get(
        f"{idp.base_url}/line-api/v2/profile",
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
        timeout=10,
    ).json()

    assert (claims["sub"], claims["aud"], claims["nonce"]) == ("U1", channel_id, "n-1")
    assert claims["email"] == "taro@example.jp"
    assert "email_verified" not in claims
    assert wrong_nonce.json()["error_description"] == "Invalid IdToken Nonce."
    assert (profile["userId"], profile["displayName"]) == ("U1", "Taro")


def test_google_publishes_pem_certificates_and_oidc_a_discovery_document(idp):
    certs = requests.get(f"{idp.base_url}/google-apis/oauth2/v1/certs", timeout=10).json()
    config = requests.get(
        f"{idp.base_url}/oidc/acme/.well-known/openid-configuration", timeout=10
    ).json()
    jwks = requests.get(config["jwks_uri"], timeout=10).json()

    for pem in certs.values():
        assert x509.load_pem_x509_certificate(pem.encode()).public_key()
    assert config["issuer"] == f"{idp.base_url}/oidc/acme"
    assert config["code_challenge_methods_supported"] == ["S256"]
    assert [key["kid"] for key in jwks["keys"]] == list(certs)
    unknown = requests.get(
        f"{idp.base_url}/oidc/nobody/.well-known/openid-configuration", timeout=10
    )
    assert unknown.status_code == 404


def id_token_claims(idp: FakeIdP, provider: str, **overrides: str) -> dict:
    """The claims of the ID token that an authorize request with overrides earns."""
    response, verifier = authorize(idp, provider, **overrides)
    tokens = exchange(idp, provider, redirect_params(response)["code"], verifier).json()
    payload = tokens["id_token"].split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


@pytest.mark.parametrize("provider", [LINE, GOOGLE, "acme"])
def test_the_nonce_comes_back_in_the_id_token(idp, provider):
    assert id_token_claims(idp, provider, nonce="n-42")["nonce"] == "n-42"


@pytest.mark.parametrize(("provider", "prompt"), [(LINE, "login"), ("acme", "login"), (GOOGLE, "")])
def test_max_age_0_signs_the_user_in_again_and_issues_auth_time(idp, provider, prompt):
    before = int(time.time())

    plain = id_token_claims(idp, provider)
    again = id_token_claims(idp, provider, prompt=prompt, max_age="0")
    prompted = id_token_claims(idp, "acme", prompt="login")

    assert "auth_time" not in plain
    assert again["auth_time"] >= before
    assert prompted["auth_time"] >= before


def test_a_max_age_longer_than_the_session_keeps_the_old_sign_in(idp):
    claims = id_token_claims(idp, LINE, max_age=str(2 * SESSION_AGE))

    assert claims["auth_time"] <= time.time() - SESSION_AGE


def test_an_idp_can_ignore_reauthentication(idp):
    idp.answer_reauthentication(LINE, Reauthentication.NO_AUTH_TIME)
    idp.answer_reauthentication(GOOGLE, Reauthentication.STALE)

    line = id_token_claims(idp, LINE, prompt="login", max_age="0")
    google = id_token_claims(idp, GOOGLE, max_age="0")

    assert "auth_time" not in line
    assert google["auth_time"] <= time.time() - SESSION_AGE


def test_google_refuses_prompt_login_as_google_does(idp):
    response, _ = authorize(idp, GOOGLE, prompt="login", max_age="0")

    assert redirect_params(response)["error"] == "invalid_request"
