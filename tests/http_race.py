"""Real HTTP requests to a live server, released at the same moment: the races in
tests/test_parallel_guesses.py, tests/test_staff_signin.py and tests/test_link_race.py."""

import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import requests

from tests.conftest import PASSWORD

T = TypeVar("T")
CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def csrf_token(session: requests.Session, url: str) -> str:
    """The CSRF token of the form at url, as the session's browser would post it."""
    page = session.get(url, timeout=30)
    found = CSRF_FIELD.search(page.text)
    assert found, (page.status_code, page.url, page.text[:300])
    return found.group(1)


def english_session() -> requests.Session:
    session = requests.Session()
    session.headers["Accept-Language"] = "en"
    return session


def signed_in(site: str, email: str) -> tuple[requests.Session, requests.Response]:
    """A session through the site's own login form, with the login's answer."""
    session = english_session()
    url = f"{site}/accounts/login/"
    form = {"csrfmiddlewaretoken": csrf_token(session, url), "login": email, "password": PASSWORD}
    return session, session.post(url, form, timeout=30)


def all_at_once(send: Callable[[int], T], count: int) -> list[T]:
    """send(0), ..., send(count - 1), each in its own thread, all let go together."""
    barrier = threading.Barrier(count)

    def released(number: int) -> T:
        barrier.wait(timeout=60)
        return send(number)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(released, range(count)))
