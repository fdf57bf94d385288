"""What LINE and Google sign-in views share."""

import functools
from collections.abc import Callable

from allauth.socialaccount.models import SocialApp
from django.http import Http404, HttpRequest, HttpResponse


def only_when_configured(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A provider without an app (no credentials in settings) answers 404 on its URLs,
    as if it were not installed, instead of failing with a server error."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except SocialApp.DoesNotExist:
            raise Http404("sign-in provider not configured") from None

    return wrapper
