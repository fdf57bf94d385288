"""handler500: when a service the site needs is away (the database, Redis), the
answer is 503 with Retry-After, a page or a problem under /api/, rather than a 500:
a customer is told to try again shortly, a group service's client knows when to
retry. Nothing needs restarting: Django opens a new database connection on a later
request and redis-py reconnects, so answers come back with the service."""

import sys

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template import loader
from django.views import defaults

from accounts.availability import RETRY_AFTER_SECONDS, is_away
from linking.api import problems

_server_error = problems.or_page(problems.SERVER_ERROR, defaults.server_error)
# The OpenID provider's token, introspection and revocation endpoints: their
# clients read OAuth's JSON errors (RFC 6749 §5.2).
OAUTH_PREFIX = "/identity/o/api/"


def server_error(request: HttpRequest) -> HttpResponse:
    """Django calls it while handling the exception, so sys.exc_info() tells what
    failed."""
    if not is_away(sys.exc_info()[1]):
        return _server_error(request)
    if request.path.startswith(problems.API_PREFIX):
        return problems.service_unavailable(request)
    if request.path.startswith(OAUTH_PREFIX):
        response = JsonResponse(
            {
                "error": "temporarily_unavailable",
                "error_description": "A service the server needs is away; try again later.",
            },
            status=503,
        )
    else:
        # Without the request, as Django's server_error: its session or user may be
        # behind the service that is away.
        response = HttpResponse(loader.get_template("503.html").render(), status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response
