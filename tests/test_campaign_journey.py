"""A legacy customer on a phone follows the personal link in a campaign email, creates
a unified ID (sign-up and email verification in between), confirms once, and the
account from the email is linked, attributed to the campaign."""

import re

import pytest
from playwright.sync_api import Page, expect

from accounts.models import Customer
from config.mailbox import read_messages
from linking.campaigns import control, planning, selectors, sending
from linking.campaigns.models import Delivery
from linking.models import LinkEvent
from tests.conftest import PASSWORD
from tests.fixtures.browser import screenshot_path, submit

pytest_plugins = ["tests.fixtures.campaigns"]

EMAIL = "kenta.sato@example.jp"


def _link_from_mailbox(site: str, to: str, path: str) -> str:
    for message in read_messages():
        if to in message["to"]:
            found = re.search(re.escape(site) + path + r"[^\s<>]+/", message["body"])
            if found:
                return found.group()
    raise AssertionError(f"no mail to {to} with a link to {path}")


@pytest.mark.browser
def test_a_legacy_customer_links_through_the_campaign_link(
    page: Page, live_site: str, settings, make_campaign, make_account, make_service
):
    settings.SITE_URL = live_site
    shop = make_service("shop", proofs=("campaign",), incentive_ja="連携すると500ポイント進呈")
    account = make_account("S0098765", service=shop, email=EMAIL, name="佐藤 健太")
    make_account("S0011111", service=shop, email="someone.else@example.jp")
    campaign = make_campaign(services=[shop])
    control.start(campaign)
    planning.plan_step(campaign=campaign, number=0)
    sending.send_chunk(campaign.pk)

    page.goto(_link_from_mailbox(live_site, EMAIL, "/c/l/"))
    expect(page.get_by_test_id("incentive")).to_have_text("連携すると500ポイント進呈")
    expect(page.get_by_test_id("member-number")).to_have_text("****8765")
    page.get_by_test_id("campaign-signup").click()
    page.get_by_label(re.compile(r"^メールアドレス:?$")).fill(EMAIL)
    page.get_by_label(re.compile(r"^パスワード:?$")).fill(PASSWORD)
    page.get_by_label(re.compile(r"^パスワード \(再入力\):?$")).fill(PASSWORD)
    submit(page, "/accounts/signup/")
    expect(page).to_have_url(live_site + "/accounts/confirm-email/")

    page.goto(_link_from_mailbox(live_site, EMAIL, "/accounts/confirm-email/"))
    submit(page, "/accounts/confirm-email/")
    expect(page).to_have_url(live_site + "/c/confirm/")
    page.screenshot(path=screenshot_path("journey-campaign-confirm"), full_page=True)
    # Signing up and confirming the address just now was the sign-in: no password again.
    submit(page, "/c/confirm/")
    expect(page).to_have_url(live_site + "/link/")
    expect(page.locator(".linked .member-number")).to_have_text("****8765")
    customer = Customer.objects.get(email=EMAIL)
    account.refresh_from_db()
    assert account.owner == customer
    event = LinkEvent.objects.get(account=account)
    assert (event.proof, event.campaign_id) == ("campaign", campaign.pk)
    assert Delivery.objects.get(account=account).linked_at is not None
    counts = selectors.progress(campaign)
    assert (counts["sent"], counts["clicked"], counts["linked"]) == (2, 1, 1)
