"""The API's per-client rate limit, shared by every web process through the cache,
with each process reserving calls in blocks."""

from django.core.cache import cache

from linking.api.ratelimit import WINDOW_SECONDS, Limiter, block_size

NOW = 1_800_000_020.0  # a fixed moment, 20 s into its one-minute window


def _clock():
    return NOW


def test_a_small_limit_is_counted_call_by_call():
    limiter = Limiter(_clock)
    assert block_size(60) == 1
    answers = [limiter.hit("small", 60) for _ in range(61)]
    assert [answer.allowed for answer in answers] == [True] * 60 + [False]
    # Counted call by call, so what is left is exact.
    assert [answer.remaining for answer in answers] == [*range(59, -1, -1), 0]
    assert {answer.reset for answer in answers} == {WINDOW_SECONDS - 20 + 1}


def test_processes_reserve_blocks_and_never_let_more_than_the_limit_through():
    limit = 10_000  # blocks of 100
    processes = [Limiter(_clock), Limiter(_clock), Limiter(_clock)]
    allowed = sum(processes[turn % 3].hit("busy", limit).allowed for turn in range(12_000))
    # At most one unspent block per process is refused early; none let through late.
    assert limit - 3 * block_size(limit) <= allowed <= limit


def test_a_block_costs_one_cache_write_per_hundred_calls():
    limiter = Limiter(_clock)
    for _ in range(150):
        assert limiter.hit("counted", 100_000).allowed
    window = int(NOW // WINDOW_SECONDS)
    assert cache.get(f"api:rate:counted:{window}") == 200  # two blocks of 100 reserved


def test_a_new_window_starts_from_zero():
    minute = [NOW]
    limiter = Limiter(lambda: minute[0])
    assert not [limiter.hit("windowed", 2) for _ in range(3)][2].allowed
    minute[0] += WINDOW_SECONDS
    assert limiter.hit("windowed", 2).allowed


def test_what_is_left_is_off_by_at_most_what_others_did_meanwhile():
    # A process tells what the shared count left when it last reserved, less its own
    # calls since: what other processes reserved meanwhile (they spend alike here,
    # so about a block) is not in it, and their unspent blocks count as spent.
    limit = 10_000
    processes = [Limiter(_clock), Limiter(_clock)]
    let_through = 0
    for turn in range(limit + 50):
        quota = processes[turn % 2].hit("told", limit)
        let_through += quota.allowed
        truly_left = limit - let_through
        assert abs(quota.remaining - truly_left) <= block_size(limit)
        if not quota.allowed:
            assert quota.remaining == 0
