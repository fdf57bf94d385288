"""Counting the password hashes the site computes: the equal-cost and limit tests
assert how many a request costs, whatever its outcome."""

import threading

from accounts.hashers import Argon2idPasswordHasher


class CountingHasher(Argon2idPasswordHasher):
    """The site's hasher, counting each password hash it computes, made or checked."""

    computed = 0
    _lock = threading.Lock()

    @classmethod
    def _count(cls) -> None:
        with cls._lock:
            cls.computed += 1

    def encode(self, password: str, salt: str) -> str:
        self._count()
        return super().encode(password, salt)

    def verify(self, password: str, encoded: str) -> bool:
        self._count()
        return super().verify(password, encoded)


class Hashes:
    """Puts CountingHasher first in settings.PASSWORD_HASHERS; since() tells how many
    hashes were computed since the last call (or since this began)."""

    def __init__(self, settings) -> None:
        settings.PASSWORD_HASHERS = [
            f"{__name__}.CountingHasher",
            *settings.PASSWORD_HASHERS[1:],
        ]
        self.start = CountingHasher.computed

    def since(self) -> int:
        now = CountingHasher.computed
        counted, self.start = now - self.start, now
        return counted
