"""The Celery broker as tests see it."""

from config.celery import app as celery_app


def purge_broker() -> None:
    """Empty the broker's queues over a new connection: a test may have restarted the
    broker under the pooled ones (tests/test_campaign_worker.py does)."""
    with celery_app.connection_for_write() as connection:
        celery_app.control.purge(connection=connection)
