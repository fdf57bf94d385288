"""A certified relying-party library, pyoidc (`oic`), signs customers in at the site's
OpenID provider through a real browser (Chromium): the authorization code flow with
PKCE, with client_secret_basic (a secret full of characters that form-urlencoding
changes) and with client_secret_post, max_age (pyoidc checks auth_time), a `claims`
request, refresh and refresh-token reuse, a signing-key rotation, and back-channel
logout when the customer signs out."""

import re
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from oic import rndstr
from oic.oic import Client as RelyingParty
from oic.oic.message import (
    AccessTokenResponse,
    AuthorizationResponse,
    BackChannelLogoutRequest,
    Claims,
    ClaimsRequest,
    IdToken,
    OpenIDSchema,
    RegistrationResponse,
    TokenErrorResponse,
)
from oic.utils.authn.client import CLIENT_AUTHN_METHOD
from oic.utils.keyio import KeyJar
from playwright.sync_api import Page, expect

from accounts.models import BackchannelLogout, SpentRefreshToken
from accounts.oidc_keys import development_key, published_keys
from tests.conftest import PASSWORD
from tests.fixtures.browser import sign_out, submit

pytest_plugins = ["tests.fixtures.api", "tests.fixtures.oidc"]
pytestmark = pytest.mark.browser

RP_ORIGIN = "https://store.example.jp"
RP_CALLBACK = f"{RP_ORIGIN}/auth/callback"
EMAIL = "hanako@example.jp"
# What allauth's default generator made (Django's secret-key alphabet): every one of
# these characters changes when form-urlencoded, as RFC 6749 §2.3.1 asks clients to.
OLD_STYLE_SECRET = "k%3d$#&@^+=(-_)*!x9 zQ%"
_EMAIL_LABEL = re.compile(r"^メールアドレス:?$")
_PASSWORD_LABEL = re.compile(r"^パスワード:?$")


@pytest.fixture
def op(live_server, transactional_db, settings) -> str:
    settings.SITE_URL = live_server.url
    return live_server.url


@pytest.fixture
def store_app(make_client):
    registered = make_client(
        "store app",
        scopes=["openid", "profile", "email"],
        grant_types=["authorization_code", "refresh_token"],
        redirect_uris=[RP_CALLBACK],
    )
    registered.client.set_secret(OLD_STYLE_SECRET)
    registered.client.save()
    registered.secret = OLD_STYLE_SECRET
    return registered


@pytest.fixture
def hanako(make_customer):
    return make_customer(EMAIL, name="山田花子")


def _relying_party(op: str, store_app, auth_method: str) -> RelyingParty:
    rp = RelyingParty(client_authn_method=CLIENT_AUTHN_METHOD)
    rp.provider_config(op)
    rp.store_registration_info(
        RegistrationResponse(
            client_id=store_app.client_id,
            client_secret=store_app.secret,
            redirect_uris=[RP_CALLBACK],
            token_endpoint_auth_method=auth_method,
        )
    )
    return rp


class Login:
    """One authorization request of the relying party and what came back."""

    def __init__(self, rp: RelyingParty, **extra) -> None:
        self.rp = rp
        self.state, self.nonce = rndstr(32), rndstr(32)
        pkce, self.code_verifier = rp.add_code_challenge()
        self.request = rp.construct_AuthorizationRequest(
            request_args={
                "client_id": rp.client_id,
                "response_type": "code",
                "scope": ["openid", "profile", "email"],
                "redirect_uri": RP_CALLBACK,
                "state": self.state,
                "nonce": self.nonce,
                **pkce,
                **extra,
            }
        )
        self.url = self.request.request(rp.authorization_endpoint)

    def finish(self, callback: str, auth_method: str) -> AccessTokenResponse:
        """The callback and the code exchange, as the library does them."""
        response = self.rp.parse_response(
            AuthorizationResponse, info=urlsplit(callback).query, sformat="urlencoded"
        )
        assert isinstance(response, AuthorizationResponse), response
        assert response["state"] == self.state
        tokens = self.rp.do_access_token_request(
            state=self.state,
            request_args={"code_verifier": self.code_verifier},
            authn_method=auth_method,
        )
        assert isinstance(tokens, AccessTokenResponse), tokens.to_dict()
        # The library's own checks of the ID token: iss, aud, exp, nonce, acr, max_age
        # against auth_time.
        self.rp.verify_id_token(tokens["id_token"], self.request)
        return tokens


