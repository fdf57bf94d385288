"""Imports started from the admin: the upload becomes an ImportJob, a Celery worker
runs it. Progress goes to a small file beside the upload, because the import runs
in one transaction whose row counts nobody else can see until it commits."""

import json
import tempfile
from pathlib import Path

from django.core.files import File
from django.db import transaction
from django.utils import timezone

from linking.importer import ImportFileError, import_legacy_accounts, write_report
from linking.models import ImportJob


def start(job: ImportJob) -> None:
    from linking.tasks import run_import_job

    transaction.on_commit(lambda: run_import_job.delay(job.pk))


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


def run(job_id: int) -> None:
    """Run a pending job once; a redelivered task finds it taken and does nothing."""
    if not ImportJob.objects.filter(pk=job_id, status=ImportJob.Status.PENDING).update(
        status=ImportJob.Status.RUNNING, started_at=timezone.now()
    ):
        return
    job = ImportJob.objects.select_related("service").get(pk=job_id)
    progress_file = progress_path(job)

    def progress(count: int) -> None:
        progress_file.write_text(json.dumps({"rows_read": count}))

    try:
        result = import_legacy_accounts(
            service=job.service, path=Path(job.file.path), encoding=job.encoding, progress=progress
        )
    except (ImportFileError, OSError, UnicodeError) as exc:
        _fail(job, str(exc))
        return
    except Exception as exc:
        _fail(job, f"unexpected error: {exc!r}")
        raise
    finally:
        progress_file.unlink(missing_ok=True)
    job.rows_read, job.inserted, job.updated = result.read, result.inserted, result.updated
    job.unchanged, job.rejected = result.unchanged, result.rejected
    if result.rejects:
        with tempfile.TemporaryDirectory() as folder:
            report = Path(folder) / "rejected.csv"
            write_report(report, result.rejects)
            with report.open("rb") as file:
                job.report.save(f"{Path(job.file.name).stem}-rejected.csv", File(file), save=False)
    job.status, job.finished_at = ImportJob.Status.DONE, timezone.now()
    job.save()


def _fail(job: ImportJob, error: str) -> None:
    ImportJob.objects.filter(pk=job.pk).update(
        status=ImportJob.Status.FAILED, error=error[:2000], finished_at=timezone.now()
    )
