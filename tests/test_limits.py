"""accounts.limits: named rules, guesses counted before they are checked, rates that
grant what is left, and counts shared by every process (in Redis, or in the site's
database through accounts.limits.database)."""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from accounts import limits
from accounts.limits.database import DatabaseStorage, RateLimitCounter, delete_ended
from config import settings as site_settings
from tests.campaign_support import database_url_for_worker, wait_until

pytestmark = pytest.mark.django_db


def test_every_named_rule_is_one_rule_in_the_library_notation(settings):
    for name in settings.RATE_LIMITS:
        assert limits.rule(name).amount >= 1


def test_a_rule_can_be_overridden_from_the_environment():
    assert site_settings.rate_limit_overrides('{"signin.ip": "50/minute"}') == {
        "signin.ip": "50/minute"
    }
    with pytest.raises(ImproperlyConfigured, match="names no rule"):
        site_settings.rate_limit_overrides('{"signin.typo": "50/minute"}')
    with pytest.raises(ImproperlyConfigured, match=r"signin\.ip"):
        site_settings.rate_limit_overrides('{"signin.ip": "fifty a minute"}')
    with pytest.raises(ImproperlyConfigured, match="not a JSON object"):
        site_settings.rate_limit_overrides("[1, 2]")


def test_attempts_past_the_rule_are_refused_and_count_nothing(settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "signin.email": "3/minute"}
    keys = {"signin.ip": "192.0.2.1", "signin.email": "hanako@example.jp"}

    assert [limits.attempt(keys) for _ in range(5)] == [True, True, True, False, False]
    assert limits.is_blocked(keys)
    # The refused ones gave back what they took: the address used three, not five.
    others = [{"signin.email": f"{n}@example.jp", "signin.ip": "192.0.2.1"} for n in range(8)]
    assert [limits.attempt(other) for other in others] == [True] * 7 + [False]


def test_a_right_guess_gives_its_attempt_back(settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "mfa.user": "2/minute"}
    keys = {"mfa.user": 7}
    for _ in range(5):
        assert limits.attempt(keys)
        limits.succeeded(keys)
    assert not limits.is_blocked(keys)
    assert limits.attempt(keys) and limits.attempt(keys) and not limits.attempt(keys)


def test_a_value_of_none_is_not_counted(settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "signin.ip": "1/minute"}
    assert all(limits.attempt({"signin.ip": None}) for _ in range(3))


def test_typed_values_of_any_kind_make_keys_every_storage_takes():
    odd = "\u202e" + " x" * 40 + "\ud800"
    assert limits.attempt({"lookup.ip": odd})
    assert not limits.is_blocked({"lookup.ip": odd})


def test_a_rate_grants_what_is_left_and_takes_back_the_rest():
    rate = limits.rate(10, 60)
    assert limits.take(rate, "batch", wanted=7).count == 7
    partly = limits.take(rate, "batch", wanted=7)
    assert (partly.count, partly.remaining) == (3, 0)
    nothing = limits.take(rate, "batch", wanted=7)
    assert nothing.count == 0 and 0 < nothing.resets_in <= 60
    limits.give_back(rate, "batch", count=2, of=nothing)
    assert limits.take(rate, "batch", wanted=7).count == 2


def test_what_is_given_back_after_its_window_ended_is_dropped():
    """Given to the next window, it would let that one grant more than the rule."""
    rate = limits.rate(5, 1)
    grant = limits.take(rate, "late", wanted=5)
    assert grant.count == 5
    wait_until(lambda: limits.storage().get(rate.key_for("late")) == 0, what="the window to end")

    limits.give_back(rate, "late", count=3, of=grant)

    assert limits.take(rate, "late", wanted=8).count == 5


def test_a_window_end_is_asked_of_the_storage_once_a_window(settings, monkeypatch):
    """The API calls take() on every request: one round trip, not two."""
    settings.RATE_LIMIT_STORAGE_URL = "memory://"
    limits.reset()
    store, asked = limits.storage(), []
    ask = store.get_expiry
    monkeypatch.setattr(store, "get_expiry", lambda key: asked.append(key) or ask(key))
    rate = limits.rate(100, 60)

    grants = [limits.take(rate, "api", "steady") for _ in range(50)]

    assert asked == []  # the first take opened the window, so its end was known
    ends = [grant.resets_in for grant in grants]
    assert all(0 < end <= 60 for end in ends) and ends == sorted(ends, reverse=True)


