"""Linking by signing in at the legacy service's own OpenID Connect server, here a
fake one on a real local HTTP server (tests/fakes/idp.py)."""

from urllib.parse import urlsplit

import pytest
import requests

from accounts.audit import AuditEvent
from tests.fakes.idp import Tamper
from tests.fixtures.mfa import stepped_up

LEGACY_IDP = "legacy-app"


@pytest.fixture
def customer_client(customer_client):
    """Linking needs step-up (accounts.stepup): the customer re-authenticated just now."""
    return stepped_up(customer_client)


@pytest.fixture
def legacy_idp(idp_server):
    idp_server.add_oidc_provider(LEGACY_IDP)
    idp_server.reset()
    return idp_server


@pytest.fixture
def app_service(make_service, legacy_idp):
    client = legacy_idp.clients[LEGACY_IDP]
    return make_service(
        "app",
        proofs=["oidc"],
        oidc_server_url=legacy_idp.issuer(LEGACY_IDP),
        oidc_client_id=client.client_id,
        oidc_client_secret=client.secret,
    )


def _round_trip(client, service) -> object:
    start = client.post(f"/link/service/{service.code}/sign-in/")
    assert start.status_code == 302
    authorize_url = start["Location"]
    back = requests.get(authorize_url, allow_redirects=False, timeout=10)
    assert back.status_code == 302, back.text
    callback = urlsplit(back.headers["Location"])
    return client.get(f"{callback.path}?{callback.query}", follow=True)


def test_signing_in_at_the_service_links_that_account(
    customer_client, customer, app_service, make_account, legacy_idp
):
    account = make_account("A0001234", service=app_service)
    legacy_idp.set_user(LEGACY_IDP, sub="A0001234")
    response = _round_trip(customer_client, app_service)
    account.refresh_from_db()
    assert account.owner == customer
    assert account.link_events.get().proof == "oidc"
    assert "****1234" in response.content.decode()


def test_the_authorization_request_carries_state_nonce_and_pkce(customer_client, app_service):
    start = customer_client.post(f"/link/service/{app_service.code}/sign-in/")
    query = urlsplit(start["Location"]).query
    for parameter in ("state=", "nonce=", "code_challenge=", "code_challenge_method=S256"):
        assert parameter in query


@pytest.mark.parametrize(
    "tamper", [Tamper.NONCE, Tamper.SIGNATURE, Tamper.AUDIENCE, Tamper.EXPIRED]
)
def test_a_bad_id_token_links_nothing(
    customer_client, app_service, make_account, legacy_idp, tamper
):
    account = make_account("A0001234", service=app_service)
    legacy_idp.set_user(LEGACY_IDP, sub="A0001234")
    legacy_idp.tamper_next_id_token(LEGACY_IDP, tamper)
    _round_trip(customer_client, app_service)
    account.refresh_from_db()
    assert account.owner is None
    assert AuditEvent.objects.filter(action="proof_failed", method="oidc").exists()


def test_an_unknown_external_id_links_nothing(
    customer_client, app_service, make_account, legacy_idp
):
    account = make_account("A0001234", service=app_service)
    legacy_idp.set_user(LEGACY_IDP, sub="A9999999")
    response = _round_trip(customer_client, app_service)
    account.refresh_from_db()
    assert account.owner is None
    assert response.status_code == 200


def test_a_callback_with_a_foreign_state_is_refused(customer_client, app_service, make_account):
    account = make_account("A0001234", service=app_service)
    customer_client.get("/link/sign-in/callback/?code=abc&state=forged", follow=True)
    account.refresh_from_db()
    assert account.owner is None


def test_a_service_without_oidc_offers_no_sign_in(customer_client, make_service):
    make_service("pos", proofs=["code"])
    response = customer_client.post("/link/service/pos/sign-in/", follow=True)
    assert response.redirect_chain[-1][0].endswith("/link/service/pos/")
