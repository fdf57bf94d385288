"""Content Security Policy on every page: no 'unsafe-inline' for scripts or styles,
and no inline script or style attribute in what the site serves (admin included).
Email templates are exempt: they are never served as pages."""

import re

from django.contrib import admin
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from tests.conftest import PASSWORD
from tests.fixtures.staff import verified_login

pytest_plugins = ["tests.fixtures.staff", "tests.fixtures.campaigns"]

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*application/(?:ld\+)?json)[^>]*>", re.I)
STYLE_ATTRIBUTE = re.compile(r"<[a-z][^>]*\sstyle=[\"']", re.I)
STYLE_ELEMENT = re.compile(r"<style[\s>]", re.I)


def _plain_routes(patterns=None, prefix: str = "") -> list[str]:
    """Every URL of the site that takes no parameter."""
    routes = []
    for entry in patterns if patterns is not None else get_resolver().url_patterns:
        route = str(entry.pattern)
        if isinstance(entry, URLResolver):
            if route.startswith("^") or "<" in route:
                continue  # admin's own regex tree is walked through its registry below
            routes += _plain_routes(entry.url_patterns, prefix + route)
        elif isinstance(entry, URLPattern) and "<" not in route and "(" not in route:
            routes.append("/" + prefix + route.lstrip("^").rstrip("$"))
    return sorted(set(routes))


def _directives(response) -> dict[str, list[str]]:
    header = response.headers.get("Content-Security-Policy", "")
    directives = {}
    for part in filter(None, (p.strip() for p in header.split(";"))):
        name, *values = part.split()
        directives[name] = values
    return directives


def assert_strict_policy(url: str, response) -> None:
    policy = _directives(response)
    assert policy, f"{url}: no Content-Security-Policy header"
    for directive in ("script-src", "style-src", "default-src"):
        assert "'unsafe-inline'" not in policy.get(directive, []), f"{url}: {directive}"
    assert policy["script-src"] == ["'self'"] and policy["style-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"] and policy["object-src"] == ["'none'"]
    if response.get("Content-Type", "").startswith("text/html"):
        html = response.content.decode()
        for pattern in (INLINE_SCRIPT, STYLE_ATTRIBUTE, STYLE_ELEMENT):
            found = pattern.search(html)
            assert found is None, f"{url}: inline {found.group(0) if found else ''}"


def test_the_site_has_pages_to_check():
    routes = _plain_routes()

    assert {"/", "/me/", "/accounts/login/", "/accounts/sessions/", "/me/delete/"} <= set(routes)


def test_every_page_for_visitors_has_a_strict_policy(client, settings, db):
    settings.MAILBOX_VIEW = True
    for url in _plain_routes():
        if url.startswith("/admin/"):
            continue
        assert_strict_policy(url, client.get(url))


def test_every_page_for_a_signed_in_customer_has_a_strict_policy(customer, settings, service):
    settings.MAILBOX_VIEW = True
    client = Client()
    client.post("/accounts/login/", {"login": customer.email, "password": PASSWORD})
    client.post("/accounts/reauthenticate/", {"password": PASSWORD})
    urls = [url for url in _plain_routes() if not url.startswith(("/admin/", "/accounts/logout"))]
    urls += [reverse("linking:service", args=[service.code]), "/me/export/?download=1"]
    for url in urls:
        response = client.get(url)
        assert response.status_code < 500, url
        assert_strict_policy(url, response)


def test_every_admin_list_and_form_has_a_strict_policy(
    make_staff, customer, make_campaign, make_account
):
    make_account("S1", email="a@example.jp")
    campaign = make_campaign()
    client = verified_login(Client(), make_staff("admin@example.jp", superuser=True))
    urls = ["/admin/"]
    for model in admin.site._registry:
        info = (model._meta.app_label, model._meta.model_name)
        urls.append(reverse("admin:{}_{}_changelist".format(*info)))
        urls.append(reverse("admin:{}_{}_add".format(*info)))
    urls.append(reverse("admin:accounts_customer_change", args=[customer.pk]))
    for name in ("change", "preview", "progress"):
        urls.append(reverse(f"admin:campaigns_campaign_{name}", args=[campaign.pk]))
    for url in urls:
        response = client.get(url)
        assert response.status_code in (200, 302, 403), url
        assert_strict_policy(url, response)