def test_the_header_fields_tell_quota_remaining_and_reset():
    rate = limits.rate(5, 60)
    grant = limits.take(rate, "client")
    policy, state = limits.header_fields("per-client", rate, grant)
    assert policy == '"per-client";q=5;w=60'
    assert state in ('"per-client";r=4;t=60', '"per-client";r=4;t=59')


def test_counts_are_shared_with_another_process(transactional_db, tmp_path):
    """A web process, a worker and the tests see one count: what another process
    takes is gone here (Redis in production; the database on the embedded default)."""
    database = database_url_for_worker(tmp_path)
    url = next(database)
    try:
        rate = limits.rate(3, 60)
        assert limits.take(rate, "shared").count == 1
        script = (
            "import django; django.setup(); from accounts import limits; "
            "print(limits.take(limits.rate(3, 60), 'shared', wanted=5).count)"
        )
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": url,
        }
        other = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
        )
        assert other.returncode == 0, other.stderr
        assert other.stdout.strip() == "2"
        assert limits.take(rate, "shared").count == 0
    finally:
        next(database, None)


# --- a busy rate, spent from blocks (the API's calls per client) -----------------


def _shared_count(rate: limits.RateLimitItem, *identifiers: str) -> int:
    return limits.storage().get(rate.key_for(*identifiers))


def test_a_busy_rate_takes_from_the_shared_count_a_block_at_a_time():
    rate = limits.rate(1000, 60)  # blocks of 10

    grants = [limits.take_one(rate, "api", "busy") for _ in range(25)]

    assert [grant.count for grant in grants] == [1] * 25
    assert _shared_count(rate, "api", "busy") == 30  # three round trips, not 25
    assert [grant.remaining for grant in grants] == list(range(999, 974, -1))
    assert all(0 < grant.resets_in <= 60 for grant in grants)


def test_a_small_rate_is_counted_call_by_call():
    rate = limits.rate(3, 60)
    assert [limits.take_one(rate, "api", "small").count for _ in range(4)] == [1, 1, 1, 0]
    assert _shared_count(rate, "api", "small") == 3


def test_blocks_never_grant_more_than_the_rule_across_processes(transactional_db, tmp_path):
    database = database_url_for_worker(tmp_path)
    url = next(database)
    try:
        rate = limits.rate(300, 60)  # blocks of 3
        assert limits.take_one(rate, "api", "shared").count == 1  # holds 2 more
        script = (
            "import django; django.setup(); from accounts import limits; "
            "rate = limits.rate(300, 60); "
            "print(sum(iter(lambda: limits.take_one(rate, 'api', 'shared').count, 0)))"
        )
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "DATABASE_URL": url}
        other = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
        )
        assert other.returncode == 0, other.stderr
        assert other.stdout.strip() == "297"
        here = [limits.take_one(rate, "api", "shared").count for _ in range(3)]
        assert here == [1, 1, 0]  # the rest of this process's block, then no more
    finally:
        next(database, None)


def test_a_block_is_not_spent_after_its_window_ends():
    rate = limits.rate(200, 1)  # blocks of 2, windows of one second
    assert limits.take_one(rate, "api", "windowed").count == 1  # holds 1 more
    wait_until(lambda: _shared_count(rate, "api", "windowed") == 0, what="a new window")

    assert limits.take_one(rate, "api", "windowed").count == 1

    assert _shared_count(rate, "api", "windowed") == 1  # taken from the new window


def test_blocks_are_not_taken_again_and_again_as_a_window_ends():
    """Redis tells a window's end to the whole second, early: in a window's last
    second each call would find its block's window over and take a new block, until
    the rule was used up and calls refused. There, calls are taken one at a time."""
    rate = limits.rate(1_000_000, 3)  # blocks of 10,000, windows of three seconds
    key = rate.key_for("api", "tail")
    limits.storage().incr(key, rate.get_expiry())  # another process opened the window
    granted, ends = [], time.monotonic() + rate.get_expiry() + 0.5
    while time.monotonic() < ends:  # through the window's end, into the next
        granted.append(limits.take_one(rate, "api", "tail").count)
    assert set(granted) == {1}


