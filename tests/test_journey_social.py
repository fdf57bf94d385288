"""Customers on a phone who sign in with LINE or Google: a new unified ID on the first
sign-in, another sign-in method connected from the connections page (after signing in
again), and every method leading back to the same unified ID."""

import re

import pytest
from allauth.socialaccount.models import SocialAccount
from playwright.sync_api import Page, expect

from accounts import unified_id
from tests.conftest import PASSWORD
from tests.fixtures.browser import sign_out, submit, unified_id_on_page

LINE_USER = {"sub": "U4af4980629a1b2c3d4e5f60718293a4b", "name": "山田 花子"}
GOOGLE_USER = {
    "sub": "108555123456789012345",
    "name": "Hanako Yamada",
    "email": "hanako.yamada@gmail.example",
    "email_verified": True,
}


def _provider_button(page: Page, provider: str):
    """The sign-in (or connect) button of a provider, found by its visible name."""
    return page.locator("main").get_by_role("button", name=re.compile(provider))


def _sign_in_with(page: Page, site: str, provider: str) -> str:
    page.goto(site + "/")
    _provider_button(page, provider).click()
    expect(page).to_have_url(site + "/me/")
    return unified_id_on_page(page)


def _connect(page: Page, site: str, provider: str, *, reauthenticate_at: str = "") -> None:
    """With reauthenticate_at, the customer (who has no password) first signs in
    again there: the sign-in itself does not count."""
    page.goto(site + "/me/")
    page.locator("main a[href='/accounts/3rdparty/']").click()
    if reauthenticate_at:
        expect(page).to_have_url(re.compile(re.escape(site) + r"/accounts/reauthenticate/idp/"))
        _provider_button(page, reauthenticate_at).click()
    expect(page).to_have_url(site + "/accounts/3rdparty/")
    _provider_button(page, provider).click()


def _expect_sign_in_methods(page: Page, site: str, *names: str) -> None:
    page.goto(site + "/me/")
    methods = page.locator("section[aria-labelledby=signin-title] li")
    expect(methods).to_have_text(list(names))


@pytest.mark.browser
def test_a_line_customer_connects_google_and_both_lead_to_one_unified_id(
    page: Page, live_site: str, fake_idp
):
    fake_idp.set_user("line", **LINE_USER)
    fake_idp.set_user("google", **GOOGLE_USER)

    issued = _sign_in_with(page, live_site, "LINE")
    assert unified_id.is_valid(issued)

    _connect(page, live_site, "Google", reauthenticate_at="LINE")
    expect(page).to_have_url(live_site + "/accounts/3rdparty/")
    expect(page.locator("main label").filter(has_text="Google")).to_be_visible()
    _expect_sign_in_methods(page, live_site, "LINE", "Google")
    identities = SocialAccount.objects.filter(user__unified_id=issued)
    assert sorted(identities.values_list("provider", "uid")) == [
        ("google", GOOGLE_USER["sub"]),
        ("line", LINE_USER["sub"]),
    ]

    sign_out(page, live_site)
    assert _sign_in_with(page, live_site, "Google") == issued

    sign_out(page, live_site)
    assert _sign_in_with(page, live_site, "LINE") == issued


@pytest.mark.browser
def test_an_email_customer_reauthenticates_to_connect_google(
    page: Page, live_site: str, fake_idp, make_customer
):
    customer = make_customer("taro.suzuki@example.jp")
    fake_idp.set_user("google", **GOOGLE_USER)
    page.goto(live_site + "/accounts/login/")
    page.get_by_label(re.compile(r"^メールアドレス:?$")).fill(customer.email)
    page.get_by_label(re.compile(r"^パスワード:?$")).fill(PASSWORD)
    submit(page, "/accounts/login/")
    expect(page).to_have_url(live_site + "/me/")

    _connect(page, live_site, "Google")
    expect(page).to_have_url(re.compile(re.escape(live_site) + r"/accounts/reauthenticate/"))
    page.get_by_label(re.compile(r"^パスワード:?$")).fill(PASSWORD)
    submit(page, "/accounts/reauthenticate/")
    expect(page.locator("main label").filter(has_text="Google")).to_be_visible()
    _expect_sign_in_methods(page, live_site, "メールアドレスとパスワード", "Google")

    sign_out(page, live_site)
    assert _sign_in_with(page, live_site, "Google") == customer.unified_id
