"""Staff upload a CSV in the admin; a Celery task imports it and the page shows
progress and the report of rejected rows. A job whose worker was lost runs again
by itself, and its result commits with its import or not at all."""

import datetime
import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, connections
from django.utils import timezone

from linking import import_jobs, tasks
from linking.models import ImportJob, LegacyAccount, LegacyService
from tests.campaign_support import wait_until
from tests.import_support import upload

CSV = (
    "external_id,email,phone,name,name_kana,birth_date,password_hash,points\n"
    "S1,hanako@example.jp,090-1111-2222,山田 花子,ヤマダ ハナコ,1990-04-01,,100\n"
    ",nobody@example.jp,,,,,,\n"
    "S2,taro@example.jp,,田中 太郎,タナカ タロウ,not-a-date,,5\n"
    "S3,jiro@example.jp,,佐藤 次郎,サトウ ジロウ,,,20\n"
).encode("cp932")


@pytest.fixture
def admin_client(otp_admin_client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return otp_admin_client


def test_upload_imports_good_rows_and_reports_bad_ones(
    admin_client, service, django_capture_on_commit_callbacks
):
    job = upload(admin_client, service, django_capture_on_commit_callbacks, CSV, language="en")
    assert (job.status, job.language) == ("pending", "en")
    page = admin_client.get(f"/admin/linking/importjob/{job.pk}/change/").content.decode()
    assert 'http-equiv="refresh"' in page

    import_jobs.run(job.pk)

    job.refresh_from_db()
    assert (job.status, job.rows_read, job.inserted, job.rejected) == ("done", 4, 2, 2)
    assert not import_jobs.progress_path(job).exists()  # the heartbeat cleans up
    assert set(LegacyAccount.objects.values_list("external_id", flat=True)) == {"S1", "S3"}
    page = admin_client.get(f"/admin/linking/importjob/{job.pk}/change/").content.decode()
    assert 'http-equiv="refresh"' not in page
    report = admin_client.get(f"/admin/linking/importjob/{job.pk}/report/")
    lines = b"".join(report.streaming_content).decode().splitlines()
    assert lines == [
        "line,last_line,external_id,reason",
        "3,3,,missing external_id",
        "4,4,S2,bad birth_date 'not-a-date' (expected YYYY-MM-DD)",
    ]


def test_a_redelivered_task_does_not_import_twice(
    admin_client, service, django_capture_on_commit_callbacks
):
    job = upload(admin_client, service, django_capture_on_commit_callbacks, CSV, language="ja")
    import_jobs.run(job.pk)
    finished = ImportJob.objects.get(pk=job.pk).finished_at
    import_jobs.run(job.pk)
    assert ImportJob.objects.get(pk=job.pk).finished_at == finished


def test_a_file_without_the_required_columns_fails_clearly(
    admin_client, service, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks():
        admin_client.post(
            "/admin/linking/importjob/add/",
            {
                "service": service.pk,
                "encoding": "auto",
                "file": SimpleUploadedFile("x.csv", b"id,mail\n1,a@b.jp\n"),
            },
        )
    job = ImportJob.objects.get()
    import_jobs.run(job.pk)
    job.refresh_from_db()
    assert job.status == "failed"
    assert "external_id" in job.error
    assert not LegacyAccount.objects.exists()


def test_non_staff_cannot_download_reports(client, customer, service):
    client.force_login(customer)
    assert client.get("/admin/linking/importjob/1/report/").status_code == 302


# A job whose worker was lost (killed, out of memory, machine gone) does not stay
# "importing": recovery runs it again, or fails it with a message after 3 tries.


def _lost(job: ImportJob, *, attempts: int, lease: int, heartbeat_age: float | None) -> None:
    """The job as a killed worker leaves it: running, its heartbeat this old (None:
    it never wrote one)."""
    ImportJob.objects.filter(pk=job.pk).update(
        status="running",
        attempts=attempts,
        started_at=timezone.now() - datetime.timedelta(seconds=lease + 60),
    )
    if heartbeat_age is not None:
        beat = import_jobs.progress_path(job)
        beat.write_text(json.dumps({"rows_read": 2}))
        then = time.time() - heartbeat_age
        os.utime(beat, (then, then))


@pytest.mark.parametrize("heartbeat_age", [None, 31.0])
def test_a_job_whose_worker_was_lost_runs_again_and_finishes(
    admin_client, service, django_capture_on_commit_callbacks, settings, heartbeat_age
):
    settings.IMPORT_LEASE_SECONDS = 30
    job = upload(admin_client, service, django_capture_on_commit_callbacks, CSV, language="ja")
    _lost(job, attempts=1, lease=30, heartbeat_age=heartbeat_age)

    with django_capture_on_commit_callbacks() as callbacks:
        assert tasks.recover_import_jobs() == 1
    assert len(callbacks) == 1  # the task is queued again
    import_jobs.run(job.pk)

    job.refresh_from_db()
    assert (job.status, job.attempts, job.inserted, job.rejected) == ("done", 2, 2, 2)
    assert job.report and job.error == ""


def test_a_job_whose_worker_still_beats_is_left_running(
    admin_client, service, django_capture_on_commit_callbacks, settings
):
    settings.IMPORT_LEASE_SECONDS = 30
    job = upload(admin_client, service, django_capture_on_commit_callbacks, CSV, language="ja")
    _lost(job, attempts=1, lease=30, heartbeat_age=29.0)

    with django_capture_on_commit_callbacks() as callbacks:
        assert tasks.recover_import_jobs() == 0

    assert callbacks == []
    assert ImportJob.objects.get(pk=job.pk).status == "running"


def test_a_job_lost_three_times_fails_with_a_message(
    admin_client, service, django_capture_on_commit_callbacks, settings
):
    settings.IMPORT_LEASE_SECONDS = 30
    job = upload(admin_client, service, django_capture_on_commit_callbacks, CSV, language="ja")
    _lost(job, attempts=3, lease=30, heartbeat_age=31.0)

    with django_capture_on_commit_callbacks() as callbacks:
        assert tasks.recover_import_jobs() == 1

    assert callbacks == []
    job.refresh_from_db()
    assert job.status == "failed" and job.finished_at
    # In the site's language (LANGUAGE_CODE), as the worker writes it.
    assert job.error == (
        "このファイルを取り込んでいたワーカーが、完了する前に3回停止しました"
        "（強制終了またはメモリ不足など）。このファイルからは何も取り込まれていません。"
    )
    page = admin_client.get(f"/admin/linking/importjob/{job.pk}/change/").content.decode()
    assert "3回停止しました" in page


def test_beat_looks_for_lost_imports():
    tasks = {entry["task"]: entry["schedule"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert tasks["imports.recover"] <= 60


@pytest.mark.django_db(transaction=True)
def test_a_run_whose_job_was_taken_over_meanwhile_rolls_its_import_back(settings, tmp_path):
    """Recovery judged this run lost (its heartbeat stalled) and gave the job to a
    second run: when the first one ends after all, neither its rows nor its counts
    are committed, so the second run's result is the job's."""
    if connection.vendor != "postgresql":
        pytest.skip("another connection blocks the import mid-way: PostgreSQL only")
    settings.MEDIA_ROOT = tmp_path / "media"
    job = _job()
    with _run_waiting_for_the_service(job):
        # Meanwhile the job went to a second run (its attempt 2).
        assert ImportJob.objects.filter(pk=job.pk, attempts=1).update(attempts=2) == 1

    job.refresh_from_db()
    assert (job.status, job.attempts, job.inserted, job.rejected) == ("running", 2, 0, 0)
    assert not job.report
    assert [path.name for path in (tmp_path / "media").rglob("*.csv")] == ["pos.csv"]
    assert not LegacyAccount.objects.exists()


def _job() -> ImportJob:
    service = LegacyService.objects.create(code="pos", name_ja="POS")
    job = ImportJob(service=service)
    job.file.save("pos.csv", ContentFile(CSV), save=True)
    return job


@contextmanager
def _run_waiting_for_the_service(job: ImportJob) -> Iterator[None]:
    """Runs the job in a thread; its import, once the job is claimed, waits for a
    lock held here on the service row until the block ends, then finishes."""
    params = connection.get_connection_params()
    with psycopg.connect(**params) as service_lock, psycopg.connect(**params) as watch:
        service_lock.execute(
            "SELECT 1 FROM linking_legacyservice WHERE id = %s FOR UPDATE", [job.service_id]
        )
        run = threading.Thread(target=_run_and_close, args=(job.pk,))
        run.start()
        try:
            wait_until(lambda: _waiting_for_locks(watch) == 1, what="the import to wait")
            yield
        finally:
            service_lock.rollback()
            run.join()


def _run_and_close(job_id: int) -> None:
    try:
        import_jobs.run(job_id)
    finally:
        connections.close_all()


def _waiting_for_locks(watch) -> int:
    row = watch.execute(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE wait_event_type = 'Lock' AND datname = current_database()"
    ).fetchone()
    watch.commit()
    return row[0]


@pytest.mark.django_db(transaction=True)
def test_an_import_longer_than_the_lease_keeps_its_job_while_its_worker_lives(settings, tmp_path):
    """The worker beats while the import waits (here for a lock on the service):
    recovery leaves the job alone, and the import finishes as the job's one run."""
    if connection.vendor != "postgresql":
        pytest.skip("another connection blocks the import mid-way: PostgreSQL only")
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.IMPORT_LEASE_SECONDS = 1
    job = _job()
    with _run_waiting_for_the_service(job):
        wait_until(lambda: _running_for(job) > 3, what="three leases to pass")

        assert tasks.recover_import_jobs() == 0

    job.refresh_from_db()
    assert (job.status, job.attempts, job.inserted, job.rejected) == ("done", 1, 2, 2)


def _running_for(job: ImportJob) -> float:
    job.refresh_from_db()
    return (timezone.now() - job.started_at).total_seconds()