def _browser_signs_in(page: Page, url: str, *, password_asked: bool = True) -> str:
    """The customer's part in Chromium: sign in (or re-authenticate) when asked, then
    consent. Returns the callback URL the browser was sent to."""
    arrived: list[str] = []

    def at_relying_party(route) -> None:
        arrived.append(route.request.url)
        route.fulfill(status=200, content_type="text/plain", body="signed in")

    page.route(f"{RP_ORIGIN}/**", at_relying_party)
    page.goto(url)
    if password_asked:
        if page.get_by_label(_EMAIL_LABEL).count():
            page.get_by_label(_EMAIL_LABEL).fill(EMAIL)
        page.get_by_label(_PASSWORD_LABEL).fill(PASSWORD)
        page.locator("main form button[type=submit]").first.click()
    expect(page.get_by_text("store app").first).to_be_visible()
    page.locator("button[name=action][value=grant]").click()
    page.wait_for_url(f"{RP_CALLBACK}**")
    page.unroute(f"{RP_ORIGIN}/**")
    assert arrived, "the browser never reached the relying party"
    return arrived[-1]


def test_code_flow_with_pkce_and_client_secret_basic_max_age_and_claims(
    page: Page, op: str, store_app, hanako
):
    rp = _relying_party(op, store_app, "client_secret_basic")
    login = Login(
        rp,
        max_age=600,
        claims=ClaimsRequest(
            id_token=Claims(auth_time={"essential": True}, acr={"values": ["2", "1"]}),
            userinfo=Claims(email=None, name={"essential": True}),
        ),
    )
    started = int(time.time())

    callback = _browser_signs_in(page, login.url)
    tokens = login.finish(callback, "client_secret_basic")

    id_token = tokens["id_token"]
    assert id_token["sub"] == hanako.unified_id
    assert started - 1 <= id_token["auth_time"] <= int(time.time())
    assert (id_token["acr"], id_token["amr"]) == ("1", ["pwd"])
    userinfo = rp.do_user_info_request(state=login.state)
    assert isinstance(userinfo, OpenIDSchema)
    assert (userinfo["sub"], userinfo["email"], userinfo["name"]) == (
        hanako.unified_id,
        EMAIL,
        "山田花子",
    )


def test_max_age_zero_makes_a_signed_in_customer_re_authenticate(
    page: Page, op: str, store_app, hanako
):
    page.goto(op + "/accounts/login/")
    page.get_by_label(_EMAIL_LABEL).fill(EMAIL)
    page.get_by_label(_PASSWORD_LABEL).fill(PASSWORD)
    submit(page, "/accounts/login/")
    expect(page).to_have_url(op + "/me/")
    signed_in_at = int(time.time())
    rp = _relying_party(op, store_app, "client_secret_post")
    login = Login(rp, max_age=0)

    page.goto(login.url)
    expect(page).to_have_url(re.compile(re.escape(op) + r"/accounts/reauthenticate/"))
    asked_at = int(time.time())
    callback = _browser_signs_in(page, page.url)
    tokens = login.finish(callback, "client_secret_post")

    assert tokens["id_token"]["auth_time"] >= max(asked_at, signed_in_at)


def test_refresh_and_a_reused_refresh_token_revokes_its_family(
    page: Page, op: str, store_app, hanako
):
    rp = _relying_party(op, store_app, "client_secret_basic")
    login = Login(rp)
    first = login.finish(_browser_signs_in(page, login.url), "client_secret_basic")
    spent = rp.get_token(state=login.state)

    refreshed = rp.do_access_token_refresh(state=login.state, authn_method="client_secret_basic")
    assert isinstance(refreshed, AccessTokenResponse), refreshed.to_dict()
    assert refreshed["refresh_token"] != first["refresh_token"]
    # The refreshed ID token says the same about the sign-in.
    assert refreshed["id_token"]["auth_time"] == first["id_token"]["auth_time"]
    assert refreshed["id_token"]["sub"] == hanako.unified_id
    assert rp.do_user_info_request(state=login.state)["sub"] == hanako.unified_id
    newest = rp.get_token(state=login.state)

    # The first refresh token again, as a thief holding a copy would send it.
    reused = rp.do_access_token_refresh(
        state=login.state, token=spent, authn_method="client_secret_basic"
    )
    assert isinstance(reused, TokenErrorResponse) and reused["error"] == "invalid_grant"

    # Its whole family is gone: the newest refresh token and access token too.
    again = rp.do_access_token_refresh(
        state=login.state, token=newest, authn_method="client_secret_basic"
    )
    assert isinstance(again, TokenErrorResponse) and again["error"] == "invalid_grant"
    userinfo = rp.do_user_info_request(token=newest.access_token)
    assert not isinstance(userinfo, OpenIDSchema) or "sub" not in userinfo
    assert SpentRefreshToken.objects.count() == 1


