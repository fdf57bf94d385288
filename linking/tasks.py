from celery import shared_task
from celery.signals import worker_ready

from linking import import_jobs


@shared_task(acks_late=True)
def run_import_job(job_id: int) -> None:
    import_jobs.run(job_id)


@shared_task(name="imports.recover")
def recover_import_jobs() -> int:
    """Run by beat, and at every worker's start: imports whose worker was lost."""
    return import_jobs.recover()


@worker_ready.connect
def _recover_import_jobs_at_start(**kwargs) -> None:
    recover_import_jobs.delay()


@shared_task(name="linking.refresh_link_stats")
def refresh_link_stats() -> int:
    from linking.staff import stats

    return stats.refresh()
