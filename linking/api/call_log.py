"""The ApiCall audit rows, written in batches off the request path: a call appends
plain tuples to this process's buffer, and a thread writes it every
API_AUDIT_FLUSH_SECONDS (COPY on PostgreSQL) and once more at a normal exit. An
INSERT per call cost more CPU than the resolve itself (43 µs a call, the tuple and
COPY 4 µs). The price: a process killed with SIGKILL loses its last rows; while the
database is away rows wait (at most MAX_PENDING, oldest dropped, logged)."""

import atexit
import logging
import os
import threading
import time
from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection, connections
from django.utils import timezone

from linking.api.models import ApiCall

logger = logging.getLogger(__name__)

MAX_PENDING = 100_000


class CallRow(NamedTuple):
    """An ApiCall's fields, in the order they are copied."""

    client_id: str
    endpoint: str
    status: int
    subject: str
    items: int
    ip: str | None
    created_at: datetime


def call_rows(
    client_id: str,
    endpoint: str,
    status: int,
    subjects: Sequence[str],
    items: int,
    ip: str | None,
) -> list[CallRow]:
    """A call's rows: one per subject it asked about (a batch's every account), at
    one moment."""
    now = timezone.now()
    return [
        CallRow(client_id, endpoint, status, subject[:120], items, ip, now) for subject in subjects
    ]


_COPY_SQL = f"COPY {ApiCall._meta.db_table} ({', '.join(CallRow._fields)}) FROM STDIN"


class CallLog:
    def __init__(self) -> None:
        self._rows: list[CallRow] = []
        self._lock = threading.Lock()  # the buffer
        self._writing = threading.Lock()  # one flush at a time; exit waits for it
        self._writer_pid: int | None = None  # the process whose thread is running

    def record(self, rows: list[CallRow]) -> None:
        if settings.API_AUDIT_FLUSH_SECONDS <= 0:
            _write(rows)
            return
        with self._lock:
            self._rows += rows
            if self._writer_pid != os.getpid():  # first call, or a forked child
                self._writer_pid = os.getpid()
                threading.Thread(
                    target=self._write_forever, name="api-call-log", daemon=True
                ).start()

    def pending(self) -> int:
        with self._lock:
            return len(self._rows)

    def flush(self) -> int:
        """Write the buffered rows; how many. On a database error they stay buffered
        and the error is raised."""
        with self._writing:
            with self._lock:
                rows, self._rows = self._rows, []
            if not rows:
                return 0
            try:
                _write(rows)
            except DatabaseError:
                with self._lock:
                    self._rows[:0] = rows
                    dropped = len(self._rows) - MAX_PENDING
                    if dropped > 0:
                        del self._rows[:dropped]
                        logger.error("API call log full: %d audit rows dropped", dropped)
                raise
            return len(rows)

    def _write_forever(self) -> None:
        while (interval := settings.API_AUDIT_FLUSH_SECONDS) > 0:
            time.sleep(interval)
            try:
                close_old_connections()  # this thread's connection, per CONN_MAX_AGE
                self.flush()
            except Exception:
                logger.exception("API call log: write failed, will retry")
        connections.close_all()  # this thread's
        with self._lock:  # switched to writing in the request: a later buffer starts anew
            self._writer_pid = None

    @property
    def writer_running(self) -> bool:
        return self._writer_pid == os.getpid()

    def flush_at_exit(self) -> None:
        if self._writer_pid != os.getpid():
            return
        try:
            self.flush()
        except DatabaseError:
            logger.exception("API call log: %d audit rows lost at exit", self.pending())


def _write(rows: list[CallRow]) -> None:
    if connection.vendor != "postgresql":
        ApiCall.objects.bulk_create([ApiCall(**row._asdict()) for row in rows], batch_size=1000)
        return
    # psycopg's own copy(): its errors are wrapped here, as Django wraps a cursor's.
    with (
        connection.cursor() as cursor,
        connection.wrap_database_errors,
        cursor.cursor.copy(_COPY_SQL) as copy,
    ):
        for row in rows:
            copy.write_row(row)


calls = CallLog()
atexit.register(calls.flush_at_exit)
