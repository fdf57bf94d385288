"""A `limits` storage in the site's own database, for the embedded default: limits
keeps counts in memory (per process), Redis, Memcached or MongoDB, and without those
servers the web process, the workers and the tests still share the database. Each
increment is one INSERT ... ON CONFLICT DO UPDATE ... RETURNING (SQLite 3.35+,
PostgreSQL), so concurrent hits never lose a count. Pinned by tests/test_limits.py."""

import time

from django.db import DatabaseError, connection, models
from limits.storage import Storage


class RateLimitCounter(models.Model):
    """One fixed window's count for one rule and key (accounts.limits)."""

    key = models.CharField(max_length=255, primary_key=True)
    count = models.BigIntegerField()
    expires_at = models.FloatField(db_index=True)  # Unix time: the window's end

    class Meta:
        app_label = "accounts"

    def __str__(self) -> str:
        return self.key


class DatabaseStorage(Storage):
    """RATE_LIMIT_STORAGE_URL=database:// (the default without Redis)."""

    STORAGE_SCHEME = ["database"]

    @property
    def base_exceptions(self) -> type[Exception]:
        return DatabaseError

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        """Add amount to the key's count; an ended window starts anew at amount. A
        window that was empty ends expiry seconds from now, as limits' own storages
        (Redis's INCRBY + EXPIRE, memory) have it."""
        now = time.time()
        quote = connection.ops.quote_name
        table = quote(RateLimitCounter._meta.db_table)
        key_, count, ends = quote("key"), quote("count"), quote("expires_at")
        # Names quoted from the model; every value is a bound parameter.
        ended = f"{table}.{ends} <= %s"
        empty = f"{table}.{count} = 0"
        sql = (
            f"INSERT INTO {table} ({key_}, {count}, {ends}) VALUES (%s, %s, %s) "  # noqa: S608
            f"ON CONFLICT ({key_}) DO UPDATE SET "
            f"{count} = CASE WHEN {ended} THEN excluded.{count} "
            f"ELSE {table}.{count} + excluded.{count} END, "
            f"{ends} = CASE WHEN {ended} OR {empty} THEN excluded.{ends} "
            f"ELSE {table}.{ends} END "
            f"RETURNING {count}"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [key, amount, now + expiry, now, now])
            return int(cursor.fetchone()[0])

    def get(self, key: str) -> int:
        found = RateLimitCounter.objects.filter(key=key, expires_at__gt=time.time())
        return int(found.values_list("count", flat=True).first() or 0)

    def get_expiry(self, key: str) -> float:
        now = time.time()
        found = RateLimitCounter.objects.filter(key=key, expires_at__gt=now)
        return found.values_list("expires_at", flat=True).first() or now

    def check(self) -> bool:
        try:
            RateLimitCounter.objects.exists()
        except DatabaseError:
            return False
        return True

    def reset(self) -> int:
        deleted, _ = RateLimitCounter.objects.all().delete()
        return deleted

    def clear(self, key: str) -> None:
        RateLimitCounter.objects.filter(key=key).delete()


def delete_ended(now: float | None = None) -> int:
    """Rows of windows that have ended: nothing reads them again."""
    ended = RateLimitCounter.objects.filter(expires_at__lte=time.time() if now is None else now)
    return ended.delete()[0]
