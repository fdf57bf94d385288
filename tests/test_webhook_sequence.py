"""The per-account sequence number of webhook events under concurrent writers on
PostgreSQL: every event about one account gets its own number, and the numbers
follow the order in which the changes committed, so a receiver that drops events
older than the last it applied ends up in the account's real state."""

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, transaction

from linking import claims
from linking.api import outbox
from linking.api.models import WebhookDelivery
from linking.models import LegacyAccount

pytest_plugins = ["tests.fixtures.api"]
pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

WRITERS = 8
ROUNDS = 15


@pytest.fixture(autouse=True)
def _postgres_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip(
            "concurrent writers need PostgreSQL (SQLite serializes them); "
            "run with DATABASE_URL=postgres://..., as CI does"
        )


def _in_parallel(work) -> list:
    barrier = threading.Barrier(WRITERS)

    def run(index: int):
        try:
            barrier.wait()
            return work(index)
        finally:
            connection.close()

    with ThreadPoolExecutor(WRITERS) as pool:
        return list(pool.map(run, range(WRITERS)))


def test_concurrent_events_about_one_account_get_distinct_growing_numbers(make_account):
    account = make_account()

    def take(_index: int) -> list[int]:
        taken = []
        for _ in range(ROUNDS):
            with transaction.atomic():
                taken.append(outbox.next_sequences([account.pk])[account.pk])
        return taken

    per_writer = _in_parallel(take)

    assert sorted(n for taken in per_writer for n in taken) == list(range(1, WRITERS * ROUNDS + 1))
    # Each writer's later transaction committed later, and got a larger number.
    assert all(taken == sorted(taken) for taken in per_writer)


def test_concurrent_links_and_unlinks_are_numbered_in_the_order_they_happened(
    make_client, service, make_account, make_customer
):
    make_client(services=[service], webhook_url="https://store.example.jp/hooks")
    account = make_account("S0042", service=service)
    customers = [make_customer(f"writer{index}@example.jp") for index in range(WRITERS)]

    def link_and_unlink(index: int) -> None:
        mine = LegacyAccount.objects.get(pk=account.pk)
        for _ in range(ROUNDS):
            try:
                linked = claims.link(
                    account=mine, customer=customers[index], proof="code", request=None
                )
            except claims.AccountTaken:
                continue
            if linked:
                claims.unlink(account=mine, customer=customers[index], request=None)

    _in_parallel(link_and_unlink)

    events = sorted(
        (json.loads(body) for body in WebhookDelivery.objects.values_list("body", flat=True)),
        key=lambda event: event["data"]["sequence"],
    )
    assert [e["data"]["sequence"] for e in events] == list(range(1, len(events) + 1))
    assert len(events) >= 2
    # In sequence order the account's story is consistent: linked, then unlinked by
    # the same unified ID, then linked again, and so on.
    for linked, unlinked in zip(events[::2], events[1::2], strict=True):
        assert (linked["type"], unlinked["type"]) == ("account.linked", "account.unlinked")
        assert linked["data"]["unified_id"] == unlinked["data"]["unified_id"]
