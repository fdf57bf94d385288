"""The import list in the admin: the file is named, not linked (uploads are not
served), and the list refreshes itself while an import is waiting or running."""

import pytest
from django.core.files.base import ContentFile

from linking.models import ImportJob

LIST = "/admin/linking/importjob/"


@pytest.fixture
def job(settings, tmp_path, service, otp_admin_client):
    settings.MEDIA_ROOT = tmp_path / "media"
    job = ImportJob(service=service)
    job.file.save("pos-2026-12.csv", ContentFile(b"external_id\n"), save=True)
    return job


def test_the_file_is_named_not_linked(otp_admin_client, job):
    for url in (LIST, f"{LIST}{job.pk}/change/"):
        page = otp_admin_client.get(url).content.decode()
        assert "pos-2026-12.csv" in page, url
        assert job.file.url not in page, url


def test_the_list_refreshes_while_an_import_waits_or_runs(otp_admin_client, job):
    for status in (ImportJob.Status.PENDING, ImportJob.Status.RUNNING):
        ImportJob.objects.filter(pk=job.pk).update(status=status)
        assert 'http-equiv="refresh"' in otp_admin_client.get(LIST).content.decode()
    ImportJob.objects.filter(pk=job.pk).update(status=ImportJob.Status.DONE)
    assert 'http-equiv="refresh"' not in otp_admin_client.get(LIST).content.decode()
