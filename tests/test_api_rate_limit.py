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
    assert answers[:60] == [None] * 60
    assert answers[60] == WINDOW_SECONDS - 20 + 1  # seconds until the next window


def test_processes_reserve_blocks_and_never_let_more_than_the_limit_through():
    limit = 10_000  # blocks of 100
    processes = [Limiter(_clock), Limiter(_clock), Limiter(_clock)]
    allowed = sum(processes[turn % 3].hit("busy", limit) is None for turn in range(12_000))
    # At most one unspent block per process is refused early; none let through late.
    assert limit - 3 * block_size(limit) <= allowed <= limit


def test_a_block_costs_one_cache_write_per_hundred_calls():
    limiter = Limiter(_clock)
    for _ in range(150):
        assert limiter.hit("counted", 100_000) is None
    window = int(NOW // WINDOW_SECONDS)
    assert cache.get(f"api:rate:counted:{window}") == 200  # two blocks of 100 reserved


def test_a_new_window_starts_from_zero():
    minute = [NOW]
    limiter = Limiter(lambda: minute[0])
    assert [limiter.hit("windowed", 2) for _ in range(3)][2] is not None
    minute[0] += WINDOW_SECONDS
    assert limiter.hit("windowed", 2) is None
