"""A batch's commit point: its COMMIT, written together with the emails' final "."s.

A campaign sender marks a batch "sent" in a transaction; then the COMMIT and each
email's final "." of DATA (transport.py) must leave together. A sender killed between
the two writes would leave a commit without its "."s (emails marked sent that the
mail server never got) or "."s without their commit (emails the server has, sent
again later). So on PostgreSQL over a plain connection the COMMIT is written on the
database's socket by this module, beside the "."s, in one system call (together.py),
and its answer is read afterwards: a process killed at any moment has handed the
kernel all of them or none, and the kernel delivers what it was handed; PostgreSQL
commits a COMMIT it has received even when its client has died by then.

Elsewhere the COMMIT goes first and the "."s follow, and a sender killed between
them loses those emails (marked sent, never confirmed, never sent twice):
- without io_uring, or where a socket has no room for ten seconds (or with
  CAMPAIGN_ATOMIC_FINISH off): the whole COMMIT, then the "."s;
- over TLS or GSSAPI encryption, which only libpq can write: libpq sends the COMMIT
  and its answer is read after the "."s;
- on SQLite, or inside an outer transaction (a test's), the commit is awaited.
"""

import logging
import os
import select
from collections.abc import Callable, Sequence
from typing import TypeVar

import psycopg
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from psycopg import errors, generators, pq

from linking.campaigns import together

logger = logging.getLogger(__name__)

T = TypeVar("T")
Write = tuple[int, bytes]

# The simple-query message "COMMIT" of PostgreSQL's wire protocol (v3).
_COMMIT = b"Q" + (4 + len(b"COMMIT\0")).to_bytes(4, "big") + b"COMMIT\0"
_ANSWER_SECONDS = 600.0  # a COMMIT that long unanswered: the connection is given up


class Pending:
    """A transaction ready to commit. send(writes) writes its COMMIT and then each
    (fd, bytes) of writes (in one system call where it can); answer() then reads
    whether the COMMIT succeeded, raising DatabaseError if not. abandon() gives the
    database connection up when send() failed, since its COMMIT's answer would be
    left unread on it."""

    def send(self, writes: Sequence[Write]) -> list[int | OSError]:
        return together.write_each(writes)

    def answer(self) -> None:
        """Committed already (awaited, or nothing to commit)."""

    def abandon(self) -> None:
        """Nothing is left on the connection."""


COMMITTED = Pending()


def describe() -> str:
    """How this process's batches reach their commit point, for the worker's log."""
    first = "the COMMIT before the dots"
    if connection.vendor != "postgresql":
        return f"{first} ({connection.vendor} commits when asked)"
    if not settings.CAMPAIGN_ATOMIC_FINISH:
        return f"{first} (CAMPAIGN_ATOMIC_FINISH is off)"
    if not together.available():
        return f"{first} (io_uring is not available)"
    if settings.EMAIL_USE_TLS or settings.EMAIL_USE_SSL:
        return f"{first} (the mail server connection is encrypted)"
    try:
        connection.ensure_connection()
    except DatabaseError:
        return "not known yet (the database does not answer)"
    pgconn = connection.connection.pgconn
    if pgconn.ssl_in_use or pgconn.used_gssapi:
        return f"{first} (the database connection is encrypted)"
    return "the COMMIT and the dots in one system call (io_uring)"


