"""Celery tasks of linking: staff uploads of legacy accounts, and how one is queued."""

from celery import shared_task
from celery.signals import worker_ready
from django.db import transaction

from linking import import_jobs
from linking.models import ImportJob


def start_import(job: ImportJob) -> None:
    """Hand a saved import job to a worker once the transaction commits."""
    transaction.on_commit(lambda: run_import_job.delay(job.pk))


@shared_task(acks_late=True)
def run_import_job(job_id: int) -> None:
    import_jobs.run(job_id)


@shared_task(name="imports.recover")
def recover_import_jobs() -> int:
    """Run by beat, and at every worker's start: imports whose worker was lost."""
    return import_jobs.recover(requeue=start_import)


@worker_ready.connect
def _recover_import_jobs_at_start(**kwargs) -> None:
    recover_import_jobs.delay()
