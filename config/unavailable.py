"""When a service the site needs is away (the database, Redis), the answer is 503
with Retry-After, a page or a problem under /api/, rather than a 500: a customer is
told to try again shortly, a group service's client knows when to retry. Nothing
needs restarting: Django opens a new database connection on a later request and
redis-py reconnects, so answers come back with the service."""

import sys

import psycopg
import redis
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.template import loader
from django.views import defaults
from limits.errors import StorageError

from linking.api import problems

RETRY_AFTER_SECONDS = 30


def is_away(exc: BaseException | None) -> bool:
    """Did exc come from a service that is away, rather than from a fault of ours
    (a missing table, a bad query: still a 500)?"""
    if isinstance(exc, StorageError):  # the rate limits' storage, Redis or ours
        return is_away(exc.storage_error)
    if isinstance(exc, (redis.ConnectionError, redis.TimeoutError, InterfaceError)):
        return True
    cause = exc.__cause__ if isinstance(exc, OperationalError) else None
    # PostgreSQL unreachable or gone (no SQLSTATE), a connection error (class 08),
    # shutting down or starting (57P), out of connections or memory (53).
    return isinstance(cause, psycopg.OperationalError) and (
        cause.sqlstate is None or cause.sqlstate.startswith(("08", "57P", "53"))
    )


_server_error = problems.or_page(problems.SERVER_ERROR, defaults.server_error)


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500. Django calls it while handling the exception, so sys.exc_info()
    tells what failed."""
    if not is_away(sys.exc_info()[1]):
        return _server_error(request)
    if request.path.startswith(problems.API_PREFIX):
        response = problems.problem(
            problems.SERVICE_UNAVAILABLE,
            request,
            f"a service the API needs is away; try again in {RETRY_AFTER_SECONDS} seconds",
        )
    else:
        # Without the request, as Django's server_error: its session or user may
        # be behind the service that is away.
        page = loader.get_template("503.html").render()
        response = HttpResponse(page, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response
