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

Each answer tells the client where it stands (IETF draft-ietf-httpapi-ratelimit-headers:
RateLimit-Policy and RateLimit), from what this process knows without asking the
cache again: what the shared count left when it last reserved, less its own calls
since. Exact with blocks of one; otherwise off by what other processes reserved
meanwhile, or hold unspent.
"""

import threading
import time
from functools import cache as memoized
from typing import NamedTuple

import redis
from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache

WINDOW_SECONDS = 60
MAX_BLOCK = 100


POLICY = "per-client"


def block_size(limit: int) -> int:
    return max(1, min(MAX_BLOCK, limit // 100))


class Quota(NamedTuple):
    """A call's verdict: allowed or not, calls left in the window as this process
    sees them, and whole seconds until the window ends (rounded up)."""

    allowed: bool
    remaining: int
    reset: int


def fields(limit: int, quota: Quota) -> tuple[str, str]:
    """The RateLimit-Policy and RateLimit header fields (structured field lists)."""
    return (
        f'"{POLICY}";q={limit};w={WINDOW_SECONDS}',
        f'"{POLICY}";r={quota.remaining};t={quota.reset}',
    )


class Limiter:
    """One web process's view of the shared counters: the unspent part of the
    block it holds per client, for the current window."""

    def __init__(self, clock=time.time) -> None:
        self._clock = clock
        # client -> (window, calls left in the block, the shared count when reserved)
        self._held: dict[str, tuple[int, int, int]] = {}
        self._lock = threading.Lock()

    def hit(self, client_id: str, limit: int) -> Quota:
        """Count a call against the client's limit for this window."""
        now = self._clock()
        window = int(now // WINDOW_SECONDS)
        reset = max(1, int((window + 1) * WINDOW_SECONDS - now) + 1)
        with self._lock:
            held_window, left, total = self._held.get(client_id, (window, 0, 0))
            if held_window == window and left > 0:
                self._held[client_id] = (window, left - 1, total)
                return Quota(True, _remaining(limit, total, left - 1), reset)
        size = block_size(limit)
        total = _count(f"api:rate:{client_id}:{window}", size)
        granted = max(0, min(total, limit) - (total - size))
        if not granted:
            return Quota(False, 0, reset)
        with self._lock:
            held_window, left, _ = self._held.get(client_id, (window, 0, 0))
            left = (left if held_window == window else 0) + granted - 1
            self._held[client_id] = (window, left, total)
        return Quota(True, _remaining(limit, total, left), reset)

    def reset(self) -> None:
        with self._lock:
            self._held.clear()


def _remaining(limit: int, total: int, left: int) -> int:
    """Calls left as of this process's last reservation (total): what no process had
    reserved then, plus this one's unspent block."""
    return limit - min(total, limit) + left


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
    # Django's incr() asks EXISTS first; INCRBY + EXPIRE in one round trip instead,
    # through redis-py's own client for the cache's server.
    full_key = cache.make_and_validate_key(key)
    pipe = _redis_client(settings.CACHES["default"]["LOCATION"]).pipeline(transaction=False)
    pipe.incrby(full_key, amount)
    pipe.expire(full_key, WINDOW_SECONDS * 2, nx=True)
    count, _ = pipe.execute()
    return int(count)


@memoized
def _redis_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)
