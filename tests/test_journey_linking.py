"""A signed-in customer on a phone links an old account with a code from the mailbox,
sees it linked with its points, then unlinks it and sees it suggested again."""

import re
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from playwright.sync_api import Locator, Page, expect

from accounts.audit import AuditEvent
from linking.models import LegacyAccount, LinkEvent
from tests.conftest import PASSWORD
from tests.fixtures.browser import PHONE, screenshot_path, submit

EMAIL = "misaki.watanabe@example.jp"
MEMBER_NUMBER = "SM-20418833"
MASKED = "****8833"
OTHER_PERSONS_NUMBER = "SM-20417702"
_EMAIL_LABEL = re.compile(r"^メールアドレス:?$")
_PASSWORD_LABEL = re.compile(r"^パスワード:?$")
_CODE_LABEL = re.compile(r"^確認コード:?$")
_SIX_DIGITS = re.compile(r"(?<!\d)\d{6}(?!\d)")


@pytest.fixture
def legacy(service, make_service, make_account, make_customer):
    """The customer, an account of theirs at a service that takes codes but not email
    matches, another person's account there, and an account linked earlier elsewhere."""
    customer = make_customer(EMAIL)
    membership = make_service(
        "store-membership", proofs=("code",), name_ja="店舗会員", name_en="Store membership"
    )
    store = service
    store.name_ja, store.name_en = "オンラインストア", "Online store"
    store.save()
    theirs = make_account(
        MEMBER_NUMBER, service=membership, email="Misaki.Watanabe@example.jp", points=3200
    )
    make_account(OTHER_PERSONS_NUMBER, service=membership, email="ren.ito@example.jp", points=90)
    earlier = make_account("OS-100245", service=store, email=EMAIL, points=500)
    LegacyAccount.objects.filter(pk=earlier.pk).update(owner=customer, linked_at=earlier.updated_at)
    return theirs


def _service_section(page: Page, code: str) -> Locator:
    return page.locator(f"main section[aria-labelledby='service-{code}']")


def _sign_in(page: Page, site: str) -> None:
    page.goto(site + "/accounts/login/")
    page.get_by_label(_EMAIL_LABEL).fill(EMAIL)
    page.get_by_label(_PASSWORD_LABEL).fill(PASSWORD)
    submit(page, "/accounts/login/")
    expect(page).to_have_url(site + "/me/")


def _newest_code_in_mailbox(page: Page, site: str) -> str:
    page.goto(site + "/mailbox/")
    newest = page.locator("article.mail").first
    expect(newest.locator(".mail-to")).to_contain_text("Misaki.Watanabe@example.jp")
    expect(newest.locator(".mail-subject")).to_contain_text("店舗会員")
    body = newest.locator(".mail-body").inner_text()
    found = _SIX_DIGITS.search(body)
    assert found, body
    return found.group()


def _enter_code(page: Page, code: str) -> None:
    form = page.locator("main form").filter(has=page.locator("input[name=code]"))
    form.get_by_label(_CODE_LABEL).fill(code)
    form.locator("button[type=submit]").click()


def _age_the_sign_in(page: Page) -> None:
    """Make the sign-in an hour old, as when the customer comes back later in the day:
    unlinking then asks for the password again."""
    cookie = next(c for c in page.context.cookies() if c["name"] == settings.SESSION_COOKIE_NAME)
    session = SessionStore(session_key=cookie["value"])
    methods = session["account_authentication_methods"]
    session["account_authentication_methods"] = [
        {**method, "at": method["at"] - timedelta(hours=1).total_seconds()} for method in methods
    ]
    session.save()


