"""A new customer on a phone: signs up by email, confirms from the mailbox, sees the
unified ID and member card, signs out and back in."""

import re

import pytest
from playwright.sync_api import Page, expect

from accounts import unified_id
from accounts.models import Customer
from tests.conftest import PASSWORD
from tests.fixtures.browser import PHONE, screenshot_path, sign_out, submit, unified_id_on_page

EMAIL = "sakura.tanaka@example.jp"
_EMAIL_LABEL = re.compile(r"^メールアドレス:?$")
_PASSWORD_LABEL = re.compile(r"^パスワード:?$")
_JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


def _sign_up(page: Page, site: str) -> None:
    page.goto(site + "/")
    expect(page.locator("html")).to_have_attribute("lang", "ja")
    expect(page.locator("main h1")).to_have_text(_JAPANESE)
    expect(page.locator("button[name=language][value=ja]")).to_have_attribute(
        "aria-current", "true"
    )
    page.locator("main a[href='/accounts/signup/']").first.click()
    expect(page).to_have_url(site + "/accounts/signup/")
    page.get_by_label(_EMAIL_LABEL).fill(EMAIL)
    page.get_by_label(_PASSWORD_LABEL).fill(PASSWORD)
    page.get_by_label(re.compile(r"^パスワード \(再入力\):?$")).fill(PASSWORD)
    submit(page, "/accounts/signup/")
    expect(page).to_have_url(site + "/accounts/confirm-email/")
    expect(page.locator("main")).to_contain_text(EMAIL)


def _confirm_from_mailbox(page: Page, site: str) -> None:
    page.goto(site + "/mailbox/")
    newest = page.locator("article.mail").first
    expect(newest.locator(".mail-to")).to_contain_text(EMAIL)
    # Copied from the text: the Japanese message puts the URL right after "、", where
    # the mailbox page's urlize finds no link.
    body = newest.locator(".mail-body").inner_text()
    link = re.search(re.escape(site) + r"/accounts/confirm-email/\S+?/(?=\s|$)", body)
    assert link, body
    page.goto(link.group())
    expect(page).to_have_url(re.compile(re.escape(site) + r"/accounts/confirm-email/[^/]+/$"))
    expect(page.locator("main")).to_contain_text(EMAIL)
    submit(page, "/accounts/confirm-email/")


def _sign_in_with_password(page: Page, site: str) -> None:
    page.goto(site + "/")
    page.locator("main a[href='/accounts/login/']").first.click()
    page.get_by_label(_EMAIL_LABEL).fill(EMAIL)
    page.get_by_label(_PASSWORD_LABEL).fill(PASSWORD)
    submit(page, "/accounts/login/")
    expect(page).to_have_url(site + "/me/")


@pytest.mark.browser
def test_a_customer_signs_up_by_email_and_gets_a_unified_id(page: Page, live_site: str):
    _sign_up(page, live_site)
    _confirm_from_mailbox(page, live_site)

    expect(page).to_have_url(live_site + "/me/")
    issued = unified_id_on_page(page)
    assert unified_id.is_valid(issued)
    assert Customer.objects.get(email=EMAIL).unified_id == issued
    expect(page.locator(".card-qr svg")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.screenshot(path=screenshot_path("journey-signup-me"), full_page=True)

    sign_out(page, live_site)
    _sign_in_with_password(page, live_site)

    assert unified_id_on_page(page) == issued
