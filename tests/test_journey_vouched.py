"""A customer signed in at a group service's online store presses 「統合IDと連携する」:
the store's backend pushes a link request, the browser signs up here, confirms and
is back at the store, whose backend exchanges the code for the unified ID. The store
is a small real HTTP server run by this test."""

import json
import re
import secrets
import threading
import urllib.request
from base64 import b64encode
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.test import Client as DjangoClient
from playwright.sync_api import Page, expect

from accounts.models import Customer
from config.mailbox import read_messages
from linking.models import LinkEvent
from tests.conftest import PASSWORD
from tests.fixtures.browser import screenshot_path, submit
from tests.fixtures.staff import verified_login

pytest_plugins = ["tests.fixtures.api"]

EMAIL = "yui.kobayashi@example.jp"
MEMBER = "ST-55501234"


class Store:
    """The store: its own sign-in (a cookie), a page with the link button, and a
    backend that talks to the site's API with its client credentials."""

    def __init__(self, site: str, client_id: str, secret: str) -> None:
        self.site, self.client_id, self.secret = site, client_id, secret
        self.sessions: dict[str, dict] = {}
        self.results: list[dict] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> "Store":
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _api(self, path: str, body: dict, token: str) -> dict:
        request = urllib.request.Request(
            f"{self.site}/api/v1/{path}",
            data=json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.load(answer)

    def _token(self) -> str:
        basic = b64encode(f"{self.client_id}:{self.secret}".encode()).decode()
        request = urllib.request.Request(
            f"{self.site}/identity/o/api/token",
            data=urlencode({"grant_type": "client_credentials", "scope": "link_requests"}).encode(),
            headers={"Authorization": f"Basic {basic}"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.load(answer)["access_token"]

    def _handler(self):
        store = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def session(self) -> dict | None:
                cookie = SimpleCookie(self.headers.get("Cookie", ""))
                sid = cookie["sid"].value if "sid" in cookie else ""
                return store.sessions.get(sid)

            def reply(self, status: int, body: str = "", headers: dict | None = None) -> None:
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.end_headers()
                self.wfile.write(body.encode())

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                query = parse_qs(url.query)
                if url.path == "/login":
                    sid = secrets.token_urlsafe(16)
                    store.sessions[sid] = {"member": query["member"][0]}
                    self.reply(302, headers={"Set-Cookie": f"sid={sid}", "Location": "/mypage"})
                elif url.path == "/mypage" and self.session():
                    button = "<button>統合IDと連携する</button>"
                    self.reply(200, f'<form method="post" action="/link">{button}</form>')
                elif url.path == "/return" and (session := self.session()):
                    if query.get("state") != [session.get("state")]:
                        self.reply(400, "state mismatch")
                        return
                    result = store._api("link-results", {"code": query["code"][0]}, store._token())
                    store.results.append(result)
                    self.reply(200, f'<p id="result">{result["result"]} {result["unified_id"]}</p>')
                else:
                    self.reply(404, "not found")

            def do_POST(self) -> None:
                session = self.session()
                if self.path != "/link" or session is None:
                    self.reply(404, "not found")
                    return
                session["state"] = secrets.token_urlsafe(16)
                pushed = store._api(
                    "link-requests",
                    {
                        "service": "store",
                        "external_id": session["member"],
                        "return_url": store.url + "/return",
                        "state": session["state"],
                    },
                    store._token(),
                )
                self.reply(303, headers={"Location": pushed["url"]})

        return Handler


def _confirmation_link(site: str) -> str:
    for message in read_messages():
        if EMAIL in message["to"]:
            found = re.search(
                re.escape(site) + r"/accounts/confirm-email/[^\s<>]+/", message["body"]
            )
            if found:
                return found.group()
    raise AssertionError("no confirmation mail")


@pytest.fixture
def store(live_site, settings, make_client, service, make_account):
    settings.SITE_URL = live_site
    service.accepted_proofs = ["vouched"]
    service.name_ja, service.incentive_ja = "オンラインストア", "連携で300ポイント"
    service.save()
    make_account(MEMBER, service=service, points=300)
    backend = make_client("online store", services=[service])
    running = Store(live_site, backend.client_id, backend.secret)
    backend.access.return_urls = [running.url + "/return"]
    backend.access.save()
    yield running.start()
    running.stop()


@pytest.mark.browser
def test_a_store_customer_links_from_the_store_and_the_store_learns_the_unified_id(
    page: Page, live_site: str, store: Store, make_staff
):
    page.goto(f"{store.url}/login?member={MEMBER}")
    page.get_by_role("button", name="統合IDと連携する").click()

    # Here: not signed in, so the sign-in page, whose sign-up link keeps the way back.
    expect(page).to_have_url(re.compile(re.escape(live_site) + r"/accounts/login/\?next="))
    page.locator("main a[href^='/accounts/signup/?next=']").click()
    page.get_by_label(re.compile(r"^メールアドレス:?$")).fill(EMAIL)
    page.get_by_label(re.compile(r"^パスワード:?$")).fill(PASSWORD)
    page.get_by_label(re.compile(r"^パスワード \(再入力\):?$")).fill(PASSWORD)
    submit(page, "/accounts/signup/")
    expect(page).to_have_url(live_site + "/accounts/confirm-email/")
    page.goto(_confirmation_link(live_site))
    submit(page, "/accounts/confirm-email/")

    expect(page).to_have_url(re.compile(re.escape(live_site) + r"/link/from-service/"))
    expect(page.get_by_test_id("service-name")).to_have_text("オンラインストア")
    expect(page.get_by_test_id("member-number")).to_have_text("****1234")
    expect(page.get_by_test_id("incentive")).to_have_text("連携で300ポイント")
    page.screenshot(path=screenshot_path("journey-vouched-confirm"), full_page=True)
    page.get_by_test_id("confirm-link").click()

    expect(page).to_have_url(re.compile(re.escape(store.url) + r"/return\?code="))
    customer = Customer.objects.get(email=EMAIL)
    expect(page.locator("#result")).to_have_text(f"linked {customer.unified_id}")
    assert customer.unified_id not in page.url
    assert [result["unified_id"] for result in store.results] == [customer.unified_id]
    assert LinkEvent.objects.get(account__external_id=MEMBER).proof == "vouched"

    page.goto(live_site + "/link/")
    expect(page.locator(".linked .member-number")).to_have_text("****1234")

    staff = verified_login(DjangoClient(), make_staff(role="analyst"))
    dashboard = staff.get("/admin/dashboard/", HTTP_ACCEPT_LANGUAGE="ja").content.decode()
    proofs = dashboard.split('data-testid="proofs"')[1].split("</table>")[0]
    assert re.search(r"サービスによる本人確認</td><td class=\"num\">1<", proofs), proofs
