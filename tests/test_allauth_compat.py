"""Pins every behaviour of allauth that accounts.allauth_compat relies on: its OpenID
provider by running allauth's own endpoints (tests/oidc_allauth_urls.py: the site
without accounts.oidc_views in front), its authentication records and suspended
requests through real sessions. When an allauth upgrade changes one, its test here
fails and says which part of accounts.allauth_compat to revisit."""

import base64
import json
import re
from urllib.parse import parse_qs, quote_plus, urlsplit

import pytest
from allauth.account.authentication import get_authentication_records
from allauth.core.context import request_context
from allauth.idp.oidc.models import Token
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.middleware import SessionMiddleware
from django.http import HttpRequest
from django.test import Client, RequestFactory

from accounts import allauth_compat
from tests.fixtures.mfa import sign_in_with_password

pytest_plugins = ["tests.fixtures.api"]
pytestmark = pytest.mark.urls("tests.oidc_allauth_urls")

CALLBACK = "https://store.example.jp/auth/callback"
SECRET = "a+b%21c:d"


@pytest.fixture
def store_app(make_client):
    registered = make_client(
        "store app",
        scopes=["openid", "email"],
        grant_types=["authorization_code", "refresh_token", "client_credentials"],
        redirect_uris=[CALLBACK],
    )
    registered.client.set_secret(SECRET)
    registered.client.save()
    registered.secret = SECRET
    return registered


@pytest.fixture
def signed_in(client: Client, make_customer):
    customer = make_customer("hanako@example.jp")
    sign_in_with_password(client, customer)
    return client, customer


def _basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def _authorize(client: Client, app, **params):
    return client.get(
        "/identity/o/authorize",
        {
            "client_id": app.client_id,
            "response_type": "code",
            "scope": "openid email",
            "redirect_uri": CALLBACK,
            "state": "s",
            **params,
        },
    )


def _consent(client: Client, page) -> dict:
    signed = re.search(r'name="request" value="([^"]+)"', page.content.decode()).group(1)
    response = client.post(
        "/identity/o/authorize",
        {"request": signed, "scopes": ["openid", "email"], "action": "grant"},
    )
    assert response.status_code == 302
    return {k: v[0] for k, v in parse_qs(urlsplit(response["Location"]).query).items()}


def _exchange(app, code: str) -> dict:
    response = Client().post(
        "/identity/o/api/token",
        {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK},
        HTTP_AUTHORIZATION=_basic(app.client_id, app.secret),
    )
    assert response.status_code == 200, response.content
    return response.json()


def test_allauth_takes_basic_credentials_without_form_urldecoding_them(store_app):
    """basic_credentials / basic_header_for_allauth: the decoding is ours to do."""

    def token(header: str) -> int:
        return (
            Client()
            .post(
                "/identity/o/api/token",
                {"grant_type": "client_credentials", "scope": "openid"},
                HTTP_AUTHORIZATION=header,
            )
            .status_code
        )

    encoded = _basic(quote_plus(store_app.client_id), quote_plus(SECRET))
    assert token(encoded) == 401
    assert token(allauth_compat.basic_header_for_allauth(store_app.client_id, SECRET)) == 200
    assert allauth_compat.basic_credentials(encoded) == (store_app.client_id, SECRET)


def test_allauth_compares_a_top_level_sub_of_the_claims_request(signed_in, store_app):
    """claims_with_session_sub: without it any claims request is login_required."""
    client, customer = signed_in
    claims = {"id_token": {"auth_time": {"essential": True}}}
    refused = _authorize(client, store_app, claims=json.dumps(claims))
    assert parse_qs(urlsplit(refused["Location"]).query)["error"] == ["login_required"]
    page = _authorize(
        client,
        store_app,
        claims=allauth_compat.claims_with_session_sub(claims, customer.unified_id),
    )
    assert page.status_code == 200