def begin(work: Callable[[], T]) -> tuple[T, Pending]:
    """Run work() in a transaction; its result and the transaction, ready to commit.
    Call send() and answer() before using the database again."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        with transaction.atomic():
            result = work()
        return result, COMMITTED
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
    if raw.pgconn.ssl_in_use or raw.pgconn.used_gssapi:
        return result, _Libpq(raw)
    return result, _Plain(raw)


class _Unanswered(Pending):
    """A transaction whose COMMIT's answer is read from the connection after the
    writes: should reading it fail, or the writes before it, the connection is
    given up, the answer (or what is left of it) unread on it."""

    def __init__(self, raw: psycopg.Connection) -> None:
        self.raw = raw

    def answer(self) -> None:
        with connection.wrap_database_errors:
            try:
                failure = self._failure()
            except BaseException:
                self.abandon()
                raise
            if failure is not None:
                raise failure

    def _failure(self) -> psycopg.Error | None:
        """Read the answer: why the transaction did not commit, if it did not."""
        raise NotImplementedError

    def abandon(self) -> None:
        connection.close()


class _Plain(_Unanswered):
    """The COMMIT written on the database's socket by this module, the answer read
    from it, bypassing libpq, which is then brought back in step."""

    def __init__(self, raw: psycopg.Connection) -> None:
        super().__init__(raw)
        self.fd = raw.pgconn.socket
        self.atomic = settings.CAMPAIGN_ATOMIC_FINISH and together.available()
        self.written: int | OSError = 0

    def send(self, writes: Sequence[Write]) -> list[int | OSError]:
        if self.atomic:
            results = together.write_at_once([(self.fd, _COMMIT), *writes])
            if results is not None:
                written = results[0]
                if isinstance(written, BlockingIOError):
                    written = 0
                if not isinstance(written, OSError) and written < len(_COMMIT):
                    # The socket had room a moment before; should the COMMIT still
                    # not have left whole, the rest follows the "."s in answer().
                    logger.warning(
                        "COMMIT: %d of %d bytes left with the dots", written, len(_COMMIT)
                    )
                self.written = written
                return results[1:]
        # Not in one call: the whole COMMIT first, then the writes.
        with connection.wrap_database_errors:
            _write_rest(self.fd, _COMMIT)
        self.written = len(_COMMIT)
        return together.write_each(writes)

    def _failure(self) -> psycopg.Error | None:
        if isinstance(self.written, OSError):
            raise psycopg.OperationalError(f"COMMIT not sent: {self.written}")
        _write_rest(self.fd, _COMMIT[self.written :])
        failure, out_of_step = _read_answer(self.fd)
        # libpq saw neither the COMMIT nor its answer and still believes the
        # transaction open: an empty query's answer tells it otherwise.
        self.raw.pgconn.send_query(b"")
        self.raw.wait(generators.execute(self.raw.pgconn))
        if out_of_step:
            # A parameter the server reported changed (a SET LOCAL undone): libpq
            # did not see it, so the connection is not used again.
            self.abandon()
        return failure


class _Libpq(_Unanswered):
    """Over an encrypted connection only libpq can write the COMMIT: it goes out
    before the writes, without waiting for its answer."""

    def send(self, writes: Sequence[Write]) -> list[int | OSError]:
        with connection.wrap_database_errors:
            self.raw.pgconn.send_query(b"COMMIT")
            self.raw.wait(generators.send(self.raw.pgconn))
        return super().send(writes)

    def _failure(self) -> psycopg.Error | None:
        results = self.raw.wait(generators.fetch_many(self.raw.pgconn))
        if not results:
            raise errors.OperationalError("COMMIT got no answer")
        last = results[-1]
        if last.status == pq.ExecStatus.FATAL_ERROR:
            return errors.error_from_result(last)
        if last.status != pq.ExecStatus.COMMAND_OK or last.command_status != b"COMMIT":
            return _rolled_back(last.command_status)
        return None


def _rolled_back(tag: bytes | None) -> psycopg.Error:
    """COMMIT of a failed transaction answers ROLLBACK, without an error."""
    return errors.TransactionRollback(f"COMMIT answered {tag!r}: the transaction was rolled back")


def _write_rest(fd: int, data: bytes) -> None:
    """What a write left over (it found no room in the socket's buffer)."""
    while data:
        _wait(fd, select.POLLOUT)
        try:
            data = data[os.write(fd, data) :]
        except BlockingIOError:
            continue
        except OSError as exc:
            raise psycopg.OperationalError(f"COMMIT not sent: {exc}") from exc


def _read_answer(fd: int) -> tuple[psycopg.Error | None, bool]:
    """Read the server's messages up to ReadyForQuery: the COMMIT's failure, if it
    did not commit, and whether a message libpq keeps track of (a parameter's new
    value, a notification) was among them. Reads exactly that far, so nothing meant
    for libpq is taken."""
    failure = None
    tag = None
    out_of_step = False
    while True:
        header = _read_exactly(fd, 5)
        kind, length = header[:1], int.from_bytes(header[1:], "big")
        body = _read_exactly(fd, length - 4)
        if kind == b"E":
            fields = dict(
                (field[:1], field[1:].decode("utf-8", "replace"))
                for field in body.split(b"\0")
                if field
            )
            failure = _error_class(fields.get(b"C", ""))(fields.get(b"M", "COMMIT failed"))
        elif kind == b"C":
            tag = body.rstrip(b"\0")
        elif kind == b"Z":
            if failure is None and (tag != b"COMMIT" or body != b"I"):
                failure = _rolled_back(tag)
            return failure, out_of_step
        elif kind in (b"S", b"A"):
            out_of_step = True
        elif kind != b"N":
            raise psycopg.OperationalError(f"unexpected answer to COMMIT: {kind!r}")


def _error_class(sqlstate: str) -> type[psycopg.Error]:
    try:
        return errors.lookup(sqlstate)
    except KeyError:
        return psycopg.DatabaseError


def _read_exactly(fd: int, count: int) -> bytes:
    data = b""
    while len(data) < count:
        _wait(fd, select.POLLIN)
        try:
            chunk = os.read(fd, count - len(data))
        except BlockingIOError:
            continue
        except OSError as exc:
            raise psycopg.OperationalError(f"no answer to COMMIT: {exc}") from exc
        if not chunk:
            raise psycopg.OperationalError("the server closed the connection at COMMIT")
        data += chunk
    return data


def _wait(fd: int, event: int) -> None:
    poller = select.poll()
    poller.register(fd, event)
    if not poller.poll(_ANSWER_SECONDS * 1000):
        raise psycopg.OperationalError("no answer to COMMIT")