@pytest.mark.browser
def test_a_customer_links_a_suggested_account_with_a_mailed_code_and_unlinks_it(
    page: Page, live_site: str, legacy: LegacyAccount
):
    _sign_in(page, live_site)
    page.locator("main a[href='/link/']").first.click()
    expect(page).to_have_url(live_site + "/link/")

    membership = _service_section(page, "store-membership")
    suggestion = membership.locator("ul.suggestions li")
    expect(suggestion).to_have_count(1)
    expect(suggestion).to_contain_text(MASKED)
    expect(page.locator("main")).not_to_contain_text(MEMBER_NUMBER)
    expect(page.locator("main")).not_to_contain_text(OTHER_PERSONS_NUMBER[-4:])
    expect(page.get_by_test_id("total-points")).to_have_text("500")

    suggestion.get_by_role("link").click()
    expect(page).to_have_url(f"{live_site}/link/account/{legacy.pk}/code/")
    expect(page.locator("main")).to_contain_text(MASKED)
    expect(page.locator("main")).not_to_contain_text(MEMBER_NUMBER)
    send = page.locator("main form").filter(has=page.locator("input[name=channel]"))
    expect(send.locator("input[name=channel][value=email]")).to_be_checked()
    expect(send).to_contain_text("m***@example.jp")
    send.locator("button[type=submit]").click()
    # Signed in with the password a moment ago: that counts as step-up for linking.
    expect(page).to_have_url(f"{live_site}/link/account/{legacy.pk}/code/")
    expect(page.locator(".messages")).to_contain_text("m***@example.jp")

    code = _newest_code_in_mailbox(page, live_site)
    page.go_back()
    expect(page).to_have_url(f"{live_site}/link/account/{legacy.pk}/code/")

    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    _enter_code(page, wrong)
    expect(page).to_have_url(f"{live_site}/link/account/{legacy.pk}/code/")
    expect(page.locator(".messages .error")).to_have_text(
        "コードが正しくありません。あと4回お試しいただけます。"
    )
    legacy.refresh_from_db()
    assert legacy.owner is None

    _enter_code(page, code)
    expect(page).to_have_url(live_site + "/link/")
    expect(page.locator(".messages .success")).to_contain_text("連携が完了しました")
    linked = _service_section(page, "store-membership").locator("ul.linked li")
    expect(linked).to_have_count(1)
    expect(linked).to_contain_text(MASKED)
    expect(linked).to_contain_text("3,200ポイント")
    expect(_service_section(page, "store-membership").locator("ul.suggestions")).to_have_count(0)
    expect(page.get_by_test_id("total-points")).to_have_text("3,700")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.screenshot(path=screenshot_path("journey-linking-linked"), full_page=True)
    legacy.refresh_from_db()
    assert legacy.owner.email == EMAIL
    assert LinkEvent.objects.get(account=legacy).proof == "code"

    _age_the_sign_in(page)
    linked.get_by_role("link", name="連携を解除").click()
    expect(page).to_have_url(re.compile(re.escape(live_site) + r"/accounts/reauthenticate/"))
    page.get_by_label(_PASSWORD_LABEL).fill(PASSWORD)
    submit(page, "/accounts/reauthenticate/")
    expect(page).to_have_url(f"{live_site}/link/account/{legacy.pk}/unlink/")
    expect(page.locator("main")).to_contain_text(MASKED)
    page.get_by_label(re.compile("はい、このアカウントの連携を解除します")).check()
    page.locator("main form button[type=submit]").click()

    expect(page).to_have_url(live_site + "/link/")
    expect(page.locator(".messages .success")).to_contain_text("連携を解除しました")
    membership = _service_section(page, "store-membership")
    expect(membership.locator("ul.linked")).to_have_count(0)
    expect(membership.locator("ul.suggestions li")).to_contain_text(MASKED)
    expect(page.get_by_test_id("total-points")).to_have_text("500")
    legacy.refresh_from_db()
    assert legacy.owner is None
    assert [e.action for e in LinkEvent.objects.filter(account=legacy).order_by("id")] == [
        "link",
        "unlink",
    ]
    assert AuditEvent.objects.filter(account=legacy, action="proof_failed").count() == 1
