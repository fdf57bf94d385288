"""The site's one rate limiter, on the `limits` library: rules named in
settings.RATE_LIMITS ("5/15 minutes"), counted in fixed windows in one storage every
process shares (RATE_LIMIT_STORAGE_URL: Redis, or the site's database). Guesses are
counted before they are checked; rates grant what is left.
"""

import functools
import hashlib
import math
import os
import threading
import time
from dataclasses import dataclass, field

from django.conf import settings
from limits import RateLimitItem, parse
from limits.storage import Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter


def rule(name: str) -> RateLimitItem:
    """The named rule of settings.RATE_LIMITS."""
    return _parsed(settings.RATE_LIMITS[name])


def rate(amount: int, seconds: int) -> RateLimitItem:
    """amount per so many seconds, for limits kept on a row (an API client's calls,
    a campaign's emails)."""
    return _parsed(f"{amount}/{seconds} seconds")


@functools.cache
def _parsed(text: str) -> RateLimitItem:
    return parse(text)


def storage() -> Storage:
    return _storage_at(settings.RATE_LIMIT_STORAGE_URL)


@functools.cache
def _storage_at(url: str) -> Storage:
    import accounts.limits.database  # noqa: F401  (registers database://)

    # Every storage's failures as limits' StorageError (the site answers 503); Redis
    # with timeouts, so a Redis that stopped answering fails a request, not hangs it.
    redis = url.startswith(("redis://", "rediss://", "redis+unix://"))
    return storage_from_string(
        url, wrap_exceptions=True, **(settings.REDIS_OPTIONS if redis else {})
    )


def reset() -> None:
    """Forget every count (tests start from zero)."""
    storage().reset()
    _window_ends.clear()
    _forget_blocks()


# --- guesses: passwords, codes, client secrets -------------------------------


