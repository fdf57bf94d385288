"""The API's audit rows, buffered per process and written off the request path: by
the writer thread, and at a normal exit."""

import os
import subprocess
import sys

from django.test import Client

from linking.api.call_log import call_rows, calls
from linking.api.models import ApiCall
from tests.api_support import bearer, fetch_token
from tests.campaign_support import BASE_DIR, database_url_for_worker, wait_until

pytest_plugins = ["tests.fixtures.api"]


def test_the_writer_thread_writes_every_buffered_call(
    transactional_db, make_client, service, settings
):
    # The writer's first pass comes 2 s after the first row: the three calls (a few
    # milliseconds here) all wait in the buffer until then.
    settings.API_AUDIT_FLUSH_SECONDS = 2
    registered = make_client(services=[service])
    token = fetch_token(registered)
    for external_id in ("S1", "S2", "S3"):
        response = Client().get(
            "/api/v1/resolve",
            {"service": service.code, "external_id": external_id},
            **bearer(token),
        )
        assert response.status_code == 404
    assert calls.pending() == 3  # answered without writing
    assert not ApiCall.objects.exists()

    wait_until(lambda: ApiCall.objects.count() == 3, what="the writer thread")
    assert calls.pending() == 0

    # Back to writing in the request: the writer stops and lets go of its connection.
    settings.API_AUDIT_FLUSH_SECONDS = 0
    wait_until(lambda: not calls.writer_running, what="the writer to stop")
    assert sorted(ApiCall.objects.values_list("subject", flat=True)) == [
        f"{service.code}:S1",
        f"{service.code}:S2",
        f"{service.code}:S3",
    ]


def test_a_process_exiting_normally_writes_what_it_buffered(transactional_db, tmp_path):
    database = database_url_for_worker(tmp_path)
    script = """
import django
django.setup()
from linking.api.call_log import call_rows, calls
for n in range(5):
    calls.record(call_rows("c", "resolve", 200, [f"s:{n}"], 1, None))
assert calls.pending() == 5
"""
    env = {
        **os.environ,
        "DATABASE_URL": next(database),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        # The writer thread would wait an hour: only the exit can write the rows.
        "API_AUDIT_FLUSH_SECONDS": "3600",
    }
    try:
        subprocess.run([sys.executable, "-c", script], cwd=BASE_DIR, env=env, check=True)
        assert sorted(ApiCall.objects.values_list("subject", flat=True)) == [
            f"s:{n}" for n in range(5)
        ]
    finally:
        next(database, None)


def test_rows_the_database_refuses_wait_and_are_written_once_it_takes_them(
    transactional_db, settings, caplog
):
    # The audit table out of reach (renamed away, as good as a database that does
    # not answer): the writer keeps the rows and tries again; none is lost or doubled.
    from django.db import connection

    settings.API_AUDIT_FLUSH_SECONDS = 0.2
    table = ApiCall._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {table} RENAME TO {table}_away")
    try:
        calls.record(call_rows("c", "batch", 200, ["s:0", "s:1"], 2, None))
        calls.record(call_rows("c", "resolve", 200, ["s:2"], 1, None))
        wait_until(lambda: "write failed, will retry" in caplog.text, what="a refused write")
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {table}_away RENAME TO {table}")

    wait_until(lambda: ApiCall.objects.count() == 3, what="the rows written")
    settings.API_AUDIT_FLUSH_SECONDS = 0
    wait_until(lambda: not calls.writer_running, what="the writer to stop")
    assert sorted(ApiCall.objects.values_list("subject", flat=True)) == ["s:0", "s:1", "s:2"]
