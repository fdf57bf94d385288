"""In a real browser: staff open a candidate group found by matching, read the
evidence per field and confirm it; the customer who owns one of its accounts sees
the others as "these may also be yours", and linking one still asks for a proof."""

import datetime
import re

import pytest
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import expect

from linking import claims
from linking.matching.models import CandidateGroup, MatchRun
from linking.models import LegacyAccount
from tests.conftest import PASSWORD
from tests.fixtures.browser import submit

pytestmark = pytest.mark.browser
EMAIL = "misaki.sato@example.jp"


def test_staff_confirm_a_group_and_the_customer_still_proves_each_account(
    new_context, page, live_site, make_staff, make_service, make_account, make_customer, settings
):
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    shop = make_service("shop", name_ja="オンラインストア")
    card = make_service("card", proofs=("code",), name_ja="店舗会員")
    born = datetime.date(1985, 7, 3)
    owned = make_account(
        "OS-1001", service=shop, name="佐藤 美咲", name_kana="サトウ ミサキ", email=EMAIL,
        phone="090-1111-2222", birth_date=born,
    )  # fmt: skip
    other = make_account(
        "SM-2002", service=card, name="佐藤美咲", name_kana="ｻﾄｳﾐｻｷ",
        phone="０９０－１１１１－２２２２", birth_date=born,
    )  # fmt: skip
    customer = make_customer(EMAIL)
    claims.link(account=owned, customer=customer, proof="password", request=None)
    group = CandidateGroup.objects.create(
        run=MatchRun.objects.create(status=MatchRun.Status.DONE),
        probability=0.998,
        evidence=[
            {
                "a": owned.pk,
                "b": other.pk,
                "probability": 0.998,
                "weights": {"name_key": 7.5, "phone": 11.2, "birth": 8.9, "email": 0.0},
            }
        ],
    )
    group.members.create(account=owned)
    group.members.create(account=other)
    staff = make_staff("admin@example.jp", superuser=True)

    context = new_context()
    admin = context.new_page()
    admin.goto(live_site + "/admin/matching/candidategroup/")
    admin.fill("input[name=username]", staff.email)
    admin.fill("input[name=password]", PASSWORD)
    admin.locator("form#login-form [type=submit]").click()
    device = TOTPDevice.objects.get(user=staff)
    admin.fill("input[name=token]", f"{totp(device.bin_key):06d}")
    admin.locator("#content form [type=submit]").first.click()
    admin.get_by_role("link", name=f"#{group.pk}").click()
    evidence = admin.get_by_test_id("evidence")
    expect(evidence).to_contain_text("電話番号")
    expect(evidence).to_contain_text("11.20")
    expect(admin.get_by_test_id("accounts")).to_contain_text("SM-2002")
    admin.get_by_role("button", name=re.compile("同一人物")).click()
    expect(admin.locator("ul.messagelist")).to_contain_text("同一人物")
    group.refresh_from_db()
    assert group.status == CandidateGroup.Status.CONFIRMED

    page.goto(live_site + "/accounts/login/")
    page.get_by_label(re.compile(r"^メールアドレス:?$")).fill(EMAIL)
    page.get_by_label(re.compile(r"^パスワード:?$")).fill(PASSWORD)
    submit(page, "/accounts/login/")
    page.goto(live_site + "/link/")
    also = page.get_by_test_id("also-yours")
    expect(also).to_contain_text("****2002")
    also.get_by_role("link").click()
    expect(page).to_have_url(re.compile(r"/link/service/card/"))
    expect(page.locator("input[name=num-external_id]")).to_be_visible()
    assert LegacyAccount.objects.get(pk=other.pk).owner_id is None
