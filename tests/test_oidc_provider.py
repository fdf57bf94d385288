"""Sign-in with the unified ID: a relying party built on authlib (not our code)
signs a customer in against the site's OpenID Connect provider on a live server,
through the site's own sign-in page and the consent screen, with PKCE; it checks
the ID token with authlib's OIDC validation and gets sub = the unified ID, then
uses userinfo, a refresh token and RP-initiated logout."""

import re
import warnings
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests
from allauth.idp.oidc.models import Client
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.oidc.core import CodeIDToken

from tests.conftest import PASSWORD

pytest_plugins = ["tests.fixtures.api"]

RP_CALLBACK = "https://store.example.jp/auth/callback"
RP_SIGNED_OUT = "https://store.example.jp/signed-out"
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)")


@pytest.fixture
def provider(live_server, transactional_db, settings) -> dict:
    """The provider's discovery document, as a relying party first fetches it."""
    settings.SITE_URL = live_server.url
    response = requests.get(f"{live_server.url}/.well-known/openid-configuration", timeout=10)
    assert response.status_code == 200
    return response.json()


@pytest.fixture
def store_app(make_client):
    registered = make_client(
        "store app",
        scopes=["openid", "profile", "email"],
        grant_types=["authorization_code", "refresh_token"],
        redirect_uris=[RP_CALLBACK],
    )
    registered.client.set_post_logout_redirect_uris([RP_SIGNED_OUT])
    registered.client.save()
    return registered


def _field(html: str, name: str) -> str:
    match = re.search(rf'name="{name}"[^>]*value="([^"]*)"', html) or re.search(
        rf'value="([^"]*)"[^>]*name="{name}"', html
    )
    assert match, f"no {name} field in the page"
    return match.group(1).replace("&amp;", "&").replace("&quot;", '"')


def _follow(browser: requests.Session, response: requests.Response) -> requests.Response:
    """Follow redirects inside the site; stop at one that leaves it."""
    while response.status_code in (301, 302, 303):
        target = urljoin(response.url, response.headers["Location"])
        if not target.startswith(
            response.url.split("/", 3)[0] + "//" + urlsplit(response.url).netloc
        ):
            return response
        response = browser.get(target, allow_redirects=False, timeout=10)
    return response


