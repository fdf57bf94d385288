"""Admin imports run by a real Celery worker process (the configured broker), killed
with SIGKILL mid-import: nobody restarts the job, yet it finishes with the whole
file imported once and its counts and report right."""

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from django.core.files.base import ContentFile
from django.db import connection

from linking import import_jobs, tasks
from linking.models import ImportJob, LegacyAccount, LegacyService
from tests.campaign_support import Worker, wait_until, worker_on_test_database

HEADER = "external_id,email,phone,name,name_kana,birth_date,password_hash,points"
LEASE_SECONDS = 2


@pytest.fixture
def worker(transactional_db, tmp_path: Path, settings) -> Iterator[Worker]:
    """A real Celery worker (not started) on the test's database, broker and media."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.IMPORT_LEASE_SECONDS = LEASE_SECONDS
    with worker_on_test_database(
        tmp_path,
        MEDIA_ROOT=str(settings.MEDIA_ROOT),
        IMPORT_LEASE_SECONDS=str(LEASE_SECONDS),
    ) as running:
        yield running


def _job(rows: int) -> ImportJob:
    """A job for a file of `rows` good rows and 2 bad ones (lines 2 and rows + 3)."""
    service = LegacyService.objects.create(code="pos", name_ja="POS会員")
    lines = [HEADER, "B0001,,,,,not-a-date,,"]
    lines += (f"W{n:07d},m{n}@example.jp,,山田 {n},ヤマダ,1980-01-01,,{n}" for n in range(rows))
    lines.append(",,,,,,,")
    job = ImportJob(service=service, encoding="utf-8", language="en")
    job.file.save("pos.csv", ContentFile("\n".join(lines).encode()), save=True)
    return job


def _status(job: ImportJob) -> str:
    job.refresh_from_db()
    return job.status


def _rows_read(job: ImportJob) -> int:
    job.refresh_from_db()
    return import_jobs.rows_read(job)


def _report(job: ImportJob) -> list[tuple[str, str]]:
    with job.report.open("rb") as file:
        rows = csv.DictReader(io.StringIO(file.read().decode()))
        return [(row["line"], row["reason"][:14]) for row in rows]


def test_a_worker_killed_mid_import_is_resumed_when_a_worker_starts(worker: Worker):
    # Enough rows that the import still runs when the kill comes (COPY is faster).
    rows = 200_000 if connection.vendor == "postgresql" else 40_000
    job = _job(rows)
    worker.start()
    tasks.start_import(job)
    wait_until(lambda: _rows_read(job) > 0, what="the import to be under way")

    worker.kill()

    assert _status(job) == "running", "the import finished before the worker was killed"
    assert not LegacyAccount.objects.exists()  # its transaction died with it
    # A worker that starts once the heartbeat is older than the lease takes it up.
    wait_until(lambda: import_jobs.heartbeat_age(job) > LEASE_SECONDS, what="the lease")
    worker.start()
    wait_until(lambda: _status(job) == "done", what="the import to finish")
    assert (job.attempts, job.rows_read, job.inserted, job.rejected) == (2, rows + 2, rows, 2)
    assert LegacyAccount.objects.count() == rows
    assert _report(job) == [("2", "bad birth_date"), (str(rows + 3), "missing extern")]


def test_a_worker_killed_between_the_import_and_its_result_loses_nothing(worker: Worker):
    """The kill lands after every row was written and before the job's result: both
    are one transaction, so the run that beat starts again reports the rows as
    inserted (not "unchanged", as it would after a commit of the rows alone)."""
    if connection.vendor != "postgresql":
        pytest.skip("another connection holds the job's row: PostgreSQL only")
    rows = 20_000
    job = _job(rows)
    params = connection.get_connection_params()
    with (
        psycopg.connect(**params) as service_lock,
        psycopg.connect(**params) as job_lock,
        psycopg.connect(**params, autocommit=True) as watch,
    ):
        # The import waits for the service row until the job's row is held too.
        service_lock.execute(
            "SELECT 1 FROM linking_legacyservice WHERE id = %s FOR UPDATE", [job.service_id]
        )
        worker.start()
        tasks.start_import(job)
        wait_until(lambda: _waiting(watch, "%linking_legacyservice%"), what="the import")
        job_lock.execute("SELECT 1 FROM linking_importjob WHERE id = %s FOR UPDATE", [job.pk])
        service_lock.rollback()
        wait_until(lambda: _waiting(watch, 'UPDATE "linking_importjob"%'), what="its result")

        worker.kill()
        job_lock.rollback()

    assert _status(job) == "running"
    assert not LegacyAccount.objects.exists()
    worker.start(beat=True)
    wait_until(lambda: _status(job) == "done", what="the import to finish")
    assert (job.attempts, job.inserted, job.unchanged, job.rejected) == (2, rows, 0, 2)
    assert LegacyAccount.objects.count() == rows
    assert len(_report(job)) == 2


def _waiting(watch, query: str) -> bool:
    """Whether a backend waits for a lock while running a statement like query."""
    found = watch.execute(
        "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
        "AND datname = current_database() AND query LIKE %s",
        [query],
    ).fetchone()
    return found is not None
