"""The link-rate dashboard: figures equal hand-computed ones on a known dataset,
whether counted live or from the stored daily figures; constant query count; CSV
export safe for spreadsheets; bad input never fails."""

import csv
import io
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from linking import spreadsheet
from linking.campaigns.models import Campaign, Delivery
from linking.models import LegacyAccount, LinkEvent, StatsDay
from linking.staff import stats
from tests.fixtures.staff import verified_login

pytest_plugins = ["tests.fixtures.campaigns"]

TODAY = timezone.localdate()


def _at(days_ago: int, hour: int = 12):
    return stats.day_start(TODAY - timedelta(days=days_ago)) + timedelta(hours=hour)


def _link(account, customer, days_ago: int, proof: str, campaign_id=None) -> None:
    LegacyAccount.objects.filter(pk=account.pk).update(owner=customer, linked_at=_at(days_ago))
    LinkEvent.objects.create(
        account=account,
        customer=customer,
        customer_unified_id=customer.unified_id,
        action="link",
        proof=proof,
        actor_kind="customer",
        campaign_id=campaign_id,
        created_at=_at(days_ago),
    )


def _unlink(account, customer, days_ago: int) -> None:
    LegacyAccount.objects.filter(pk=account.pk).update(owner=None, linked_at=None)
    LinkEvent.objects.create(
        account=account,
        customer=customer,
        customer_unified_id=customer.unified_id,
        action="unlink",
        actor_kind="customer",
        created_at=_at(days_ago),
    )


@pytest.fixture
def dataset(service, make_service, make_account, make_customer, make_campaign):
    """store: 4 accounts imported 10 days ago; app: 2 accounts imported 3 days ago.
    Links: store A1 (password, 5 days ago), A2 (code, 2 days ago), A3 (campaign,
    5 days ago, unlinked yesterday); app B1 (oidc, today)."""
    store, app = service, make_service("app")
    a = [
        make_account(f"A{i}", service=store, email=f"a{i}@example.jp", imported_at=_at(10))
        for i in range(1, 5)
    ]
    b = [make_account(f"B{i}", service=app, imported_at=_at(3)) for i in range(1, 3)]
    hanako, taro, jiro = (make_customer(f"{n}@example.jp") for n in ("hanako", "taro", "jiro"))
    campaign = make_campaign(name="春の連携", services=[store], steps=(0, 1))
    Campaign.objects.filter(pk=campaign.pk).update(status="sending", started_at=_at(6))
    _link(a[0], hanako, 5, "password")
    _link(a[2], taro, 5, "campaign", campaign_id=campaign.pk)
    _link(a[1], jiro, 2, "code")
    _unlink(a[2], taro, 1)
    _link(
        b[0],
        hanako,
        0,
        "oidc",
    )
    # Funnel: step 0 to all four store accounts, step 1 to two.
    for account, status, clicked, linked, unsub, bounced in [
        (a[0], "sent", True, False, False, False),
        (a[1], "sent", True, False, True, False),
        (a[2], "sent", True, True, False, False),
        (a[3], "failed", False, False, False, False),
    ]:
        _delivery(campaign, 0, account, status, clicked, linked, unsub, bounced)
    _delivery(campaign, 1, a[1], "sent", False, False, False, True)
    _delivery(campaign, 1, a[3], "pending", False, False, False, False)
    return {"store": store, "app": app, "campaign": campaign}


def _delivery(campaign, step, account, status, clicked, linked, unsub, bounced) -> None:
    when = _at(4)
    Delivery.objects.create(
        campaign=campaign,
        step=step,
        account=account,
        email=account.email or "x@example.jp",
        email_key=account.email_key or "x@example.jp",
        language="ja",
        status=status,
        sent_at=when if status in Delivery.REACHED else None,
        clicked_at=when if clicked else None,
        linked_at=when if linked else None,
        unsubscribed_at=when if unsub else None,
        bounced_at=when if bounced else None,
    )


