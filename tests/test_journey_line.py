"""A LINE friend of the Official Account links LINE with their unified ID, on a phone
in Japanese: 「統合IDと連携」 in the chat, the bot's link, sign-in here, confirm, LINE's
account-link dialog, the link centre showing LINE linked, and unlinking. LINE is the fake
platform (tests/fakes/line.py), which delivers its signed webhooks to the live site."""

import re

import pytest
from playwright.sync_api import Page, expect

from accounts.audit import AuditEvent
from linking.line.models import LineFriend
from tests.conftest import PASSWORD
from tests.fakes.line import line_user_id
from tests.fixtures.browser import PHONE, screenshot_path, submit

EMAIL = "hanako@example.jp"


@pytest.mark.browser
def test_a_friend_links_line_with_their_unified_id(
    page: Page, live_site: str, fake_line, make_customer, settings
):
    settings.SITE_URL = live_site
    customer = make_customer(EMAIL)
    friend = line_user_id()
    fake_line.webhook_url = f"{live_site}/line/webhook/"
    fake_line.follow(friend, name="山田 花子")
    fake_line.say(friend, "統合IDと連携")
    assert fake_line.webhook_answers() == [200, 200]

    # In LINE: the bot's answer, with the link.
    page.goto(fake_line.chat_url(friend))
    link = page.locator("#chat a").first
    expect(link).to_have_attribute("href", re.compile(re.escape(live_site) + "/line/link/"))
    link_page = link.get_attribute("href")
    link.click()

    # Here: not signed in yet, so the sign-in page first, then back to confirm.
    expect(page).to_have_url(re.compile(re.escape(live_site) + r"/accounts/login/\?next="))
    page.get_by_label(re.compile(r"^メールアドレス:?$")).fill(EMAIL)
    page.get_by_label(re.compile(r"^パスワード:?$")).fill(PASSWORD)
    submit(page, "/accounts/login/")
    expect(page).to_have_url(re.compile(re.escape(live_site) + r"/line/link/\?linkToken="))
    expect(page.get_by_role("heading", level=1)).to_have_text("LINEと統合IDを連携")
    expect(page.get_by_test_id("line-name")).to_have_text("山田 花子")
    confirm = page.get_by_test_id("confirm-line-link")
    expect(confirm).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.screenshot(path=screenshot_path("journey-line-confirm"), full_page=True)
    confirm.click()

    # LINE's dialog sends the signed accountLink event and shows the chat again.
    expect(page).to_have_url(fake_line.chat_url(friend))
    expect(page.locator("#chat li").last).to_contain_text("連携が完了しました")
    assert fake_line.webhook_answers() == [200, 200, 200]

    page.goto(f"{live_site}/link/")
    section = page.get_by_test_id("line-binding")
    expect(section.get_by_role("heading")).to_contain_text("連携済み")
    expect(section.get_by_test_id("line-friendship")).to_have_text("公式アカウントと友だちです。")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.screenshot(path=screenshot_path("journey-line-linked"), full_page=True)
    bound = LineFriend.objects.get(line_user_id=friend)
    assert (bound.customer, bound.is_friend) == (customer, True)
    assert AuditEvent.objects.filter(action="line_linked", customer=customer).exists()

    # The bot's link worked once.
    page.goto(link_page)
    expect(page.get_by_role("heading", level=1)).to_have_text("このリンクは有効期限が切れています")

    # Unlinking, from the link centre, after typing the password again.
    page.goto(f"{live_site}/link/")
    page.get_by_test_id("line-binding").get_by_role("link", name="LINEの連携を解除").click()
    expect(page).to_have_url(re.compile(re.escape(live_site) + r"/accounts/reauthenticate/"))
    page.get_by_label(re.compile(r"^パスワード:?$")).fill(PASSWORD)
    submit(page, "/accounts/reauthenticate/")
    expect(page).to_have_url(f"{live_site}/line/unlink/")
    page.get_by_test_id("confirm-line-unlink").click()
    expect(page).to_have_url(f"{live_site}/link/")
    expect(page.get_by_test_id("line-binding")).to_contain_text("まだ連携していません")
    assert LineFriend.objects.get(line_user_id=friend).customer is None
