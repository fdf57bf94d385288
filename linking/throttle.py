"""Failure counters in the cache: a proof is refused while any of its keys is over
its limit. Counted per legacy account, per customer and per IP address, so neither
one account nor one attacker can be hammered from many sides."""

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


def is_blocked(kind: str, keys: dict[Limit, object]) -> bool:
    return any(
        (cache.get(_key(kind, limit, value)) or 0) >= limit.max_failures
        for limit, value in keys.items()
        if value is not None
    )


def record_failure(kind: str, keys: dict[Limit, object]) -> None:
    for limit, value in keys.items():
        if value is None:
            continue
        key = _key(kind, limit, value)
        cache.add(key, 0, timeout=limit.window_seconds)
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=limit.window_seconds)
