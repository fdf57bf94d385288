"""API call audit rows older than API_CALL_RETENTION_DAYS are deleted by an hourly
beat task (linking.api.retention)."""

from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.utils import timezone

from linking.api import retention, tasks
from linking.api.models import ApiCall


def _calls(*days_ago: float) -> None:
    """One audit row per age, written in this order (so numbered in it)."""
    now = timezone.now()
    for number, age in enumerate(days_ago):
        ApiCall.objects.create(
            client_id="client", endpoint="resolve", status=200, subject=f"call {number}",
            created_at=now - timedelta(days=age),
        )  # fmt: skip


def _left() -> list[str]:
    return sorted(ApiCall.objects.values_list("subject", flat=True))


def test_calls_past_the_retention_go_and_the_rest_stay(db, settings):
    settings.API_CALL_RETENTION_DAYS = 30
    _calls(40, 35, 31, 29, 1, 0)

    assert tasks.prune_calls() == 3

    assert _left() == ["call 3", "call 4", "call 5"]
    beat = [entry["task"] for entry in django_settings.CELERY_BEAT_SCHEDULE.values()]
    assert "api.prune_calls" in beat


def test_a_retention_of_zero_keeps_every_call(db, settings):
    settings.API_CALL_RETENTION_DAYS = 0
    _calls(4000, 1)

    assert tasks.prune_calls() == 0
    assert len(_left()) == 2


def test_an_old_call_written_after_a_recent_one_still_goes(db):
    # Web processes flush their buffers a second apart, and a host's clock may run
    # ahead: an older row can be numbered after newer ones, even far newer.
    _calls(0, -3650, 10, 0)

    assert retention.prune_calls(timezone.now() - timedelta(days=1)) == 1

    assert _left() == ["call 0", "call 1", "call 3"]


def test_old_calls_go_a_batch_at_a_time(db, django_assert_num_queries):
    _calls(*[10] * 7, 0, 0)

    # Four batches of at most two (their ids read, then deleted); the last has fewer,
    # so nothing old is left.
    with django_assert_num_queries(4 * 2):
        assert retention.prune_calls(timezone.now() - timedelta(days=1), batch=2) == 7

    assert _left() == ["call 7", "call 8"]


def test_nothing_old_costs_one_statement(db, django_assert_num_queries):
    _calls(0, 0)

    with django_assert_num_queries(1):
        assert retention.prune_calls(timezone.now() - timedelta(days=1)) == 0


@pytest.mark.postgres
def test_on_postgresql_a_brin_index_finds_the_old_calls(db):
    if connection.vendor != "postgresql":
        pytest.skip("BRIN is PostgreSQL's; SQLite reads the table")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = %s AND indexname = %s",
            [ApiCall._meta.db_table, "api_call_created_brin"],
        )
        (definition,) = cursor.fetchone()
    assert "USING brin (created_at)" in definition
