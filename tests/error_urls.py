"""The site's URLs and error handlers plus one view that fails, for the server-error
page test."""

from django.http import HttpRequest
from django.urls import path

from config import urls as site

handler404 = site.handler404
handler500 = site.handler500


def fail(request: HttpRequest):
    raise RuntimeError("a bug in a view")


urlpatterns = [path("test-failure/", fail), *site.urlpatterns]
