"""A staff upload of a legacy-account CSV through the admin, for the import tests."""

from django.core.files.uploadedfile import SimpleUploadedFile

from linking.models import ImportJob


def upload(admin_client, service, capture_on_commit, content: bytes, *, language: str):
    """Upload content as a staff member reading `language` (the report is written in
    it); the import job, its Celery task enqueued once the upload committed."""
    with capture_on_commit() as callbacks:
        response = admin_client.post(
            "/admin/linking/importjob/add/",
            {
                "service": service.pk,
                "encoding": "auto",
                "file": SimpleUploadedFile("pos.csv", content),
            },
            HTTP_ACCEPT_LANGUAGE=language,
        )
    assert response.status_code == 302
    assert len(callbacks) == 1
    return ImportJob.objects.get()
