"""Imports started from the admin: the upload becomes an ImportJob, a Celery worker
runs it. The import and the job's result commit in one transaction. While it runs,
the worker rewrites a small progress file beside the upload every few seconds: the
rows read so far, and by its time a heartbeat. A running job whose heartbeat is
older than IMPORT_LEASE_SECONDS is run again, or failed after MAX_ATTEMPTS."""

import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from django.conf import settings
from django.core.files import File
from django.db import transaction
from django.db.models import F
from django.utils import timezone, translation
from django.utils.translation import gettext

from linking.importing import ImportFileError, ImportResult, import_legacy_accounts
from linking.models import ImportJob

MAX_ATTEMPTS = 3

logger = logging.getLogger(__name__)


class _Superseded(Exception):
    """The job was taken over by another run meanwhile; this one's import rolls back."""


def progress_path(job: ImportJob) -> Path:
    return Path(job.file.path).with_suffix(".progress.json")


def rows_read(job: ImportJob) -> int:
    """Rows read so far: from the job once it ended, else from its progress file."""
    if job.status != ImportJob.Status.RUNNING:
        return job.rows_read
    try:
        return int(json.loads(progress_path(job).read_text())["rows_read"])
    except (OSError, ValueError, KeyError):
        return 0


def heartbeat_age(job: ImportJob) -> float:
    """Seconds since the worker running the job last wrote its progress file (since
    the job started if there is none)."""
    try:
        return time.time() - progress_path(job).stat().st_mtime
    except OSError:
        started = job.started_at or job.created_at
        return (timezone.now() - started).total_seconds()


class _Heartbeat:
    """Writes the progress file now and every few seconds until the import ends."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows = 0
        self._every = min(10.0, settings.IMPORT_LEASE_SECONDS / 4)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="import-heartbeat", daemon=True)

    def __enter__(self) -> "_Heartbeat":
        self._write()
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        self.path.unlink(missing_ok=True)

    def progress(self, rows: int) -> None:
        self.rows = rows

    def _beat(self) -> None:
        while not self._stop.wait(self._every):
            self._write()

    def _write(self) -> None:
        part = self.path.with_suffix(".part")
        part.write_text(json.dumps({"rows_read": self.rows}))
        os.replace(part, self.path)


def run(job_id: int) -> None:
    """Run a pending job once; a redelivered task finds it taken and does nothing."""
    started = ImportJob.objects.filter(pk=job_id, status=ImportJob.Status.PENDING).update(
        status=ImportJob.Status.RUNNING, started_at=timezone.now(), attempts=F("attempts") + 1
    )
    if not started:
        return
    job = ImportJob.objects.select_related("service").get(pk=job_id)
    with (
        translation.override(language(job)),  # the uploader's language
        _Heartbeat(progress_path(job)) as heartbeat,
        tempfile.TemporaryDirectory() as folder,
    ):
        report = Path(folder) / "rejected.csv"
        try:
            with transaction.atomic():
                result = import_legacy_accounts(
                    service=job.service,
                    path=Path(job.file.path),
                    encoding=job.encoding,
                    report=report,
                    progress=heartbeat.progress,
                )
                _finish(job, result, report)
        except _Superseded:
            return
        except ImportFileError as exc:
            _fail(job, str(exc))
        except FileNotFoundError:  # the stored upload is gone
            logger.exception("import job %s: its file could not be read", job.pk)
            _fail(job, gettext("the uploaded file could not be read; please upload it again"))
        except Exception as exc:
            _fail(job, gettext("unexpected error: %(error)s") % {"error": repr(exc)})
            raise


def language(job: ImportJob) -> str:
    """The language the job's reasons and errors are written in: its uploader's."""
    return job.language or settings.LANGUAGE_CODE


def _finish(job: ImportJob, result: ImportResult, report: Path) -> None:
    """The job's result, in the import's transaction: both commit or neither."""
    if result.rejected:
        with report.open("rb") as file:
            job.report.save(f"{Path(job.file.name).stem}-rejected.csv", File(file), save=False)
    finished = _this_run(job).update(
        status=ImportJob.Status.DONE,
        rows_read=result.read,
        inserted=result.inserted,
        updated=result.updated,
        unchanged=result.unchanged,
        rejected=result.rejected,
        report=job.report.name or "",
        error="",
        finished_at=timezone.now(),
    )
    if not finished:
        if job.report:
            job.report.delete(save=False)
        raise _Superseded


def _fail(job: ImportJob, error: str) -> None:
    _this_run(job).update(
        status=ImportJob.Status.FAILED, error=error[:2000], finished_at=timezone.now()
    )


def _this_run(job: ImportJob):
    """The job's row while it is still this run's (not failed or taken over)."""
    return ImportJob.objects.filter(
        pk=job.pk, status=ImportJob.Status.RUNNING, attempts=job.attempts
    )


def recover(*, requeue: Callable[[ImportJob], None]) -> int:
    """Running jobs whose heartbeat is older than the lease (their worker was killed or
    lost) go back to the queue (requeue), or fail after MAX_ATTEMPTS. Their import
    rolled back with the worker, so running one again imports the whole file.
    Returns how many."""
    lease = settings.IMPORT_LEASE_SECONDS
    recovered = 0
    for job in ImportJob.objects.filter(status=ImportJob.Status.RUNNING):
        if heartbeat_age(job) < lease:
            continue
        if job.attempts >= MAX_ATTEMPTS:
            with translation.override(language(job)):
                message = gettext(
                    "The worker importing this file stopped %(count)d times before it "
                    "finished (killed, or out of memory). Nothing from this file was imported."
                ) % {"count": job.attempts}
            recovered += _this_run(job).update(
                status=ImportJob.Status.FAILED, error=message, finished_at=timezone.now()
            )
        elif _this_run(job).update(status=ImportJob.Status.PENDING):
            requeue(job)
            recovered += 1
    return recovered
