from celery import shared_task

from linking import import_jobs


@shared_task(acks_late=True)
def run_import_job(job_id: int) -> None:
    import_jobs.run(job_id)


@shared_task(name="linking.refresh_link_stats")
def refresh_link_stats() -> int:
    from linking.staff import stats

    return stats.refresh()
