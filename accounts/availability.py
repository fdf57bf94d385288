"""Is a failure a service that is away (the database, Redis), to be answered 503
and retried, rather than a fault of ours (a missing table, a bad query: a 500)?"""

import psycopg
import redis
from django.db import InterfaceError, OperationalError
from limits.errors import StorageError

# What a 503 asks the client to wait before trying again.
RETRY_AFTER_SECONDS = 30


def is_away(exc: BaseException | None) -> bool:
    if isinstance(exc, StorageError):  # the rate limits' storage, Redis or ours
        return is_away(exc.storage_error)
    if isinstance(exc, redis.AuthenticationError):  # our configuration, not an outage
        return False
    if isinstance(exc, (redis.ConnectionError, redis.TimeoutError, InterfaceError)):
        return True
    cause = exc.__cause__ if isinstance(exc, OperationalError) else None
    # PostgreSQL unreachable or gone (no SQLSTATE), a connection error (class 08),
    # shutting down or starting (57P), out of connections or memory (53).
    return isinstance(cause, psycopg.OperationalError) and (
        cause.sqlstate is None or cause.sqlstate.startswith(("08", "57P", "53"))
    )
