"""A service the site needs is away (the database, Redis): the answer is 503 with
Retry-After, a page in the customer's language or a problem under /api/, never a
500 and never a wait without end; and answers come back with the service, with no
restart."""

import contextlib
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from django.conf import settings as django_settings
from django.db import connection
from django.test import Client, override_settings
from django.urls import reverse

from accounts import limits
from tests.api_support import bearer, fetch_token
from tests.campaign_support import WAIT_SECONDS, TcpProxy, free_port, wait_until

pytest_plugins = ["tests.fixtures.api"]

BASE_DIR = Path(__file__).resolve().parent.parent
PROBLEM = "application/problem+json"
AWAY_JA = "ただいまご利用いただけません"


def _limits_at(url: str):
    """The rate limits counted at url for a block (restored before the fixtures that
    reset the counts run again)."""
    return override_settings(RATE_LIMIT_STORAGE_URL=url)


def _nobody_there() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"


def _sign_in(language: str = "ja"):
    return Client(raise_request_exception=False, HTTP_ACCEPT_LANGUAGE=language).post(
        reverse("account_login"), {"login": "someone@example.com", "password": "a guess"}
    )


@pytest.mark.parametrize(
    ("language", "title"),
    [("ja", AWAY_JA), ("en", "Temporarily unavailable")],
)
def test_a_sign_in_answers_503_in_the_customers_language_when_the_limits_are_away(
    db, language, title
):
    with _limits_at(_nobody_there()):
        response = _sign_in(language)

    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert response["Content-Type"].startswith("text/html")
    assert f"<h1>{title}</h1>" in response.content.decode()


def test_an_api_call_answers_a_503_problem_when_the_limits_are_away(make_client, service, caplog):
    token = fetch_token(make_client(services=[service]))
    with _limits_at(_nobody_there()), caplog.at_level("ERROR", logger="django.request"):
        response = Client(raise_request_exception=False).get(
            reverse("api:resolve"), {"service": "store", "external_id": "S1"}, **bearer(token)
        )

    assert response.status_code == 503
    assert response["Content-Type"] == PROBLEM
    assert response["Retry-After"] == "30"
    body = response.json()
    assert (body["status"], body["error"]) == (503, "service_unavailable")
    assert body["type"] == "urn:problem-type:unified-id:service-unavailable"
    logged = [r for r in caplog.records if r.name == "django.request"]
    assert [r.getMessage() for r in logged] == ["Service Unavailable: /api/v1/resolve"]
    assert logged[0].exc_info is not None  # with its traceback, as a 500 is


def test_a_token_request_answers_an_oauth_error_when_the_limits_are_away(make_client, service):
    registered = make_client(services=[service])
    with _limits_at(_nobody_there()):
        response = Client(raise_request_exception=False).post(
            reverse("idp:oidc:token"),
            {"grant_type": "client_credentials", "scope": "resolve"},
            HTTP_AUTHORIZATION=registered.basic_auth(),
        )

    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    assert response["Retry-After"] == "30"
    assert response.json()["error"] == "temporarily_unavailable"


def test_a_redis_that_stops_answering_fails_the_request_instead_of_holding_it(db, settings):
    settings.REDIS_OPTIONS = {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}
    # Connections are taken (the kernel's backlog) and never answered.
    silent = socket.create_server(("127.0.0.1", 0))
    port = silent.getsockname()[1]
    with contextlib.closing(silent), _limits_at(f"redis://127.0.0.1:{port}/0"):
        pool = limits.storage().get_connection().connection_pool
        assert pool.connection_kwargs["socket_timeout"] == 0.5  # REDIS_OPTIONS reached it
        answers = []
        asking = threading.Thread(target=lambda: answers.append(_sign_in()), daemon=True)
        asking.start()
        asking.join(WAIT_SECONDS)  # a guard against hanging forever, not a speed check

        assert answers, "the request was still waiting for Redis"
        assert answers[0].status_code == 503


@pytest.mark.skipif(
    not django_settings.CACHE_URL.startswith("redis://"),
    reason="needs Redis on this machine (CACHE_URL=redis://...)",
)
def test_answers_come_back_when_redis_does(db):
    cable = TcpProxy("127.0.0.1", urlsplit(django_settings.CACHE_URL).port or 6379)
    with contextlib.closing(cable), _limits_at(f"redis://127.0.0.1:{cable.port}/14"):
        assert _sign_in().status_code == 200  # the form again: wrong password

        cable.pause()
        assert _sign_in().status_code == 503

        cable.resume()
        assert _sign_in().status_code == 200


def _serve(database_url: str, log: Path) -> tuple[subprocess.Popen, str]:
    """The site under gunicorn (as in production: DEBUG off) on that database."""
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "0",
        "DATABASE_URL": database_url,
        "CACHE_URL": "",
        "RATE_LIMIT_STORAGE_URL": "database://",
        "ALLOWED_HOSTS": "127.0.0.1",
    }
    command = [
        sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind",
        f"127.0.0.1:{port}", "--workers", "1", "--log-level", "warning",
    ]  # fmt: skip
    server = subprocess.Popen(
        command, cwd=BASE_DIR, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT
    )
    return server, f"http://127.0.0.1:{port}"


@pytest.mark.django_db(transaction=True)
def test_the_database_away_answers_503_and_answers_come_back_with_it(
    tmp_path, make_client, service
):
    """The token lookup, the session, and a known client's own query (its token and
    its rate-limit block held in the process) each meet the database away."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL on this machine (DATABASE_URL=postgres://...)")
    db = connection.settings_dict
    cable = TcpProxy("127.0.0.1", int(db["PORT"] or 5432))
    with contextlib.closing(cable):
        url = f"postgres://{db['USER']}@127.0.0.1:{cable.port}/{db['NAME']}"
        server, site = _serve(url, tmp_path / "gunicorn.log")
        try:
            # A session cookie makes the page read the session from the database.
            page = {"url": f"{site}/me/", "cookies": {"sessionid": "x" * 32}}
            page["headers"] = {"Accept-Language": "ja"}
            resolve = f"{site}/api/v1/resolve?service=store&external_id=S1"

            def api(token: str) -> requests.Response:
                # A token not seen before, so it is looked up in the database.
                headers = {"Authorization": f"Bearer {token}"}
                return requests.get(resolve, headers=headers, timeout=30)

            def answered() -> bool:
                try:
                    return requests.get(timeout=10, allow_redirects=False, **page).ok
                except requests.ConnectionError:
                    return False

            wait_until(answered, what="the site to start")
            assert api("unknown-1").status_code == 401
            known = fetch_token(make_client(services=[service]))
            assert api(known).status_code == 404  # read: no such account

            cable.pause()
            away_page = requests.get(timeout=30, allow_redirects=False, **page)
            away_api = api("unknown-2")
            away_read = api(known)

            assert away_page.status_code == 503 and away_page.headers["Retry-After"] == "30"
            assert AWAY_JA in away_page.text
            assert away_api.status_code == 503
            assert away_api.headers["Content-Type"] == PROBLEM
            assert away_api.json()["error"] == "service_unavailable"
            assert away_read.status_code == 503
            assert away_read.headers["Retry-After"] == "30"
            assert away_read.json()["error"] == "service_unavailable"

            cable.resume()
            assert requests.get(timeout=30, allow_redirects=False, **page).status_code == 302
            assert api("unknown-3").status_code == 401
            assert api(known).status_code == 404
        finally:
            server.terminate()
            server.wait(timeout=30)
