"""The site's URLs as they are with Postmark as the email service
(EMAIL_BACKEND=anymail.backends.postmark.EmailBackend): its delivery-report webhook."""

from django.urls import include, path

from config.urls import _email_service_reports
from config.urls import urlpatterns as site

urlpatterns = [
    path(
        "anymail/",
        include((_email_service_reports("anymail.backends.postmark.EmailBackend"), "anymail")),
    ),
    *(entry for entry in site if str(entry.pattern) != "anymail/"),
]
