from celery import shared_task

from linking.matching import jobs


@shared_task(name="matching.run", acks_late=True)
def run_matching(run_id: int) -> None:
    jobs.run(run_id)
