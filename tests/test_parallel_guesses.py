"""Fifty wrong guesses sent at the same moment, over real HTTP to a live server on
PostgreSQL: every attempt counter is counted before its guess is checked, so no
more guesses are checked than the limit allows (a TOTP, a backup code, a link code,
a legacy password)."""

import hashlib
import re
from collections import Counter
from types import SimpleNamespace

import pytest
import requests
from django.contrib.staticfiles.handlers import StaticFilesHandler
from django.core.servers.basehttp import ThreadedWSGIServer
from django.db import connection
from django.test.testcases import LiveServerThread
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import limits
from accounts.audit import AuditEvent
from accounts.mfa import flows
from linking.models import OwnershipCode
from linking.proofs import code as code_proof
from tests.http_race import all_at_once, csrf_token, signed_in

GUESSES = 50

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _on_postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("parallel writers need PostgreSQL (SQLite serializes them), as CI runs")


class _WideBacklogServer(ThreadedWSGIServer):
    request_queue_size = 128  # Django's 10 resets most of fifty simultaneous connects


class _ServerThread(LiveServerThread):
    server_class = _WideBacklogServer


@pytest.fixture
def site():
    """Django's live server with room for fifty connections arriving at once."""
    thread = _ServerThread("127.0.0.1", StaticFilesHandler)
    thread.daemon = True
    thread.start()
    thread.is_ready.wait()
    if thread.error:
        raise thread.error
    yield SimpleNamespace(url=f"http://127.0.0.1:{thread.port}")
    thread.terminate()


def _at_once(session: requests.Session, url: str, forms: list[dict]) -> list[int]:
    """POST every form at the same moment, each from a copy of the session's cookies."""
    token = csrf_token(session, url)

    def post(number: int) -> int:
        copy = requests.Session()
        copy.cookies.update(session.cookies)
        copy.headers.update(session.headers)
        form = {"csrfmiddlewaretoken": token, **forms[number]}
        return copy.post(url, form, timeout=120).status_code

    statuses = all_at_once(post, len(forms))
    assert all(status < 500 for status in statuses), statuses
    return statuses


def _second_factor_failures(customer) -> Counter:
    return Counter(
        AuditEvent.objects.filter(customer=customer, action="mfa_failed").values_list(
            "method", flat=True
        )
    )


def test_fifty_parallel_totp_guesses_get_at_most_the_limit_checked(site, customer):
    device = TOTPDevice.objects.create(user=customer, name="app", confirmed=True)
    session, _ = signed_in(site.url, customer.email)

    _at_once(
        session,
        f"{site.url}/accounts/2fa/verify/",
        [{"token": f"{index:06d}"} for index in range(GUESSES)],
    )

    failures = _second_factor_failures(customer)
    assert sum(failures.values()) == GUESSES
    allowed = limits.rule(flows.PER_USER).amount
    assert failures["totp"] <= allowed, failures
    assert failures["locked"] >= GUESSES - allowed
    assert flows.is_locked(customer)
    device.refresh_from_db()
    assert device.throttling_failure_count <= failures["totp"]


def test_fifty_parallel_backup_code_guesses_get_at_most_the_limit_checked(site, customer):
    TOTPDevice.objects.create(user=customer, name="app", confirmed=True)
    session, _ = signed_in(site.url, customer.email)

    _at_once(
        session,
        f"{site.url}/accounts/2fa/verify/",
        [{"token": f"abcde-{index:05d}x"} for index in range(GUESSES)],
    )

    failures = _second_factor_failures(customer)
    assert sum(failures.values()) == GUESSES
    assert failures["backup_code"] <= limits.rule(flows.PER_USER).amount, failures
    assert flows.is_locked(customer)


def test_fifty_parallel_link_code_guesses_get_at_most_the_limit_checked(
    site, customer, make_account, mailoutbox
):
    legacy = make_account("S0005678", email="taro@example.jp")
    session, _ = signed_in(site.url, customer.email)
    service_page = f"{site.url}/link/service/{legacy.service.code}/"
    session.post(
        service_page,
        {"csrfmiddlewaretoken": csrf_token(session, service_page), "num-external_id": "S0005678"},
        timeout=30,
    )
    code_page = f"{site.url}/link/account/{legacy.pk}/code/"
    session.post(
        code_page,
        {"csrfmiddlewaretoken": csrf_token(session, code_page), "channel": "email"},
        timeout=30,
    )
    sent = OwnershipCode.objects.get(account=legacy)
    right = re.search(r"\b(\d{6})\b", mailoutbox[-1].body).group(1)
    wrong = [f"{(int(right) + 1 + index) % 10**6:06d}" for index in range(GUESSES)]

    _at_once(session, code_page, [{"code": guess} for guess in wrong])

    sent.refresh_from_db()
    assert sent.failed_attempts == code_proof.MAX_FAILED_ATTEMPTS
    reasons = Counter(
        AuditEvent.objects.filter(account=legacy, action="proof_failed").values_list(
            "reason", flat=True
        )
    )
    checked = reasons["wrong code"] + reasons["wrong code, now locked"]
    assert checked == code_proof.MAX_FAILED_ATTEMPTS, reasons
    assert reasons["expired or locked"] == GUESSES - checked
    legacy.refresh_from_db()
    assert legacy.owner is None


def test_fifty_parallel_legacy_password_guesses_get_at_most_the_limit_checked(
    site, customer, make_account
):
    salt = "f3a9c1"
    digest = hashlib.sha256((salt + "legacy-Store-2009").encode()).hexdigest()
    legacy = make_account("OS-7730021", password_hash=f"sha256${salt}${digest}")
    session, _ = signed_in(site.url, customer.email)

    _at_once(
        session,
        f"{site.url}/link/service/{legacy.service.code}/",
        [
            {"pw-external_id": "OS-7730021", "pw-password": f"guess-{index}"}
            for index in range(GUESSES)
        ],
    )

    reasons = Counter(
        AuditEvent.objects.filter(customer=customer, action="proof_failed").values_list(
            "reason", flat=True
        )
    )
    assert sum(reasons.values()) == GUESSES
    assert reasons["wrong password"] <= limits.rule("legacy_password.account").amount, reasons
    assert reasons["throttled"] == GUESSES - reasons["wrong password"]
    legacy.refresh_from_db()
    assert legacy.owner is None