def test_a_block_told_a_late_window_end_is_not_spent_in_the_next_window():
    """Redis rounds a window's remaining time to the nearest second: told 3 s with
    2.6 s left, a block could be spent 0.4 s into the next window, on top of that
    window's own rule."""
    rate = limits.rate(1000, 3)  # blocks of 10
    key = rate.key_for("api", "late")
    limits.storage().incr(key, rate.get_expiry())  # another process opened the window
    ends = time.time() + rate.get_expiry()  # at the latest
    wait_until(lambda: time.time() > ends - 2.6, what="2.6 s left in the window")
    assert limits.take_one(rate, "api", "late").count == 1  # this process holds 9
    wait_until(lambda: time.time() > ends + 0.05, what="the window's end")

    granted = sum(iter(lambda: limits.take_one(rate, "api", "late").count, 0))

    assert granted == 1000  # the next window's rule, and nothing of the block


def test_a_refusal_is_remembered_until_the_window_ends(settings, monkeypatch):
    settings.RATE_LIMIT_STORAGE_URL = "memory://"
    limits.reset()
    store, counted = limits.storage(), []
    count = store.incr
    monkeypatch.setattr(store, "incr", lambda *a, **k: counted.append(a) or count(*a, **k))
    rate = limits.rate(300, 60)  # blocks of 3
    assert sum(iter(lambda: limits.take_one(rate, "api", "over").count, 0)) == 300
    asked = len(counted)

    refused = [limits.take_one(rate, "api", "over") for _ in range(50)]

    assert {grant.count for grant in refused} == {0}
    assert all(0 < grant.resets_in <= 60 for grant in refused)
    assert len(counted) == asked  # no round trip for a client past its limit


def test_a_forked_child_does_not_spend_its_parents_block(settings):
    settings.RATE_LIMIT_STORAGE_URL = "memory://"  # the child's count is its own copy
    limits.reset()
    rate = limits.rate(1000, 60)
    limits.take_one(rate, "api", "forked")  # the parent holds 9 of a block of 10
    child = os.fork()
    if child == 0:
        limits.take_one(rate, "api", "forked")
        os._exit(0 if _shared_count(rate, "api", "forked") == 20 else 1)
    _pid, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert _shared_count(rate, "api", "forked") == 10


# --- the database storage (accounts.limits.database), pinned against limits' API ---


@pytest.fixture
def store() -> DatabaseStorage:
    return DatabaseStorage()


def test_the_database_storage_is_what_database_urls_name():
    from limits.storage import storage_from_string

    assert isinstance(storage_from_string("database://"), DatabaseStorage)


def test_the_database_storage_counts_in_fixed_windows(store):
    assert [store.incr("k", 60) for _ in range(3)] == [1, 2, 3]
    assert store.incr("k", 60, amount=-1) == 2
    assert store.incr("k", 60, amount=-2) == 0
    assert store.incr("k", 60) == 1  # an emptied window starts again, as in Redis
    assert store.get("k") == 1
    assert 0 < store.get_expiry("k") - time.time() <= 60
    store.clear("k")
    assert store.get("k") == 0
    assert store.check()


def test_an_ended_window_starts_again_and_is_deleted(store):
    store.incr("brief", 1)
    store.incr("brief", 1)
    wait_until(lambda: store.get("brief") == 0, what="the window to end")
    assert store.incr("brief", 60) == 1  # a new window, not the old count plus one
    store.incr("gone", 1)
    wait_until(lambda: store.get("gone") == 0, what="the window to end")
    assert delete_ended() >= 1
    assert not RateLimitCounter.objects.filter(key="gone").exists()
    assert RateLimitCounter.objects.filter(key="brief").exists()


def test_the_library_limiter_works_on_the_database_storage(store):
    from limits.strategies import FixedWindowRateLimiter

    limiter = FixedWindowRateLimiter(store)
    rule = limits.rate(2, 60)
    assert [limiter.hit(rule, "x") for _ in range(3)] == [True, True, False]
    assert not limiter.test(rule, "x")
    assert limiter.get_window_stats(rule, "x").remaining == 0
    assert store.reset() >= 1
    assert limiter.test(rule, "x")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_increments_lose_no_count(store):
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL (SQLite serializes them), as CI runs")
    barrier = threading.Barrier(20)
    counts = []

    def hit() -> None:
        barrier.wait()
        try:
            counts.extend(store.incr("busy", 60) for _ in range(10))
        finally:
            connection.close()

    threads = [threading.Thread(target=hit) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(counts) == list(range(1, 201))


def test_the_configuration_docs_list_every_rule_with_its_default(settings):
    docs = (Path(__file__).resolve().parent.parent / "docs" / "configuration.md").read_text()
    for name, text in settings.RATE_LIMITS.items():
        assert f"| `{name}` | `{text}` |" in docs, name
