"""Five signed-in customers prove the same legacy password at the same moment, each
over real HTTP to a live server on PostgreSQL: exactly one gets the account, the
others are told it belongs to another unified ID and get a support reference."""

import hashlib
import html
import re
from dataclasses import dataclass

import pytest
import requests
from django.db import connection

from accounts import limits
from accounts.audit import AuditEvent
from linking.models import LegacyAccount, LinkEvent
from tests.conftest import PASSWORD
from tests.http_race import all_at_once, csrf_token, signed_in

# As many as the member number's attempt limit: attempts in flight count toward it
# (accounts.limits), so more claimants at once would be refused as throttled.
CLAIMANTS = limits.rule("legacy_password.account").amount
MEMBER_NUMBER = "OS-7730021"
LEGACY_PASSWORD = "legacy-Store-2009"
LINKED = "Linked. The account now belongs to your unified ID."
_MESSAGE = re.compile(r'<li class="message (\w+)">(.*?)</li>', re.S)
_TAKEN = re.compile(
    r"This account is already linked to another unified ID, so it was not linked\. "
    r".*reference ([A-Z0-9]{8})\.",
    re.S,
)

pytestmark = pytest.mark.postgres


@dataclass
class Outcome:
    customer_email: str
    statuses: list[int]
    url: str
    messages: list[tuple[str, str]]


def _signed_in_session(site: str, email: str) -> requests.Session:
    """A browser-like session signed in through the site's own login form."""
    session, response = signed_in(site, email)
    assert response.url == f"{site}/me/", (response.status_code, response.url)
    # Linking asks for a fresh re-authentication (step-up): done before the race.
    reauthenticate = f"{site}/accounts/reauthenticate/"
    response = session.post(
        reauthenticate,
        {"csrfmiddlewaretoken": csrf_token(session, reauthenticate), "password": PASSWORD},
        timeout=30,
    )
    assert response.status_code == 200, response.status_code
    return session


def _messages(page: requests.Response) -> list[tuple[str, str]]:
    return [(kind, html.unescape(text).strip()) for kind, text in _MESSAGE.findall(page.text)]


@pytest.fixture
def contested(make_service, make_account) -> LegacyAccount:
    service = make_service("online-store", proofs=("password",))
    salt = "f3a9c1"
    digest = hashlib.sha256((salt + LEGACY_PASSWORD).encode()).hexdigest()
    return make_account(MEMBER_NUMBER, service=service, password_hash=f"sha256${salt}${digest}")


@pytest.mark.django_db(transaction=True)
def test_simultaneous_password_proofs_for_one_account_link_it_to_exactly_one_customer(
    live_server, make_customer, contested: LegacyAccount
):
    if connection.vendor != "postgresql":
        pytest.skip(
            "concurrent writers need PostgreSQL (SQLite serializes them); "
            "run with DATABASE_URL=postgres://..., as CI does"
        )
    site = live_server.url
    customers = [make_customer(f"claimant{index}@example.jp") for index in range(CLAIMANTS)]
    sessions = {customer.email: _signed_in_session(site, customer.email) for customer in customers}
    link_page = f"{site}/link/service/{contested.service.code}/"
    claimants = [
        (email, session, csrf_token(session, link_page)) for email, session in sessions.items()
    ]

    def claim(number: int) -> Outcome:
        email, session, token = claimants[number]
        response = session.post(
            link_page,
            {
                "csrfmiddlewaretoken": token,
                "pw-external_id": MEMBER_NUMBER,
                "pw-password": LEGACY_PASSWORD,
            },
            timeout=60,
        )
        statuses = [hop.status_code for hop in response.history] + [response.status_code]
        return Outcome(email, statuses, response.url, _messages(response))

    outcomes = all_at_once(claim, CLAIMANTS)

    assert all(status < 500 for outcome in outcomes for status in outcome.statuses), outcomes
    winners = [o for o in outcomes if o.messages == [("success", LINKED)]]
    losers = [o for o in outcomes if o not in winners]
    assert len(winners) == 1, outcomes
    assert winners[0].url == f"{site}/link/"
    references = []
    for loser in losers:
        assert loser.url == link_page, loser
        assert len(loser.messages) == 1 and loser.messages[0][0] == "error", loser
        taken = _TAKEN.search(loser.messages[0][1])
        assert taken, loser
        references.append(taken.group(1))

    contested.refresh_from_db()
    assert contested.owner.email == winners[0].customer_email
    assert LegacyAccount.objects.filter(owner__isnull=False).count() == 1
    assert LinkEvent.objects.filter(account=contested).count() == 1
    conflicts = AuditEvent.objects.filter(account=contested, action="link_conflict")
    assert conflicts.count() == CLAIMANTS - 1
    assert sorted(conflicts.values_list("reference", flat=True)) == sorted(references)
    assert {event.customer.email for event in conflicts} == {o.customer_email for o in losers}
    assert AuditEvent.objects.filter(account=contested, action="linked").count() == 1
