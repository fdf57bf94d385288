"""In a real browser: a staff member signs in with password and TOTP and sees the
dashboard (a screenshot is left in var/screenshots/staff-dashboard.png); a new one
enrolls and goes through every kind of staff page. axe-core (the page fixture)
audits each page: nothing critical or serious."""

import re

import pytest
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import expect

from tests.conftest import PASSWORD
from tests.fixtures.browser import audit, screenshot_path, squeezed

pytestmark = pytest.mark.browser
pytest_plugins = ["tests.fixtures.campaigns"]


def test_staff_sign_in_with_totp_and_see_the_dashboard(
    page, live_site, make_staff, make_account, make_customer
):
    from linking import claims

    staff = make_staff(role="analyst")
    account = make_account("S0001234", email="hanako@example.jp")
    make_account("S0001235")
    claims.link(account=account, customer=make_customer(), proof="code", request=None)
    page.set_viewport_size({"width": 1280, "height": 1000})

    page.goto(live_site + "/admin/dashboard/")
    page.fill("input[name=username]", staff.email)
    page.fill("input[name=password]", PASSWORD)
    audit(page)
    page.locator("form#login-form [type=submit]").click()
    expect(page).to_have_url(live_site + "/admin/verify/?next=%2Fadmin%2Fdashboard%2F")
    audit(page)
    device = TOTPDevice.objects.get(user=staff)
    page.fill("input[name=token]", f"{totp(device.bin_key):06d}")
    page.locator("#content form [type=submit]").click()
    expect(page).to_have_url(live_site + "/admin/dashboard/")
    expect(page.get_by_test_id("services")).to_contain_text("50.00%")
    expect(page.locator("svg.chart").first).to_be_visible()
    page.screenshot(path=screenshot_path("staff-dashboard"), full_page=True)
    assert screenshot_path("staff-dashboard").stat().st_size > 10_000


# Every kind of staff page: the second factor, the staff pages, lists with filters
# and forms with the admin's widgets (split date and time, the services picker, an
# inline of steps).
STAFF_PAGES = (
    "/admin/",
    "/admin/dashboard/",
    "/admin/search/?q=山田花子",
    "/admin/matching/",
    "/admin/backup-codes/",
    "/admin/campaigns/campaign/",
    "/admin/campaigns/campaign/add/",
    "/admin/accounts/auditevent/",
    "/admin/linking/legacyaccount/",
    "/admin/linking/importjob/",
    "/admin/linking/importjob/add/",
    "/admin/allauth_idp_oidc/client/add/",
    "/admin/accounts/customer/",
    "/admin/auth/group/add/",
    "/admin/mfa/authenticatorapp/",
)


def test_staff_pages_pass_axe_core(
    page, live_site, make_staff, make_account, make_customer, make_campaign
):
    """A new staff member enrolls an authenticator app and goes through the admin;
    axe-core (the page fixture) finds nothing critical or serious on any page."""
    from linking import claims

    page.set_viewport_size({"width": 1280, "height": 900})
    staff = make_staff("new.staff@example.jp", superuser=True, device=False)
    hanako = make_customer("hanako@example.jp", name="山田 花子")
    account = make_account("S0001234", email="hanako@example.jp", name="山田 花子")
    claims.link(account=account, customer=hanako, proof="code", request=None)
    campaign = make_campaign()

    page.goto(live_site + "/admin/")
    page.fill("input[name=username]", staff.email)
    page.fill("input[name=password]", PASSWORD)
    audit(page)
    page.locator("form#login-form [type=submit]").click()
    expect(page).to_have_url(re.compile(re.escape(live_site) + r"/admin/enroll/"))
    expect(page.locator("[data-testid=totp-qr] svg")).to_be_visible()
    expect(page.locator("#nav-sidebar")).to_have_count(0)
    expect(page.get_by_test_id("staff-sign-out")).to_be_visible()
    audit(page)
    device = TOTPDevice.objects.get(user=staff, confirmed=False)
    page.fill("input[name=token]", f"{totp(device.bin_key):06d}")
    page.locator("#content form [type=submit]").click()
    expect(page.get_by_test_id("backup-codes")).to_be_visible()
    audit(page)

    pages = [*STAFF_PAGES, f"/admin/customer/{hanako.pk}/"]
    pages += [f"/admin/accounts/customer/{hanako.pk}/change/", "/admin/accounts/auditevent/?q=x"]
    pages += [f"/admin/campaigns/campaign/{campaign.pk}/{name}/" for name in ("change", "progress")]
    for path in pages:
        page.goto(live_site + path)
        expect(page.locator("#content")).to_be_visible()
        audit(page)
    assert len(page.axe_audit.pages) == len(pages) + 3

    # Japanese breaks between any two characters: no column of a list is squeezed to
    # one character a line, on a desktop or on a phone (a search: its count and a link).
    for width in (1280, 360):
        page.set_viewport_size({"width": width, "height": 900})
        for path in (
            "/admin/accounts/auditevent/?q=new.staff%40example.jp",
            "/admin/accounts/customer/",
            "/admin/linking/linkevent/",
        ):
            page.goto(live_site + path)
            expect(page.locator("#result_list")).to_be_visible()
            assert squeezed(page, "#result_list th, #result_list td") == [], (width, path)
        # The link events' date drill-down: targets at least 24 px high (WCAG 2.5.8).
        heights = page.eval_on_selector_all(
            ".toplinks a", "links => links.map((link) => link.getBoundingClientRect().height)"
        )
        assert heights and min(heights) >= 24, heights
        page.goto(live_site + "/admin/dashboard/")
        expect(page.get_by_test_id("funnel")).to_be_visible()
        assert squeezed(page, ".staff-table th, .staff-table td") == [], width
        if width == 1280:  # the wide funnel scrolls in its own box, not the page
            assert page.evaluate("document.documentElement.scrollWidth") <= width