def test_allauth_keeps_grant_id_and_claims_with_the_code_and_its_tokens(signed_in, store_app):
    """code_grant, token_grant, revoke_grants; and refresh tokens rotate within one
    grant, the spent one gone (the family revocation of accounts.oidc_views)."""
    client, customer = signed_in
    claims = {"userinfo": {"email": None}}
    page = _authorize(
        client,
        store_app,
        claims=allauth_compat.claims_with_session_sub(claims, customer.unified_id),
    )
    code = _consent(client, page)["code"]
    grant_id, found_claims, client_id = allauth_compat.code_grant(code)
    assert found_claims == claims
    assert client_id == store_app.client_id
    tokens = _exchange(store_app, code)
    assert allauth_compat.token_grant(Token.Type.ACCESS_TOKEN, tokens["access_token"]) == grant_id
    assert allauth_compat.token_grant(Token.Type.REFRESH_TOKEN, tokens["refresh_token"]) == grant_id

    refreshed = Client().post(
        "/identity/o/api/token",
        {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        HTTP_AUTHORIZATION=_basic(store_app.client_id, store_app.secret),
    )
    assert refreshed.status_code == 200
    new_refresh = refreshed.json()["refresh_token"]
    assert allauth_compat.token_grant(Token.Type.REFRESH_TOKEN, tokens["refresh_token"]) is None
    assert allauth_compat.token_grant(Token.Type.REFRESH_TOKEN, new_refresh) == grant_id

    # 2 access tokens, 1 refresh token
    assert allauth_compat.revoke_grants([(store_app.client_id, grant_id)]) == 3
    assert not Token.objects.filter(type__in=[Token.Type.ACCESS_TOKEN, Token.Type.REFRESH_TOKEN])


def test_allauth_answers_prompt_none_without_a_signed_in_customer_login_required(
    signed_in, store_app
):
    """answer_as_signed_out: allauth's silent-login check reads request.user (the
    site uses it when a max_age is not met under prompt=none); shown here by a
    request that really has nobody signed in."""
    response = _authorize(Client(), store_app, prompt="none")
    assert parse_qs(urlsplit(response["Location"]).query)["error"] == ["login_required"]


def test_allauth_names_a_key_by_its_rfc_7638_thumbprint(settings):
    """key_id: the logout tokens signed here carry the kid allauth publishes."""
    [published] = Client().get("/.well-known/jwks.json").json()["keys"]
    [key] = settings.IDP_OIDC_PRIVATE_KEYS
    assert allauth_compat.key_id(key["pem"]) == published["kid"]


def _with_session(request: HttpRequest, user=None, session=None) -> HttpRequest:
    SessionMiddleware(lambda r: None).process_request(request)
    if session is not None:
        request.session = session
    request.user = user or AnonymousUser()
    return request


def test_a_recorded_authentication_is_what_allauth_reads_for_reauthentication(make_customer):
    """record_authentication / is_reauthentication_required: a record we add is one
    allauth's public get_authentication_records returns and its re-authentication
    check counts."""
    customer = make_customer("taro@example.jp")
    request = _with_session(RequestFactory().get("/"), customer)
    assert allauth_compat.is_reauthentication_required(request)

    allauth_compat.record_authentication(request, customer, method="mfa", type="totp")
    assert get_authentication_records(request, customer)[-1]["method"] == "mfa"
    assert get_authentication_records(request, customer)[-1]["type"] == "totp"
    assert allauth_compat.is_reauthentication_required(request)  # not a re-authentication

    allauth_compat.record_authentication(request, customer, method="password", reauthenticated=True)
    assert not allauth_compat.is_reauthentication_required(request)
    assert allauth_compat.is_reauthentication_required(_with_session(RequestFactory().get("/")))


def test_a_suspended_post_is_replayed_when_next_names_its_path():
    """suspend_request / resume_request: the POST is kept in the session and run
    again by the view at its path; without one, ?next= is a redirect."""
    post = _with_session(
        RequestFactory().post("/i18n/setlang/", {"language": "ja", "next": "/after/"})
    )
    suspended = allauth_compat.suspend_request(post, "/accounts/2fa/verify/")
    assert suspended.url == "/accounts/2fa/verify/?next=%2Fi18n%2Fsetlang%2F"

    back = _with_session(
        RequestFactory().get("/", {"next": "/i18n/setlang/"}), session=post.session
    )
    with request_context(back):
        resumed = allauth_compat.resume_request(back)
    assert resumed.status_code == 302 and resumed.url == "/after/"
    assert resumed.cookies["django_language"].value == "ja"  # the POST ran again

    plain = _with_session(RequestFactory().get("/", {"next": "/i18n/setlang/"}))
    with request_context(plain):
        assert allauth_compat.resume_request(plain).url == "/i18n/setlang/"
    bare = _with_session(RequestFactory().get("/"))
    with request_context(bare):
        assert allauth_compat.resume_request(bare) is None
