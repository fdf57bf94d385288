from celery.exceptions import CeleryError
from django.conf import settings
from django.db import DatabaseError, connection
from django.http import Http404, HttpRequest, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from kombu.exceptions import KombuError

from config import mailbox
from config.celery import app as celery_app


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except DatabaseError:
        return False


def _broker_ok() -> bool:
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return True
    except (OSError, KombuError, CeleryError):
        return False


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    checks = {"database": _database_ok(), "broker": _broker_ok()}
    healthy = all(checks.values())
    body = {"status": "ok" if healthy else "fail"}
    body.update({name: "ok" if ok else "fail" for name, ok in checks.items()})
    return JsonResponse(body, status=200 if healthy else 503)


@never_cache
def mailbox_index(request: HttpRequest):
    """The development mailbox. Off unless MAILBOX_VIEW is set (default: DEBUG), and
    empty when mail goes out over SMTP."""
    if not settings.MAILBOX_VIEW:
        raise Http404
    return render(request, "mailbox.html", {"messages_": mailbox.read_messages()})
