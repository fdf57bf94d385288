from allauth.account import views as allauth_views
from anymail import urls as anymail_urls
from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views import defaults

from accounts import oidc_views
from accounts import views as account_views
from accounts.stepup import step_up_required
from config import unavailable, views
from linking.api import problems


def _email_service_reports(backend: str) -> list:
    """The delivery-report webhook (bounces, complaints: linking.campaigns.bounces) of
    the email service EMAIL_BACKEND names, anymail.backends.<service>.EmailBackend, and
    no other: an unconfigured service's webhook answers every request with an error."""
    parts = backend.split(".")
    if parts[:2] != ["anymail", "backends"]:
        return []
    name = f"{parts[2]}_tracking_webhook"
    return [pattern for pattern in anymail_urls.urlpatterns if pattern.name == name]


urlpatterns = [
    # First: the group services' API is the busiest path, and URLs resolve in order.
    path("api/v1/", include("linking.api.urls")),
    path("", account_views.home, name="home"),
    path("me/", account_views.me, name="me"),
    path("me/agreement/", account_views.agreement, name="consent"),
    path("me/marketing/", account_views.marketing, name="marketing"),
    path("me/export/", account_views.export_data, name="export_data"),
    path("me/delete/", account_views.delete_account, name="delete_account"),
    path("privacy/", account_views.notice, name="notice"),
    path("terms/", account_views.terms, name="terms"),
    path("link/", include("linking.urls")),
    path("c/", include("linking.campaigns.urls")),
    path("line/", include("linking.line.urls")),
    # Email services' tracking webhooks (bounces, complaints): linking.campaigns.bounces.
    path(
        "anymail/",
        include((_email_service_reports(settings.EMAIL_BACKEND), anymail_urls.app_name)),
    ),
    path("accounts/3rdparty/", account_views.connections, name="socialaccount_connections"),
    path(
        "accounts/reauthenticate/idp/", account_views.reauthenticate_idp, name="reauthenticate_idp"
    ),
    path(
        "accounts/reauthenticate/code/",
        account_views.request_reauthentication_code,
        name="account_request_reauthentication_code",
    ),
    path(
        "accounts/reauthenticate/code/confirm/",
        account_views.confirm_reauthentication_code,
        name="account_confirm_reauthentication_code",
    ),
    path("accounts/2fa/", include("accounts.mfa.urls")),
    # allauth's pages that change how a customer signs in, behind step-up.
    path(
        "accounts/email/",
        step_up_required(allauth_views.email, allow_get=True),
        name="account_email",
    ),
    path(
        "accounts/password/change/",
        step_up_required(allauth_views.password_change, allow_get=True),
        name="account_change_password",
    ),
    path(
        "accounts/password/set/",
        step_up_required(allauth_views.password_set, allow_get=True),
        name="account_set_password",
    ),
    path("accounts/", include("allauth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("healthz", views.healthz, name="healthz"),
    path("mailbox/", views.mailbox_index, name="mailbox"),
    path("admin/", admin.site.urls),
    # The OpenID Connect provider: /.well-known/openid-configuration, /identity/o/...
    # allauth's, with the endpoints that need more in front (accounts.oidc_views).
    path("identity/o/authorize", oidc_views.authorize),
    path("identity/o/api/token", oidc_views.token),
    path("identity/o/api/introspect", oidc_views.introspect),
    path("identity/o/api/revoke", oidc_views.revoke),
    path("identity/o/api/device/code", oidc_views.not_offered),
    path("identity/o/device", oidc_views.not_offered),
    path("", include("allauth.idp.urls")),
]

# Django's error pages, except under /api/: problem details there (problems.py).
handler400 = problems.or_page(problems.INVALID_REQUEST, defaults.bad_request)
handler404 = problems.or_page(problems.NOT_FOUND, defaults.page_not_found)
# A service away (the database, Redis): 503 with Retry-After (unavailable.py).
handler500 = unavailable.server_error