def _sign_in_and_consent(browser, authorize_url: str, email: str, *, action="grant") -> str:
    """What a customer does in the browser; returns where the site sends them back to."""
    response = browser.get(authorize_url, allow_redirects=False, timeout=10)
    # Not signed in: the provider hands over to the site's normal sign-in page.
    assert response.status_code == 302
    login_url = urljoin(response.url, response.headers["Location"])
    assert urlsplit(login_url).path == "/accounts/login/"
    page = browser.get(login_url, timeout=10)
    response = browser.post(
        page.url,
        {
            "csrfmiddlewaretoken": _field(page.text, "csrfmiddlewaretoken"),
            "login": email,
            "password": PASSWORD,
            "next": parse_qs(urlsplit(login_url).query)["next"][0],
        },
        headers={"Referer": page.url},
        allow_redirects=False,
        timeout=10,
    )
    consent = _follow(browser, response)
    assert consent.status_code == 200, consent.text[:500]
    assert "store app" in consent.text
    # No inline code (the CSP allows only the site's own script files).
    assert not INLINE_SCRIPT.search(consent.text) and 'style="' not in consent.text
    response = browser.post(
        consent.url.split("?")[0],
        {
            "csrfmiddlewaretoken": _field(consent.text, "csrfmiddlewaretoken"),
            "request": _field(consent.text, "request"),
            "scopes": ["openid", "profile", "email"],
            "action": action,
        },
        headers={"Referer": consent.url},
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 302, response.text[:500]
    return response.headers["Location"]


def _validated_id_token(provider: dict, token: dict, client_id: str, nonce: str) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # authlib.jose -> joserfc
        from authlib.jose import JsonWebKey, jwt

        keys = JsonWebKey.import_key_set(requests.get(provider["jwks_uri"], timeout=10).json())
        claims = jwt.decode(
            token["id_token"],
            keys,
            claims_cls=CodeIDToken,
            claims_options={"iss": {"essential": True, "value": provider["issuer"]}},
            claims_params={
                "nonce": nonce,
                "client_id": client_id,
                "access_token": token["access_token"],
            },
        )
        claims.validate(leeway=5)
    return dict(claims)


def test_a_relying_party_signs_a_customer_in_and_gets_the_unified_id_as_sub(
    provider, store_app, make_customer
):
    hanako = make_customer("hanako@example.jp", name="山田花子")
    rp = OAuth2Session(
        store_app.client_id,
        store_app.secret,
        scope="openid profile email",
        redirect_uri=RP_CALLBACK,
        code_challenge_method="S256",
    )
    code_verifier, nonce = generate_token(48), generate_token(20)
    authorize_url, state = rp.create_authorization_url(
        provider["authorization_endpoint"], code_verifier=code_verifier, nonce=nonce
    )
    assert "code_challenge=" in authorize_url

    browser = requests.Session()
    callback = _sign_in_and_consent(browser, authorize_url, hanako.email)

    assert callback.startswith(RP_CALLBACK)
    assert parse_qs(urlsplit(callback).query)["state"] == [state]
    token = rp.fetch_token(
        provider["token_endpoint"], authorization_response=callback, code_verifier=code_verifier
    )
    claims = _validated_id_token(provider, token, store_app.client_id, nonce)
    assert claims["sub"] == hanako.unified_id
    assert claims["iss"] == provider["issuer"]

    userinfo = rp.get(provider["userinfo_endpoint"]).json()
    assert userinfo["sub"] == hanako.unified_id
    assert (userinfo["email"], userinfo["name"]) == ("hanako@example.jp", "山田花子")

    refreshed = rp.refresh_token(provider["token_endpoint"])
    assert refreshed["access_token"] != token["access_token"]
    assert rp.get(provider["userinfo_endpoint"]).json()["sub"] == hanako.unified_id

    # RP-initiated logout: the site asks, the customer confirms, and is signed out.
    page = browser.get(
        provider["end_session_endpoint"],
        params={
            "id_token_hint": token["id_token"],
            "post_logout_redirect_uri": RP_SIGNED_OUT,
            "client_id": store_app.client_id,
            "state": "bye",
        },
        timeout=10,
    )
    assert page.status_code == 200
    response = browser.post(
        page.url.split("?")[0],
        {
            "csrfmiddlewaretoken": _field(page.text, "csrfmiddlewaretoken"),
            "id_token_hint": token["id_token"],
            "post_logout_redirect_uri": RP_SIGNED_OUT,
            "client_id": store_app.client_id,
            "state": "bye",
            "action": "logout",
        },
        headers={"Referer": page.url},
        allow_redirects=False,
        timeout=10,
    )
    assert response.headers["Location"] == f"{RP_SIGNED_OUT}?state=bye"
    me = browser.get(urljoin(provider["issuer"], "/me/"), allow_redirects=False, timeout=10)
    assert me.status_code == 302 and "/accounts/login/" in me.headers["Location"]


def test_a_customer_who_declines_consent_sends_the_relying_party_access_denied(
    provider, store_app, make_customer
):
    hanako = make_customer("hanako@example.jp")
    rp = OAuth2Session(
        store_app.client_id,
        store_app.secret,
        scope="openid",
        redirect_uri=RP_CALLBACK,
        code_challenge_method="S256",
    )
    authorize_url, _ = rp.create_authorization_url(
        provider["authorization_endpoint"], code_verifier=generate_token(48)
    )

    callback = _sign_in_and_consent(
        requests.Session(), authorize_url, hanako.email, action="cancel"
    )

    assert parse_qs(urlsplit(callback).query)["error"] == ["access_denied"]


def test_discovery_and_jwks_publish_what_relying_parties_need(provider):
    assert provider["code_challenge_methods_supported"] == ["S256"]
    assert {"authorization_code", "refresh_token", "client_credentials"} <= set(
        provider["grant_types_supported"]
    )
    keys = requests.get(provider["jwks_uri"], timeout=10).json()["keys"]
    assert [key["kty"] for key in keys] == ["RSA"]
    assert all("d" not in key for key in keys)  # never the private part


def test_signing_in_for_a_public_client_starts_at_the_sites_own_sign_in_page(provider, make_client):
    registered = make_client(
        "store mobile app",
        scopes=["openid"],
        grant_types=["authorization_code"],
        redirect_uris=[RP_CALLBACK],
        client_type=Client.Type.PUBLIC,
    )
    response = requests.get(
        provider["authorization_endpoint"],
        params={
            "client_id": registered.client_id,
            "response_type": "code",
            "scope": "openid",
            "redirect_uri": RP_CALLBACK,
        },
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 302
    # The site's sign-in (and whatever second factor it asks for) comes first.
    assert urlsplit(response.headers["Location"]).path == "/accounts/login/"
