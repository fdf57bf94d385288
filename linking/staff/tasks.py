"""Celery tasks of the staff pages (found by config.celery: the staff site rides on
django.contrib.admin's app, so it has no app of its own to autodiscover)."""

from celery import shared_task

from linking.staff import stats


@shared_task(name="linking.refresh_link_stats")
def refresh_link_stats() -> int:
    return stats.refresh()
