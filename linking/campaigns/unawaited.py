"""A transaction whose COMMIT goes out without waiting for the database's answer.

A campaign sender marks a batch "sent", then writes the final "." of each email
(transport.py). A sender that dies between the two loses those emails: marked sent,
never finished at the server. Awaiting the COMMIT made that gap a database round trip
plus the wake-up of the sender, milliseconds on a busy machine (one kill in eight lost
a batch in tests/test_campaign_worker.py). On PostgreSQL the COMMIT is written to the
database's socket and the "."s follow at once; its answer is read after them. A sender
killed once the COMMIT is written still commits: the server has the whole command.

Elsewhere (SQLite, or inside an outer transaction such as a test's) the block runs in
transaction.atomic() and its commit is awaited as usual.
"""

from collections.abc import Callable
from typing import TypeVar

from django.db import DatabaseError, connection, transaction
from psycopg import errors, generators, pq

T = TypeVar("T")


def settled() -> None:
    """The answer to a COMMIT that was awaited, or never sent: nothing to read."""


def commit_unawaited(work: Callable[[], T]) -> tuple[T, Callable[[], None]]:
    """Run work() in a transaction and send its COMMIT; work's result and a function
    that reads the COMMIT's answer, raising DatabaseError if it failed. Call it before
    using the database again."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        with transaction.atomic():
            result = work()
        return result, settled
    with connection.cursor() as cursor:
        cursor.execute("BEGIN")
    try:
        result = work()
    except BaseException:
        try:
            with connection.cursor() as cursor:
                cursor.execute("ROLLBACK")
        except DatabaseError:
            pass  # a broken connection has no transaction left to roll back
        raise
    raw = connection.connection
    with connection.wrap_database_errors:
        raw.pgconn.send_query(b"COMMIT")
        raw.wait(generators.send(raw.pgconn))
    return result, lambda: _answer(raw)


def _answer(raw) -> None:
    with connection.wrap_database_errors:
        results = raw.wait(generators.fetch_many(raw.pgconn))
        if not results or results[-1].status != pq.ExecStatus.COMMAND_OK:
            if results and results[-1].status == pq.ExecStatus.FATAL_ERROR:
                raise errors.error_from_result(results[-1])
            raise errors.OperationalError("COMMIT got no answer")
