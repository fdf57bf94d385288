"""Requests per minute per client, counted in the site's cache so that every web
process shares one counter (Redis in production; per process with the embedded
local-memory cache). Fixed one-minute windows: one INCR per call."""

import time

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache

WINDOW_SECONDS = 60


def hit(client_id: str, limit: int) -> int | None:
    """Count a call. None if it is allowed, else the seconds until the next window."""
    now = time.time()
    window = int(now // WINDOW_SECONDS)
    key = f"api:rate:{client_id}:{window}"
    if _count(key) <= limit:
        return None
    return max(1, int((window + 1) * WINDOW_SECONDS - now) + 1)


def _count(key: str) -> int:
    cache = caches["default"]
    if isinstance(cache, RedisCache):
        return _redis_count(cache, key)
    try:
        return cache.incr(key)
    except ValueError:
        if cache.add(key, 1, timeout=WINDOW_SECONDS * 2):
            return 1
        return cache.incr(key)


def _redis_count(cache: RedisCache, key: str) -> int:
    # Django's incr() asks EXISTS first; INCR + EXPIRE in one round trip instead.
    full_key = cache.make_and_validate_key(key)
    client = cache._cache.get_client(full_key, write=True)
    pipe = client.pipeline(transaction=False)
    pipe.incr(full_key)
    pipe.expire(full_key, WINDOW_SECONDS * 2, nx=True)
    count, _ = pipe.execute()
    return int(count)
