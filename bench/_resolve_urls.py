"""The site's URLs plus a bare Django JSON endpoint, served by the same gunicorn
with the same middleware, so bench.resolve compares the two under equal terms."""

from django.http import HttpRequest, JsonResponse
from django.urls import path

from config.urls import urlpatterns as site_urlpatterns


def bare(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True})


urlpatterns = [path("bench/bare", bare), *site_urlpatterns]
