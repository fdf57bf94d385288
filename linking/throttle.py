"""Attempt counters in the cache, counted before the attempt is evaluated.

attempt() adds one to every key with the cache's atomic incr (Redis INCR, or
locmem under its lock) and refuses once any key is past its limit, so however
many guesses arrive at once, at most max_failures are evaluated. A success gives
its attempt back (succeeded), so only failures use the limit up.
"""

import contextlib
import hashlib
from dataclasses import dataclass

from django.core.cache import cache


@dataclass(frozen=True)
class Limit:
    scope: str
    max_failures: int
    window_seconds: int


PER_ACCOUNT = Limit("account", max_failures=5, window_seconds=15 * 60)
PER_CUSTOMER = Limit("customer", max_failures=10, window_seconds=15 * 60)
PER_IP = Limit("ip", max_failures=30, window_seconds=15 * 60)


def _key(kind: str, limit: Limit, value: object) -> str:
    # The value may be whatever a customer typed (spaces, RTL marks, 64 characters):
    # hashed, the key is short and safe for every cache backend.
    digest = hashlib.sha256(str(value).encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"throttle:{kind}:{limit.scope}:{digest}"


def _counted(kind: str, keys: dict[Limit, object]) -> list[tuple[Limit, str]]:
    return [(limit, _key(kind, limit, value)) for limit, value in keys.items() if value is not None]


def _incr(key: str, limit: Limit) -> int:
    cache.add(key, 0, timeout=limit.window_seconds)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr: a new window
        cache.add(key, 0, timeout=limit.window_seconds)
        return cache.incr(key)


def _decr(key: str) -> None:
    with contextlib.suppress(ValueError):  # the window ended: nothing to give back
        cache.decr(key)


def is_blocked(kind: str, keys: dict[Limit, object]) -> bool:
    """Read-only: would the next attempt be refused? (For showing a page as locked.)"""
    return any((cache.get(key) or 0) >= limit.max_failures for limit, key in _counted(kind, keys))


def attempt(kind: str, keys: dict[Limit, object]) -> bool:
    """Count one attempt on every key; False, counting nothing, when a key is past
    its limit. Call before evaluating the guess."""
    counted = _counted(kind, keys)
    taken = []
    for limit, key in counted:
        taken.append(key)
        if _incr(key, limit) > limit.max_failures:
            for key_taken in taken:
                _decr(key_taken)
            return False
    return True


def succeeded(kind: str, keys: dict[Limit, object]) -> None:
    """The attempt was right: give it back, so it does not use up the limit."""
    for _limit, key in _counted(kind, keys):
        _decr(key)