def test_signing_key_rotation_keeps_old_tokens_verifiable_during_the_overlap(
    page: Page, op: str, store_app, hanako, settings, tmp_path
):
    old_key, new_key = (development_key(tmp_path / name) for name in ("old.pem", "new.pem"))
    settings.IDP_OIDC_PRIVATE_KEYS = published_keys(old_key)
    rp = _relying_party(op, store_app, "client_secret_basic")
    login = Login(rp)
    before = login.finish(_browser_signs_in(page, login.url), "client_secret_basic")
    old_jwt = before["id_token"].jwt

    # Rotation: the new key signs, the old one is still published.
    settings.IDP_OIDC_PRIVATE_KEYS = published_keys(new_key, old_key)
    fresh = _relying_party(op, store_app, "client_secret_basic")
    assert _verifies(old_jwt, fresh.keyjar, op)
    login = Login(fresh)
    after = login.finish(
        _browser_signs_in(page, login.url, password_asked=False), "client_secret_basic"
    )
    assert after["id_token"].jws_header["kid"] != before["id_token"].jws_header["kid"]
    assert _verifies(after["id_token"].jwt, fresh.keyjar, op)

    # After the overlap the old key is gone, and so is trust in what it signed.
    settings.IDP_OIDC_PRIVATE_KEYS = published_keys(new_key)
    later = _relying_party(op, store_app, "client_secret_basic")
    assert not _verifies(old_jwt, later.keyjar, op)
    assert _verifies(after["id_token"].jwt, later.keyjar, op)


def _verifies(jwt: str, keyjar: KeyJar, issuer: str) -> bool:
    try:
        IdToken().from_jwt(jwt, keyjar=keyjar, sender=issuer)
    except Exception:  # pyoidc raises several kinds for a signature it cannot check
        return False
    return True


def test_a_claims_request_for_the_signed_in_customers_own_sub_goes_through(
    page: Page, op: str, store_app, hanako
):
    rp = _relying_party(op, store_app, "client_secret_post")
    login = Login(rp, claims=ClaimsRequest(id_token=Claims(sub={"value": hanako.unified_id})))
    callback = _browser_signs_in(page, login.url)
    assert "error" not in parse_qs(urlsplit(callback).query)
    assert login.finish(callback, "client_secret_post")["id_token"]["sub"] == hanako.unified_id


def test_signing_out_sends_a_logout_token_the_library_verifies(
    page: Page, op: str, store_app, hanako, logout_receiver, logout_worker
):
    BackchannelLogout.objects.create(client=store_app.client, uri=logout_receiver.url)
    rp = _relying_party(op, store_app, "client_secret_basic")
    login = Login(rp)
    tokens = login.finish(_browser_signs_in(page, login.url), "client_secret_basic")

    page.goto(op + "/me/")
    sign_out(page, op)

    [body] = logout_receiver.bodies
    sent = body["logout_token"][0]
    request = BackChannelLogoutRequest(logout_token=sent)
    assert request.verify(keyjar=rp.keyjar, aud=store_app.client_id, iss=op)
    header, payload, signature = sent.split(".")
    forged = ".".join([header, payload, signature[::-1]])
    with pytest.raises(Exception):  # noqa: B017 (pyoidc raises several kinds)
        BackChannelLogoutRequest(logout_token=forged).verify(
            keyjar=rp.keyjar, aud=store_app.client_id, iss=op
        )
    logout_token = request["logout_token"]
    assert (logout_token["sub"], logout_token["sid"]) == (
        hanako.unified_id,
        tokens["id_token"]["sid"],
    )
    ended = rp.do_access_token_refresh(state=login.state, authn_method="client_secret_basic")
    assert isinstance(ended, TokenErrorResponse) and ended["error"] == "invalid_grant"
