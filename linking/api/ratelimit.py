"""Requests per minute per client, counted in the site's cache so that every web
process shares one counter (Redis in production; per process with the embedded
local-memory cache). Fixed one-minute windows.

A process does not go to the cache for every call: it reserves calls in blocks
(one INCRBY for a block of 1% of the limit, at most 100) and spends the block
locally. A limit of up to 199 a minute has blocks of one: every call is counted
as it comes. Above that, a block a process reserved and did not spend before the
window ends still counts, so a client may be refused at most one block per web
process (1% of its limit each) early, and never let through late: the shared
counter is never below the calls let through.
"""

import threading
import time

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache

WINDOW_SECONDS = 60
MAX_BLOCK = 100


def block_size(limit: int) -> int:
    return max(1, min(MAX_BLOCK, limit // 100))


class Limiter:
    """One web process's view of the shared counters: the unspent part of the
    block it holds per client, for the current window."""

    def __init__(self, clock=time.time) -> None:
        self._clock = clock
        self._held: dict[str, tuple[int, int]] = {}  # client -> (window, calls left)
        self._lock = threading.Lock()

    def hit(self, client_id: str, limit: int) -> int | None:
        """Count a call. None if it is allowed, else the seconds until the next window."""
        now = self._clock()
        window = int(now // WINDOW_SECONDS)
        with self._lock:
            held_window, left = self._held.get(client_id, (window, 0))
            if held_window == window and left > 0:
                self._held[client_id] = (window, left - 1)
                return None
        size = block_size(limit)
        total = _count(f"api:rate:{client_id}:{window}", size)
        granted = max(0, min(total, limit) - (total - size))
        if not granted:
            return max(1, int((window + 1) * WINDOW_SECONDS - now) + 1)
        with self._lock:
            held_window, left = self._held.get(client_id, (window, 0))
            self._held[client_id] = (window, (left if held_window == window else 0) + granted - 1)
        return None

    def reset(self) -> None:
        with self._lock:
            self._held.clear()


limiter = Limiter()
hit = limiter.hit


def _count(key: str, amount: int) -> int:
    """Add amount to the window's counter; the new total."""
    cache = caches["default"]
    if isinstance(cache, RedisCache):
        return _redis_count(cache, key, amount)
    try:
        return cache.incr(key, amount)
    except ValueError:
        if cache.add(key, amount, timeout=WINDOW_SECONDS * 2):
            return amount
        return cache.incr(key, amount)


def _redis_count(cache: RedisCache, key: str, amount: int) -> int:
    # Django's incr() asks EXISTS first; INCRBY + EXPIRE in one round trip instead.
    full_key = cache.make_and_validate_key(key)
    client = cache._cache.get_client(full_key, write=True)
    pipe = client.pipeline(transaction=False)
    pipe.incrby(full_key, amount)
    pipe.expire(full_key, WINDOW_SECONDS * 2, nx=True)
    count, _ = pipe.execute()
    return int(count)