def _check(board) -> None:
    by_code = {row.service.code: row for row in board.services}
    assert (by_code["store"].accounts, by_code["store"].linked) == (4, 2)
    assert by_code["store"].rate == 0.5
    assert (by_code["app"].accounts, by_code["app"].linked) == (2, 1)
    assert (board.totals.accounts, board.totals.linked) == (6, 3)
    days = {d.start: d for d in board.days}
    expected = {  # days ago: links, unlinks, accounts, linked at the end of the day
        7: (0, 0, 4, 0),
        5: (2, 0, 4, 2),
        3: (0, 0, 6, 2),
        2: (1, 0, 6, 3),
        1: (0, 1, 6, 2),
        0: (1, 0, 6, 3),
    }
    for ago, figures in expected.items():
        day = days[TODAY - timedelta(days=ago)]
        assert (day.links, day.unlinks, day.accounts, day.linked) == figures, ago
    assert days[TODAY - timedelta(days=3)].rate == pytest.approx(2 / 6)
    assert board.proofs == {"password": 1, "campaign": 1, "code": 1, "oidc": 1}
    assert sum(w.links for w in board.weeks) == 4
    assert board.weeks[-1].linked == 3
    steps = {(f.campaign_name, f.step): f for f in board.funnel}
    first = steps[("春の連携", 0)]
    assert (first.audience, first.sent, first.failed, first.clicked) == (4, 3, 1, 3)
    assert (first.linked, first.unsubscribed, first.bounced) == (1, 1, 0)
    assert first.click_rate == 1.0 and first.link_rate == pytest.approx(1 / 3)
    second = steps[("春の連携", 1)]
    assert (second.audience, second.sent, second.bounced, second.clicked) == (2, 1, 1, 0)
    assert second.click_to_link is None


def test_figures_counted_live_equal_hand_computed_ones(dataset):
    assert not StatsDay.objects.exists()
    _check(stats.dashboard(TODAY - timedelta(days=7), TODAY))


def test_figures_from_stored_days_equal_the_live_ones(dataset):
    stats.refresh()
    assert stats.last_final_day() is not None
    _check(stats.dashboard(TODAY - timedelta(days=7), TODAY))
    # A second refresh changes nothing.
    stats.refresh()
    _check(stats.dashboard(TODAY - timedelta(days=7), TODAY))


def test_a_range_that_starts_after_the_events_carries_their_totals(dataset):
    stats.refresh()
    board = stats.dashboard(TODAY - timedelta(days=1), TODAY)
    assert [(d.links, d.unlinks, d.linked, d.accounts) for d in board.days] == [
        (0, 1, 2, 6),
        (1, 0, 3, 6),
    ]
    assert board.proofs == {"oidc": 1}


def test_the_page_shows_the_figures_with_charts(client, dataset, make_staff):
    verified_login(client, make_staff(role="analyst"))
    page = client.get("/admin/dashboard/").content.decode()
    assert "50.00%" in page
    assert page.count('<svg class="chart"') == 2
    assert "春の連携" in page
    assert 'style="' not in page


def test_query_count_does_not_grow_with_rows(
    client, dataset, make_staff, make_service, make_account, make_customer, make_campaign
):
    verified_login(client, make_staff(role="analyst"))
    stats.refresh()
    cache.clear()  # funnels counted live in both runs
    with CaptureQueriesContext(connection) as small:
        assert client.get("/admin/dashboard/").status_code == 200
    pos = make_service("pos")
    other = make_customer("other@example.jp")
    for i in range(5):
        account = make_account(f"P{i}", service=pos, imported_at=_at(8))
        _link(account, other if i == 0 else make_customer(f"p{i}@example.jp"), i, "code")
    campaign = make_campaign(name="秋", services=[pos], steps=(0,))
    Campaign.objects.filter(pk=campaign.pk).update(status="sending", started_at=_at(2))
    _delivery(campaign, 0, account, "sent", True, False, False, False)
    cache.clear()
    with CaptureQueriesContext(connection) as large:
        assert client.get("/admin/dashboard/").status_code == 200
    assert len(large) == len(small)
    assert len(small) <= 16


def test_csv_export_has_the_same_numbers_and_escapes_formulas(client, dataset, make_staff):
    dataset["store"].name_ja = '=HYPERLINK("http://evil.example")'
    dataset["store"].save()
    Campaign.objects.filter(pk=dataset["campaign"].pk).update(name="@SUM(A1)")
    verified_login(client, make_staff(role="analyst"))
    response = client.get("/admin/dashboard.csv")
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    cells = [cell for row in rows for cell in row]
    assert '\'=HYPERLINK("http://evil.example")' in cells
    assert "'@SUM(A1)" in cells
    assert not any(cell.startswith(("=", "+", "-", "@")) for cell in cells)
    store = next(row for row in rows if row and row[0].endswith('evil.example")'))
    assert store[1:] == ["4", "2", "50.00%"]


