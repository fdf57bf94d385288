"""The browser fixture audits every page of the site a test passes through with
axe-core, also the pages a test leaves at once without asking for an audit; pages of
other hosts (the IdPs' fakes) are not ours to audit. squeezed() finds text wrapped to
one character a line."""

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import Page

from tests.fixtures.browser import HOLD_SECONDS, squeezed

pytestmark = pytest.mark.browser

# An image without alternative text: axe-core's "image-alt", a critical violation; the
# staff page without a level-one heading: "page-has-heading-one", a moderate one.
BAD = '<!doctype html><html lang="ja"><title>x</title><main><h1>x</h1><img src="/a.png"></main>'
GOOD = '<!doctype html><html lang="ja"><title>y</title><main><h1>y</h1></main>'
# A heading squeezed to one character a line next to one that reads normally.
SQUEEZED = (
    '<!doctype html><html lang="ja"><title>s</title><main><h1 style="width:1.2em">'
    "ポイント履歴</h1><h2>ポイント履歴</h2></main>"
)
MODERATE = '<!doctype html><html lang="ja"><title>z</title><main><p>z</p></main>'
# A page that has not loaded (an image still on its way) when a click leaves it.
SLOW = (
    '<!doctype html><html lang="ja"><title>w</title><main><h1>w</h1>'
    '<img src="/slow.png"><a href="/good/">next</a></main>'
)
# The same, left by a link that the site answers with a redirect to another host.
SLOW_OFF_SITE = SLOW.replace("/good/", "/off-site/")
PAGES = {
    "/slow-off-site/": SLOW_OFF_SITE,
    "/squeezed/": SQUEEZED,
    "/bad/": BAD,
    "/admin/bad/": BAD,
    "/admin/moderate/": MODERATE,
    "/good/": GOOD,
    "/slow/": SLOW,
    "/admin/good/": GOOD,
}


class _Pages(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/slow.png":
            time.sleep(HOLD_SECONDS + 1)
        if self.path == "/off-site/":
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.1:{self.server.server_port}/good/")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = PAGES.get(self.path.split("?")[0], "").encode()
        self.send_response(200 if body else 404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Pages)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_a_page_left_at_once_is_audited_before_the_next_one_loads(page: Page, port):
    site = f"http://localhost:{port}"
    page.goto(site + "/bad/")
    page.goto(site + "/good/")
    page.goto(site + "/good/?again")
    audit = page.axe_audit
    assert audit.pages == ["/bad/", "/good/"]
    assert [failure.split(":")[0] for failure in audit.failures] == ["/bad/"]
    assert "image-alt (critical)" in audit.failures[0]
    audit.failures.clear()  # seen: the fixture's own report at the end would fail


def test_a_page_a_click_leaves_before_it_loaded_is_audited_again_by_its_address(page: Page, port):
    page.goto(f"http://localhost:{port}/slow/", wait_until="commit")
    page.get_by_role("link", name="next").click()
    page.wait_for_url("**/good/")
    audit = page.axe_audit
    audit.finish(page.context)
    assert sorted(audit.pages) == ["/good/", "/slow/"]
    assert [failure.split(":")[0] for failure in audit.failures] == ["/slow/"]
    assert "image-alt (critical)" in audit.failures[0]
    audit.failures.clear()


def test_a_page_left_for_another_host_before_it_loaded_is_audited_again_and_not_awaited(
    page: Page, port
):
    page.goto(f"http://localhost:{port}/slow-off-site/", wait_until="commit")
    page.get_by_role("link", name="next").click()
    page.wait_for_url(f"http://127.0.0.1:{port}/good/")
    audit = page.axe_audit
    audit.finish(page.context)
    assert audit.pages == ["/slow-off-site/"]
    assert [failure.split(":")[0] for failure in audit.failures] == ["/slow-off-site/"]
    assert "image-alt (critical)" in audit.failures[0]
    audit.failures.clear()


def test_staff_pages_fail_only_on_critical_or_serious_and_others_are_not_audited(page: Page, port):
    site = f"http://localhost:{port}"
    page.goto(site + "/admin/bad/")
    page.goto(site + "/admin/moderate/")
    page.goto(f"http://127.0.0.1:{port}/bad/")
    page.goto(site + "/good/")
    audit = page.axe_audit
    assert audit.pages == ["/admin/bad/", "/admin/moderate/"]
    assert [failure.split(":")[0] for failure in audit.failures] == ["/admin/bad/"]
    audit.failures.clear()


def test_squeezed_finds_text_wrapped_to_one_character_a_line(page: Page, port):
    page.goto(f"http://localhost:{port}/squeezed/")
    assert squeezed(page, "h1, h2") == ["ポイント履歴 (6 lines)"]
