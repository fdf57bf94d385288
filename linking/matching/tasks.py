"""Celery tasks of matching, and how a run is queued."""

from celery import shared_task
from django.conf import settings
from django.db import transaction

from linking.matching import jobs
from linking.matching.models import MatchRun, ModelVersion


def start(*, user=None, backend: str | None = None, model_version: ModelVersion | None = None):
    """A pending run, handed to a Celery worker once the transaction commits."""
    run = MatchRun.objects.create(
        backend=backend or settings.MATCHING_BACKEND, started_by=user, model_version=model_version
    )
    transaction.on_commit(lambda: run_matching.delay(run.pk))
    return run


@shared_task(name="matching.run", acks_late=True)
def run_matching(run_id: int) -> None:
    jobs.run(run_id)
