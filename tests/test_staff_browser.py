"""In a real browser: a staff member signs in with password and TOTP and sees the
dashboard; a screenshot is left in var/screenshots/staff-dashboard.png."""

import pytest
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import expect

from tests.conftest import PASSWORD
from tests.fixtures.browser import TIMEOUT_MS, screenshot_path

pytestmark = pytest.mark.browser


def test_staff_sign_in_with_totp_and_see_the_dashboard(
    browser, live_site, make_staff, make_account, make_customer, settings
):
    # The live server serves static files by their plain names (no manifest).
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    staff = make_staff(role="analyst")
    from linking import claims

    account = make_account("S0001234", email="hanako@example.jp")
    make_account("S0001235")
    claims.link(account=account, customer=make_customer(), proof="code", request=None)
    context = browser.new_context(
        viewport={"width": 1280, "height": 1000},
        locale="ja-JP",
        extra_http_headers={"Accept-Language": "ja"},
    )
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        page.goto(live_site + "/admin/dashboard/")
        page.fill("input[name=username]", staff.email)
        page.fill("input[name=password]", PASSWORD)
        page.locator("form#login-form [type=submit]").click()
        expect(page).to_have_url(live_site + "/admin/verify/?next=%2Fadmin%2Fdashboard%2F")
        device = TOTPDevice.objects.get(user=staff)
        page.fill("input[name=token]", f"{totp(device.bin_key):06d}")
        page.locator("main form [type=submit], #content form [type=submit]").first.click()
        expect(page).to_have_url(live_site + "/admin/dashboard/")
        expect(page.get_by_test_id("services")).to_contain_text("50.00%")
        expect(page.locator("svg.chart").first).to_be_visible()
        page.screenshot(path=screenshot_path("staff-dashboard"), full_page=True)
    finally:
        context.close()
    assert screenshot_path("staff-dashboard").stat().st_size > 10_000