def test_unconfirmed_emails_are_shown_and_count_as_reached(
    client, make_staff, service, make_account, make_campaign
):
    """A click from an email whose hand-over was never confirmed proves it arrived:
    the rates count unconfirmed emails with the sent ones, never above 100%."""
    campaign = make_campaign(name="夏", services=[service], steps=(0,))
    Campaign.objects.filter(pk=campaign.pk).update(status="sending", started_at=_at(6))
    for i, (status, clicked) in enumerate(
        [("sent", True), ("sent", False), ("unconfirmed", True), ("unconfirmed", False)]
    ):
        account = make_account(f"U{i}", service=service, email=f"u{i}@example.jp")
        _delivery(campaign, 0, account, status, clicked, False, False, False)
    (step,) = stats.funnel(TODAY - timedelta(days=7), TODAY)
    assert (step.audience, step.sent, step.unconfirmed, step.clicked) == (4, 2, 2, 2)
    assert step.click_rate == 0.5
    verified_login(client, make_staff(role="analyst"))
    page = client.get("/admin/dashboard/", HTTP_ACCEPT_LANGUAGE="ja").content.decode()
    assert '<th class="num">未確認</th>' in page
    rows = list(
        csv.reader(io.StringIO(client.get("/admin/dashboard.csv").content.decode("utf-8-sig")))
    )
    assert [
        *("夏", "0", "メール", "4", "2", "2", "0", "2", "0", "0", "0"),
        *("50.00%", "0.00%", "0.00%"),
    ] in rows


@pytest.mark.parametrize("value", ["=1+2", "+1", "-1", "@x", "\tx", "\rx"])
def test_cells_a_spreadsheet_would_run_get_an_apostrophe(value):
    assert spreadsheet.safe_cell(value) == "'" + value


def test_plain_cells_stay(value="山田", number=-3):
    assert spreadsheet.safe_cell(value) == value
    assert spreadsheet.safe_cell(number) == number


@pytest.mark.parametrize(
    "query",
    ["start=yesterday", "start=2026-13-40", "start=2026-05-02&end=2026-05-01", "start=1900-01-01"],
)
def test_bad_ranges_fall_back_to_the_last_30_days(client, make_staff, query, service):
    verified_login(client, make_staff(role="analyst"))
    assert client.get(f"/admin/dashboard/?{query}").status_code == 200
    assert client.get(f"/admin/dashboard.csv?{query}").status_code == 200


def test_refresh_is_a_post(client, make_staff, dataset):
    verified_login(client, make_staff(role="analyst"))
    assert client.get("/admin/dashboard/refresh/").status_code == 405
    assert client.post("/admin/dashboard/refresh/").status_code == 302
    assert StatsDay.objects.exists()


def test_customers_and_staff_without_the_permission_see_no_dashboard(client, make_staff):
    verified_login(client, make_staff())
    assert client.get("/admin/dashboard/").status_code == 403


def test_the_funnel_and_link_rate_are_split_by_channel(
    client, make_staff, service, make_account, make_campaign
):
    campaign = make_campaign(name="冬", services=[service], steps=(0,))
    Campaign.objects.filter(pk=campaign.pk).update(status="sending", started_at=_at(3))
    for i, (channel, clicked, linked) in enumerate(
        [
            ("line", True, True),
            ("line", True, False),
            ("line", False, False),
            ("email", True, False),
        ]
    ):
        account = make_account(f"C{i}", service=service, email=f"c{i}@example.jp")
        _delivery(campaign, 0, account, "sent", clicked, linked, False, False)
        Delivery.objects.filter(account=account).update(
            channel=channel, line_user_id="U" + f"{i:x}" * 32 if channel == "line" else ""
        )
    cache.clear()

    board = stats.dashboard(TODAY - timedelta(days=7), TODAY)

    rows = {(f.step, f.channel): (f.sent, f.clicked, f.linked) for f in board.funnel}
    assert rows == {(0, "email"): (1, 1, 0), (0, "line"): (3, 2, 1)}
    figures = {c.channel: (c.reached, c.clicked, c.linked, c.link_rate) for c in board.channels}
    assert figures == {"email": (1, 1, 0, 0.0), "line": (3, 2, 1, pytest.approx(1 / 3))}
    verified_login(client, make_staff(role="analyst"))
    page = client.get("/admin/dashboard/", HTTP_ACCEPT_LANGUAGE="ja").content.decode()
    assert "送信方法別のキャンペーン成果" in page
    assert '<tr><td>LINE</td><td class="num">3</td><td class="num">2</td>' in page
    assert "<td>メール</td>" in page
