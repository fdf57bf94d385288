"""A new customer's whole way through the site, on a 360 px phone in Japanese: sign up,
confirm, link an account by each proof (legacy password, mailed code, email match),
turn on two-step verification, download their data and delete the unified ID. On
every page: axe-core finds nothing, no English word of the catalogues shows, nothing
is wider than the screen."""

import json
import re

import pytest
from django.contrib.auth.hashers import make_password
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import Page, expect

from accounts.models import Customer
from linking.models import LegacyAccount
from tests.conftest import PASSWORD
from tests.english_words import english_on
from tests.fixtures.browser import PHONE, audit, screenshot_path, squeezed, submit
from tests.fixtures.mfa import code

EMAIL = "hanako.yamada@example.jp"
STORE_PASSWORD = "store-Pass-2026"
_SIX_DIGITS = re.compile(r"(?<!\d)\d{6}(?!\d)")


@pytest.fixture
def services(service, make_service, make_account) -> dict[str, LegacyAccount]:
    service.name_ja, service.name_en = "ポイントカード", "Points card"
    service.save()
    shop = make_service(
        "shop",
        proofs=("password",),
        name_ja="オンラインストア",
        name_en="Online store",
        incentive_ja="連携すると 500 ポイントをプレゼント",
    )
    pos = make_service("pos", proofs=("code",), name_ja="店舗会員", name_en="Store membership")
    news = make_service(
        "news", proofs=("email_match",), name_ja="メールマガジン", name_en="Newsletter"
    )
    return {
        "password": make_account(
            "OS-100245", service=shop, points=1280, password_hash=make_password(STORE_PASSWORD)
        ),
        "code": make_account(
            "2000123456789", service=pos, email="h.yamada@example.net", points=640
        ),
        "email_match": make_account("NL-88812", service=news, email=EMAIL.upper()),
    }


def look(page: Page) -> None:
    """What every page must be: accessible, Japanese, no wider than the phone, no
    heading, label or cell squeezed to one character a line."""
    expect(page.locator("html")).to_have_attribute("lang", "ja")
    audit(page)
    shown = " ".join(page.locator(part).inner_text() for part in ("main", "nav", "footer"))
    assert not english_on(shown), f"{page.url}: English {english_on(shown)} in {shown!r}"
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], page.url
    words = "h1, h2, h3, legend, label, th, td, dt, dd, button, .button"
    assert squeezed(page, words) == [], f"{page.url}: one character a line"


def go(page: Page, url: str) -> None:
    expect(page).to_have_url(re.compile(re.escape(url) + r"(\?.*)?$"))
    look(page)


def newest_mail(page: Page, site: str, to: str) -> str:
    page.goto(site + "/mailbox/")
    audit(page)  # a tool for developers: dates and headers as mail programs show them
    newest = page.locator("article.mail").first
    expect(newest.locator(".mail-to")).to_contain_text(to)
    body = newest.locator(".mail-body").inner_text()
    assert not english_on(body), f"English {english_on(body)} in the mail: {body}"
    return body