def _identifier(value: object) -> str:
    # The value may be whatever was typed (spaces, RTL marks, 64 characters): hashed,
    # the key is short and safe for every storage.
    return hashlib.sha256(str(value).encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _counted(keys: dict[str, object]) -> list[tuple[RateLimitItem, str, str]]:
    return [
        (rule(name), name, _identifier(value)) for name, value in keys.items() if value is not None
    ]


def attempt(keys: dict[str, object]) -> bool:
    """Count one attempt under each named rule, for its value (a None value is not
    counted). False, counting nothing, once any is used up. Call before checking the
    guess, so however many arrive at once, no more are checked than the rule allows."""
    limiter = FixedWindowRateLimiter(storage())
    taken = []
    for item, name, identifier in _counted(keys):
        taken.append((item, name, identifier))
        if not limiter.hit(item, name, identifier):
            _give_back(taken)
            return False
    return True


def succeeded(keys: dict[str, object]) -> None:
    """The guess was right: give its attempt back, so only failures use a rule up."""
    _give_back(_counted(keys))


def is_blocked(keys: dict[str, object]) -> bool:
    """Would the next attempt be refused? Read-only (for showing a page as locked)."""
    limiter = FixedWindowRateLimiter(storage())
    return any(not limiter.test(item, name, ident) for item, name, ident in _counted(keys))


def _give_back(taken: list[tuple[RateLimitItem, str, str]]) -> None:
    # A window that ended meanwhile gets its next one a single attempt more, at most.
    store = storage()
    for item, name, identifier in taken:
        store.incr(item.key_for(name, identifier), item.get_expiry(), amount=-1)


# --- rates: API calls, campaign emails ----------------------------------------


# Redis tells a window's end rounded to the nearest second (limits' get_expiry reads
# its TTL), so up to half a second late: what needs the window to last (spending a
# block, giving back) stops this long before the end it was told.
END_MARGIN_SECONDS = 1.0


@dataclass(frozen=True)
class Grant:
    """What a take got: count granted now, what is left in the window after it, and
    seconds until the window ends (when to come back if count is short); ends_at is
    that end on time.time()'s clock."""

    count: int
    remaining: int
    resets_in: float
    ends_at: float


def take(item: RateLimitItem, *identifiers: str, wanted: int = 1) -> Grant:
    """Take up to wanted from the rule's window for identifiers, as one atomic count
    shared by every process; what could not be granted is handed back at once."""
    store = storage()
    key = item.key_for(*identifiers)
    now = time.time()
    total = store.incr(key, item.get_expiry(), amount=wanted)
    count = max(0, min(wanted, item.amount - (total - wanted)))
    if count < wanted:
        store.incr(key, item.get_expiry(), amount=count - wanted)
    ends = _window_end(store, key, opened=total == wanted, starts=now + item.get_expiry())
    remaining = max(0, item.amount - min(total, item.amount))
    return Grant(count, remaining, max(0.0, ends - time.time()), ends)


# When the windows this process has seen end. A window's end is set by the increment
# that finds it empty and then stays, so the storage is asked once per window, not on
# every take (a round trip saved on each API call).
_window_ends: dict[str, float] = {}


def _window_end(store: Storage, key: str, *, opened: bool, starts: float) -> float:
    ends = starts if opened else _window_ends.get(key, 0.0)
    if ends <= time.time():
        ends = store.get_expiry(key)
    if len(_window_ends) > 10_000:
        _window_ends.clear()
    _window_ends[key] = ends
    return ends


def give_back(item: RateLimitItem, *identifiers: str, count: int, of: Grant) -> None:
    """Return count of what grant `of` took and did not use (fewer emails were left
    than granted), while its window lasts: given to the next window, it would let that
    one grant more than the rule."""
    if count > 0 and time.time() < of.ends_at - END_MARGIN_SECONDS:
        storage().incr(item.key_for(*identifiers), item.get_expiry(), amount=-count)


def header_fields(policy: str, item: RateLimitItem, grant: Grant) -> tuple[str, str]:
    """RateLimit-Policy and RateLimit (draft-ietf-httpapi-ratelimit-headers): the
    quota, and what is left with whole seconds until the window ends."""
    return (
        f'"{policy}";q={item.amount};w={item.get_expiry()}',
        f'"{policy}";r={grant.remaining};t={seconds_to_reset(grant)}',
    )


def seconds_to_reset(grant: Grant) -> int:
    return max(1, math.ceil(grant.resets_in))


# --- a busy rate, spent from blocks: an API client's calls ---------------------

BLOCKS_PER_WINDOW = 100


@dataclass
class _Block:
    lock: threading.Lock = field(default_factory=threading.Lock)  # one refill at a time
    left: int = 0  # taken from the shared count by this process, not yet spent
    shared_remaining: int = 0  # left in the shared window when the block was taken
    ends: float = 0.0  # when that window ends, as told; 0: none taken yet
    used_up: bool = False  # the shared window had nothing left


def take_one(item: RateLimitItem, *identifiers: str) -> Grant:
    """One unit of a busy rate (an API client's calls), as take() would grant it, but
    taken from the shared count a block of 1/BLOCKS_PER_WINDOW of the rule at a time
    and spent by this process call by call: one round trip per block, not per call
    (call by call in a window's last two seconds). A refusal is remembered until
    the window's end, so a client past its limit costs no round trips.
    Never more than the rule is granted across processes. The price, from 200 a
    window: each process may hold part of a block when its client reaches the limit,
    so the client may be refused up to 1% of the rule per process early, and the
    remaining count is this process's view (exact with one process)."""
    key = item.key_for(*identifiers)
    with _blocks_lock:
        block = _blocks.get(key)
        if block is None:
            if len(_blocks) > 10_000:
                _blocks.clear()
            block = _blocks[key] = _Block()
    with block.lock:  # other clients' calls go on while this one refills
        now = time.time()
        spendable = now < block.ends - END_MARGIN_SECONDS
        if block.used_up and spendable:
            return Grant(0, 0, block.ends - now, block.ends)
        if block.left == 0 or not spendable:
            near_end = block.ends > 0 and block.ends - now < 2 * END_MARGIN_SECONDS
            wanted = 1 if near_end else max(1, item.amount // BLOCKS_PER_WINDOW)
            grant = take(item, *identifiers, wanted=wanted)
            block.left, block.shared_remaining = grant.count, grant.remaining
            block.ends, block.used_up = now + grant.resets_in, grant.count == 0
            if block.used_up:
                return grant
        block.left -= 1  # the first of a block just taken is spent even near its end
        return Grant(1, block.shared_remaining + block.left, block.ends - now, block.ends)


_blocks: dict[str, _Block] = {}
_blocks_lock = threading.Lock()  # the dict; each block has its own


def _forget_blocks() -> None:
    # A forked child must not spend its parent's blocks (both would spend them).
    global _blocks, _blocks_lock
    _blocks, _blocks_lock = {}, threading.Lock()


os.register_at_fork(after_in_child=_forget_blocks)
