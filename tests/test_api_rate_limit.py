"""The API's per-client rate limit: calls per minute counted in accounts.limits,
one count for every web process, told to the client in the RateLimit fields."""

from django.test import Client
from django.urls import reverse

from accounts import limits
from linking.api.openapi import RATE_LIMIT_WINDOW_SECONDS
from tests.api_support import bearer, fetch_token
from tests.campaign_support import wait_until

pytest_plugins = ["tests.fixtures.api"]


def _per_minute(amount: int) -> limits.RateLimitItem:
    return limits.rate(amount, RATE_LIMIT_WINDOW_SECONDS)


def test_a_client_is_counted_call_by_call(db):
    rate = _per_minute(60)
    answers = [limits.take(rate, "api", "small") for _ in range(61)]

    assert [answer.count for answer in answers] == [1] * 60 + [0]
    assert [answer.remaining for answer in answers] == [*range(59, -1, -1), 0]
    assert all(0 < answer.resets_in <= RATE_LIMIT_WINDOW_SECONDS for answer in answers)
    assert limits.seconds_to_reset(answers[-1]) <= RATE_LIMIT_WINDOW_SECONDS


def test_refused_calls_use_nothing_up(db):
    rate = _per_minute(3)
    for _ in range(3):
        limits.take(rate, "api", "busy")
    refused = [limits.take(rate, "api", "busy") for _ in range(10)]

    assert {(answer.count, answer.remaining) for answer in refused} == {(0, 0)}
    limits.give_back(rate, "api", "busy", count=1, of=refused[-1])
    assert limits.take(rate, "api", "busy").count == 1


def test_each_client_has_its_own_count(db):
    rate = _per_minute(2)
    assert [limits.take(rate, "api", "one").count for _ in range(3)] == [1, 1, 0]
    assert limits.take(rate, "api", "other").count == 1


def test_a_new_window_starts_from_zero(db):
    rate = limits.rate(2, 1)  # windows of one second, so the test waits little
    assert [limits.take(rate, "api", "windowed").count for _ in range(3)] == [1, 1, 0]

    wait_until(lambda: limits.take(rate, "api", "windowed").count == 1, what="a new window")


def test_a_busy_client_is_counted_in_blocks_and_told_what_is_left(db, make_client, service):
    registered = make_client(services=[service], rate_limit_per_minute=1000)
    token = fetch_token(registered, scope="resolve")
    resolve = reverse("api:resolve")

    answers = [
        Client().get(resolve, {"service": "store", "external_id": "S1"}, **bearer(token))
        for _ in range(3)
    ]

    assert [answer.status_code for answer in answers] == [404] * 3
    assert [answer["RateLimit"].split(";")[1] for answer in answers] == [
        "r=999", "r=998", "r=997"
    ]  # fmt: skip
    rate = _per_minute(1000)
    shared = limits.storage().get(rate.key_for("api", registered.client_id))
    assert shared == 10  # one block of 1/100 taken for the three calls
