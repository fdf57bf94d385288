import os

import pytest
from allauth.account.models import EmailAddress
from django.core.cache import cache
from django.utils import translation

from accounts import limits
from accounts.limits.database import DatabaseStorage
from accounts.models import Customer
from linking.api import auth as api_auth

# Playwright's sync API runs an event loop in the test thread; Django's ORM in that
# thread is still synchronous and safe.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytest_plugins = [
    "tests.fixtures.idp",
    "tests.fixtures.line",
    "tests.fixtures.browser",
    "tests.fixtures.linking",
    "tests.fixtures.staff",
    "tests.fixtures.mfa",
    "tests.fixtures.mail",
]

PASSWORD = "kiwi-Orange-7741"


@pytest.fixture(autouse=True)
def _mailbox_in_tmp(settings, tmp_path):
    """Every test gets its own mailbox folder."""
    settings.MAILBOX_DIR = tmp_path / "mailbox"


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    """allauth keeps its rate-limit counters in the cache, the API its known tokens
    in memory, accounts.limits its counts in Redis or the database (where each test's
    rollback or flush empties them); each test starts at zero."""
    cache.clear()
    api_auth.forget()
    outside_database = not isinstance(limits.storage(), DatabaseStorage)
    if outside_database:
        limits.reset()
    yield
    cache.clear()
    if outside_database:
        limits.reset()


@pytest.fixture(autouse=True)
def _api_calls_written_at_once(settings):
    """The API's audit rows go to the database in the request, inside the test's
    transaction (tests/test_api_call_log.py covers the buffered writer)."""
    settings.API_AUDIT_FLUSH_SECONDS = 0


@pytest.fixture(autouse=True)
def _static_without_manifest(settings):
    """Pages render with plain static URLs, so the live server's static handler (which
    looks files up by their source names) serves the CSS, and tests need no
    collectstatic run. `make test` still collects, as production does."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def in_english():
    """Messages in English, for modules that assert the English ones (their Japanese
    ones are asserted elsewhere)."""
    with translation.override("en"):
        yield


@pytest.fixture
def make_customer(db):
    """A customer who signed up by email; verified unless told otherwise."""

    def make(
        email: str = "hanako@example.jp",
        *,
        verified: bool = True,
        password: str = PASSWORD,
        **fields,
    ):
        customer = Customer.objects.create_user(email, password, **fields)
        EmailAddress.objects.create(user=customer, email=email, verified=verified, primary=True)
        return customer

    return make


@pytest.fixture
def customer(make_customer):
    return make_customer()


@pytest.fixture
def customer_client(client, customer):
    client.force_login(customer)
    return client
