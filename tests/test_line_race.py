"""LINE webhooks delivered at the same moment, over real HTTP to a live server on
PostgreSQL: one nonce binds once, and one event is handled once."""

import hashlib
from datetime import timedelta

import pytest
import requests
from django.db import connection
from django.utils import timezone

from accounts.audit import AuditEvent
from linking.line.models import AccountLinkNonce, LineFriend, WebhookEvent
from tests.fakes.line import line_user_id
from tests.http_race import all_at_once

RACERS = 6
pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip(
            "concurrent writers need PostgreSQL (SQLite serializes them); "
            "run with DATABASE_URL=postgres://..., as CI does"
        )


def _deliver_at_once(live_server, fake_line, events: list[dict]) -> list[int]:
    url = f"{live_server.url}/line/webhook/"
    bodies = [fake_line.signed([event]) for event in events]

    def deliver(number: int) -> int:
        body, headers = bodies[number]
        return requests.post(url, data=body, headers=headers, timeout=60).status_code

    return all_at_once(deliver, len(events))


def test_one_nonce_in_simultaneous_account_link_events_binds_once(live_server, fake_line, customer):
    friend, nonce = line_user_id(), "n" * 43
    AccountLinkNonce.objects.create(
        nonce_hash=hashlib.sha256(nonce.encode()).hexdigest(),
        customer=customer,
        link_token="t",
        line_user_id=friend,
        expires_at=timezone.now() + timedelta(minutes=10),
    )
    events = []
    for _ in range(RACERS):
        event = fake_line.event("accountLink", friend)
        event["link"] = {"result": "ok", "nonce": nonce}
        events.append(event)

    statuses = _deliver_at_once(live_server, fake_line, events)

    assert statuses == [200] * RACERS
    assert LineFriend.objects.get(line_user_id=friend).customer == customer
    assert AuditEvent.objects.filter(action="line_linked").count() == 1
    assert AuditEvent.objects.filter(action="line_link_refused").count() == RACERS - 1


def test_one_event_delivered_many_times_at_once_is_handled_once(live_server, fake_line):
    friend = line_user_id()
    event = fake_line.say(friend, "統合IDと連携")
    fake_line.pending()

    statuses = _deliver_at_once(live_server, fake_line, [event] * RACERS)

    assert statuses == [200] * RACERS
    assert WebhookEvent.objects.filter(webhook_event_id=event["webhookEventId"]).count() == 1
    assert len(fake_line.calls(r"/v2/bot/user/.*/linkToken")) == 1
