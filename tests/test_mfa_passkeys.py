"""The passkey endpoints (django-otp-webauthn behind this site's rules) without an
authenticator: who may start which ceremony. The full ceremonies run in Chromium's
virtual authenticator in test_mfa_browser."""

import json

from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.audit import AuditEvent
from tests.fixtures.mfa import sign_in_with_password, stepped_up

BASE = "/accounts/2fa/passkeys/"
JSON = {"HTTP_ACCEPT": "application/json"}


def test_a_passkey_never_signs_anyone_in(client, db):
    response = client.post(BASE + "authentication/begin/", **JSON)
    assert response.status_code == 403
    assert response.json()["code"] == "passwordless_login_disabled"


def test_registering_needs_step_up(client, customer):
    sign_in_with_password(client, customer)
    response = client.post(BASE + "registration/begin/", **JSON)
    assert response.status_code == 403
    assert response.json()["code"] == "step_up_required"

    stepped_up(client)
    response = client.post(BASE + "registration/begin/", **JSON)
    assert response.status_code == 200
    options = response.json()
    assert options["rp"]["id"] == "localhost"
    assert options["challenge"]


def test_before_the_second_factor_only_verification_is_open(client, mfa_customer):
    sign_in_with_password(client, mfa_customer)
    response = client.post(BASE + "registration/begin/", **JSON)
    assert response.status_code == 403  # held by the middleware, not even step-up asked
    response = client.post(BASE + "authentication/begin/", **JSON)
    assert response.status_code == 200
    assert response.json()["challenge"]


def test_a_forged_passkey_answer_is_refused_and_audited(client, mfa_customer):
    sign_in_with_password(client, mfa_customer)
    client.post(BASE + "authentication/begin/", **JSON)
    forged = {
        "id": "AAAA",
        "rawId": "AAAA",
        "type": "public-key",
        "response": {"clientDataJSON": "e30", "authenticatorData": "AAAA", "signature": "AAAA"},
    }
    response = client.post(
        BASE + "authentication/complete/", json.dumps(forged), content_type="application/json"
    )
    assert response.status_code in (400, 403, 404, 422)
    assert client.get("/me/").status_code == 302
    assert AuditEvent.objects.filter(
        action="mfa_failed", customer=mfa_customer, method="passkey"
    ).exists()


def test_the_verification_page_offers_a_passkey_without_inline_script(client, mfa_customer):
    from django_otp_webauthn.models import WebAuthnCredential

    WebAuthnCredential.objects.create(
        user=mfa_customer, credential_id=b"x", public_key=b"y", sign_count=0, confirmed=True
    )
    TOTPDevice.objects.filter(user=mfa_customer).delete()
    sign_in_with_password(client, mfa_customer)
    page = client.get("/accounts/2fa/verify/").content.decode()
    assert 'id="passkey-verification-button"' in page
    assert '<div id="otp_webauthn_config" hidden>' in page
    assert "<script>" not in page and 'type="application/json"' not in page
