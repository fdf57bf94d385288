"""On a phone, in Chromium: a customer turns on an authenticator app (scanning is
replaced by reading the key, as typing it in would be) and signs in with it; and a
customer adds a passkey and signs in with it, using Chromium's virtual WebAuthn
authenticator (DevTools protocol), which performs real WebAuthn ceremonies."""

import re
from base64 import b32encode

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential
from playwright.sync_api import Page, expect

from accounts.audit import AuditEvent
from tests.conftest import PASSWORD
from tests.fixtures.browser import PHONE, screenshot_path, sign_out, submit
from tests.fixtures.mfa import code

pytestmark = pytest.mark.browser

EMAIL = "yui.kobayashi@example.jp"
_EMAIL_LABEL = re.compile(r"^メールアドレス:?$")
_PASSWORD_LABEL = re.compile(r"^パスワード:?$")
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)")


def _sign_in(page: Page, site: str) -> None:
    page.goto(site + "/accounts/login/")
    page.get_by_label(_EMAIL_LABEL).fill(EMAIL)
    page.get_by_label(_PASSWORD_LABEL).fill(PASSWORD)
    submit(page, "/accounts/login/")


def _reauthenticate(page: Page, site: str) -> None:
    expect(page).to_have_url(re.compile(re.escape(site) + r"/accounts/reauthenticate/"))
    page.get_by_label(_PASSWORD_LABEL).fill(PASSWORD)
    submit(page, "/accounts/reauthenticate/")


def _no_inline_code(page: Page) -> None:
    html = page.content()
    assert not INLINE_SCRIPT.search(html) and 'style="' not in html


def test_a_customer_turns_on_an_authenticator_app_and_signs_in_with_it(
    page: Page, live_site: str, make_customer
):
    customer = make_customer(EMAIL)
    _sign_in(page, live_site)
    expect(page).to_have_url(live_site + "/me/")

    page.goto(live_site + "/accounts/2fa/")
    expect(page.get_by_test_id("mfa-status")).to_have_text("オフ")
    page.get_by_test_id("add-totp").click()
    _reauthenticate(page, live_site)
    expect(page).to_have_url(live_site + "/accounts/2fa/totp/add/")
    expect(page.get_by_test_id("totp-qr").locator("svg")).to_be_visible()
    _no_inline_code(page)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.screenshot(path=screenshot_path("mfa-totp-enroll"), full_page=True)

    device = TOTPDevice.objects.get(user=customer, confirmed=False)
    shown_key = page.get_by_test_id("totp-key").inner_text().replace(" ", "")
    assert shown_key == b32encode(device.bin_key).decode()
    page.locator("input[name=token]").fill(code(device))
    submit(page, "/accounts/2fa/totp/add/")
    expect(page.get_by_test_id("backup-codes").locator("li")).to_have_count(10)
    page.get_by_role("link", name="保存しました").click()
    expect(page.get_by_test_id("mfa-status")).to_have_text("オン")

    sign_out(page, live_site)
    _sign_in(page, live_site)
    expect(page).to_have_url(re.compile(re.escape(live_site) + r"/accounts/2fa/verify/"))
    page.goto(live_site + "/link/")  # no way around it
    expect(page).to_have_url(re.compile(re.escape(live_site) + r"/accounts/2fa/verify/"))
    page.screenshot(path=screenshot_path("mfa-totp-verify"), full_page=True)
    # The app's next code: the one used to turn it on is spent.
    page.locator("input[name=token]").fill(code(device, drift=1))
    submit(page, "/accounts/2fa/verify/")
    expect(page).to_have_url(live_site + "/link/")
    assert AuditEvent.objects.filter(
        action="mfa_verified", customer=customer, method="totp"
    ).exists()


def test_a_customer_adds_a_passkey_and_signs_in_with_it(
    page: Page, live_site: str, make_customer, settings
):
    settings.OTP_WEBAUTHN_RP_ID = "localhost"
    settings.OTP_WEBAUTHN_ALLOWED_ORIGINS = [live_site]
    customer = make_customer(EMAIL)
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    _sign_in(page, live_site)
    page.goto(live_site + "/accounts/2fa/")
    page.get_by_test_id("add-passkey").click()
    _reauthenticate(page, live_site)
    expect(page).to_have_url(live_site + "/accounts/2fa/passkeys/add/")
    _no_inline_code(page)
    page.locator("#passkey-register-button").click()
    expect(page).to_have_url(live_site + "/accounts/2fa/")
    expect(page.get_by_test_id("passkeys").locator("li")).to_have_count(1)
    expect(page.get_by_test_id("mfa-status")).to_have_text("オン")
    assert WebAuthnCredential.objects.filter(user=customer, confirmed=True).count() == 1

    sign_out(page, live_site)
    _sign_in(page, live_site)
    expect(page).to_have_url(re.compile(re.escape(live_site) + r"/accounts/2fa/verify/"))
    page.screenshot(path=screenshot_path("mfa-passkey-verify"), full_page=True)
    page.locator("#passkey-verification-button").click()
    expect(page).to_have_url(live_site + "/me/")
    assert AuditEvent.objects.filter(
        action="mfa_verified", customer=customer, method="passkey"
    ).exists()
