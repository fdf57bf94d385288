"""Staff upload a CSV in the admin; a Celery task imports it and the page shows
progress and the report of rejected rows."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from linking import import_jobs
from linking.models import ImportJob, LegacyAccount

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


def _upload(admin_client, service, django_capture_on_commit_callbacks) -> ImportJob:
    with django_capture_on_commit_callbacks() as callbacks:
        response = admin_client.post(
            "/admin/linking/importjob/add/",
            {"service": service.pk, "encoding": "auto", "file": SimpleUploadedFile("pos.csv", CSV)},
        )
    assert response.status_code == 302
    assert len(callbacks) == 1  # the Celery task is enqueued once the upload is committed
    return ImportJob.objects.get()


def test_upload_imports_good_rows_and_reports_bad_ones(
    admin_client, service, django_capture_on_commit_callbacks
):
    job = _upload(admin_client, service, django_capture_on_commit_callbacks)
    assert job.status == "pending"
    page = admin_client.get(f"/admin/linking/importjob/{job.pk}/change/").content.decode()
    assert 'http-equiv="refresh"' in page

    import_jobs.run(job.pk)

    job.refresh_from_db()
    assert (job.status, job.rows_read, job.inserted, job.rejected) == ("done", 4, 2, 2)
    assert set(LegacyAccount.objects.values_list("external_id", flat=True)) == {"S1", "S3"}
    page = admin_client.get(f"/admin/linking/importjob/{job.pk}/change/").content.decode()
    assert 'http-equiv="refresh"' not in page
    report = admin_client.get(f"/admin/linking/importjob/{job.pk}/report/")
    lines = b"".join(report.streaming_content).decode().splitlines()
    assert lines[0] == "line,external_id,reason"
    assert [line.split(",")[0] for line in lines[1:]] == ["3", "4"]


def test_a_redelivered_task_does_not_import_twice(
    admin_client, service, django_capture_on_commit_callbacks
):
    job = _upload(admin_client, service, django_capture_on_commit_callbacks)
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
