"""The site's URLs without accounts.oidc_views in front of allauth's OpenID provider:
what tests/test_allauth_compat.py pins allauth's own behaviour with."""

from accounts import oidc_views
from config.urls import urlpatterns as site_urlpatterns

_OURS = {
    oidc_views.authorize,
    oidc_views.token,
    oidc_views.introspect,
    oidc_views.revoke,
    oidc_views.not_offered,
}

urlpatterns = [
    pattern for pattern in site_urlpatterns if getattr(pattern, "callback", None) not in _OURS
]