def test_a_customer_signs_up_links_by_every_proof_turns_on_mfa_exports_and_leaves(
    page: Page, live_site: str, services
):
    site = live_site
    page.goto(site + "/")
    look(page)
    expect(page.locator("link[rel=icon]")).to_have_attribute("href", re.compile(r"favicon"))
    page.keyboard.press("Tab")  # the first stop skips the header
    expect(page.get_by_role("link", name="本文へ移動")).to_be_focused()
    page.locator("main a[href='/accounts/signup/']").first.click()
    go(page, site + "/accounts/signup/")
    expect(page.get_by_test_id("signup-terms").locator("a[href='/terms/']")).to_be_visible()
    page.get_by_label("メールアドレス", exact=True).fill(EMAIL)
    page.get_by_label("パスワード", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="パスワードを表示").first.click()
    expect(page.get_by_label("パスワード", exact=True)).to_have_attribute("type", "text")
    page.get_by_role("button", name="パスワードを隠す").first.click()
    expect(page.get_by_label("パスワード", exact=True)).to_have_attribute("type", "password")
    page.get_by_label("パスワード (再入力)", exact=True).fill(PASSWORD)
    submit(page, "/accounts/signup/")
    go(page, site + "/accounts/confirm-email/")

    body = newest_mail(page, site, EMAIL)
    page.goto(re.search(re.escape(site) + r"/accounts/confirm-email/\S+?/(?=\s|$)", body).group())
    look(page)
    submit(page, "/accounts/confirm-email/")
    go(page, site + "/me/")
    customer = Customer.objects.get(email=EMAIL)

    # 1. The legacy password: a wrong one keeps the member number, then the right one.
    page.locator("main a[href='/link/']").first.click()
    go(page, site + "/link/")
    page.get_by_role("link", name="オンラインストアのアカウントを連携する").click()
    go(page, site + "/link/service/shop/")
    page.get_by_label("会員番号").fill("OS-100245")
    page.get_by_label("そのサービスでのパスワード").fill("not-the-password")
    submit(page, "/link/service/shop/")
    look(page)
    expect(page.get_by_label("会員番号")).to_have_value("OS-100245")
    legacy_password = page.get_by_label("そのサービスでのパスワード")
    expect(legacy_password).to_have_attribute("aria-invalid", "true")
    expect(legacy_password).to_be_focused()
    legacy_password.fill(STORE_PASSWORD)
    submit(page, "/link/service/shop/")
    go(page, site + "/link/")
    expect(page.locator(".messages")).to_contain_text("1,280 ポイント")
    shop = page.locator("section[aria-labelledby='service-shop']")
    expect(shop).to_contain_text("連携済み")
    expect(shop).not_to_contain_text("500 ポイントをプレゼント")

    # 2. A code mailed to the contact on the record.
    page.get_by_role("link", name="店舗会員のアカウントを連携する").click()
    go(page, site + "/link/service/pos/")
    page.get_by_label("会員番号").fill("2000123456789")
    submit(page, "/link/service/pos/")
    go(page, f"{site}/link/account/{services['code'].pk}/code/")
    page.locator("main form").filter(has=page.locator("input[name=channel]")).locator(
        "button[type=submit]"
    ).click()
    go(page, f"{site}/link/account/{services['code'].pk}/code/")
    mailed = _SIX_DIGITS.search(newest_mail(page, site, "h.yamada@example.net")).group()
    page.go_back()
    go(page, f"{site}/link/account/{services['code'].pk}/code/")
    page.get_by_label("確認コード").fill(mailed)
    page.locator("main form").filter(has=page.locator("input[name=code]")).locator(
        "button[type=submit]"
    ).click()
    go(page, site + "/link/")

    # 3. The same, confirmed email address.
    page.get_by_role("link", name=re.compile("自分のアカウントです.*メールマガジン")).click()
    go(page, f"{site}/link/suggested/{services['email_match'].pk}/")
    page.locator("main form button[type=submit]").click()
    go(page, site + "/link/")
    expect(page.get_by_test_id("total-points")).to_have_text("1,920")
    assert LegacyAccount.objects.filter(owner=customer).count() == 3
    page.screenshot(path=screenshot_path("journey-customer-linked"), full_page=True)

    # Two-step verification with an authenticator app, and the backup codes.
    page.goto(site + "/me/")
    page.get_by_test_id("me-mfa").click()
    go(page, site + "/accounts/2fa/")
    page.get_by_test_id("add-totp").click()
    go(page, site + "/accounts/reauthenticate/")
    page.get_by_label("パスワード", exact=True).fill(PASSWORD)
    submit(page, "/accounts/reauthenticate/")
    go(page, site + "/accounts/2fa/totp/add/")
    expect(page.locator("input[name=token]")).to_be_focused()
    device = TOTPDevice.objects.get(user=customer, confirmed=False)
    page.locator("input[name=token]").fill(code(device))
    submit(page, "/accounts/2fa/totp/add/")
    look(page)
    expect(page.get_by_test_id("backup-codes").locator("li")).to_have_count(10)
    expect(page.get_by_role("button", name="印刷")).to_be_visible()  # shown by site.js
    expect(page.get_by_role("button", name="コピー")).to_be_visible()
    with page.expect_download() as download:
        page.get_by_test_id("download-codes").click()
    saved = download.value.path().read_text()
    first = page.get_by_test_id("backup-codes").locator("li").first.inner_text()
    assert first in saved and download.value.suggested_filename.endswith(".txt")
    page.get_by_role("link", name="保存しました").click()
    go(page, site + "/accounts/2fa/")
    expect(page.get_by_test_id("mfa-status")).to_have_text("オン")

    # Where they are signed in, by device name.
    page.goto(site + "/me/")
    page.get_by_role("link", name="ログイン中の端末").click()
    go(page, site + "/accounts/sessions/")
    expect(page.locator("main h1")).to_have_text("ログイン中の端末")
    expect(page.get_by_test_id("sessions")).to_contain_text("この端末")

    # Their data, then leaving.
    page.goto(site + "/me/export/")
    look(page)
    with page.expect_download() as download:
        page.locator("main a[href*='download=1']").click()
    exported = json.loads(download.value.path().read_text())
    assert exported["profile"]["unified_id"] == customer.unified_id

    page.goto(site + "/me/delete/")
    look(page)
    page.locator("main input[type=checkbox]").check()
    submit(page, "/me/delete/")
    look(page)
    assert not Customer.objects.filter(pk=customer.pk).exists()
    assert not LegacyAccount.objects.filter(owner__isnull=False).exists()
