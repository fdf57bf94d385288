"""The admin site, behind a second factor (django-otp's OTPAdminSite).

Signing in takes two steps: the password (Django's admin sign-in form), then a TOTP
code or a backup code at /admin/verify/. A staff member without a confirmed device
enrolls one at /admin/enroll/ first. Until the second factor is verified no admin
page answers: every one of them redirects to the sign-in, which sends a staff
member who has passed the password on to the second step.
"""

from urllib.parse import urlencode

from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponsePermanentRedirect,
    HttpResponseRedirect,
)
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _
from django_otp.admin import OTPAdminSite

from linking.staff import otp, views
from linking.staff.forms import StaffSignInForm
from linking.staff.otp import safe_next

# Admin pages of models that moved to another app: old address -> new one.
MOVED = {"linking/auditevent/": "accounts/auditevent/"}


class StaffAdminSite(OTPAdminSite):
    site_header = _("Unified ID staff")
    site_title = _("Unified ID staff")
    index_title = _("Administration")
    index_template = "admin/staff/index.html"
    login_form = StaffSignInForm
    login_template = None  # Django's own; the second factor has its own page

    def __init__(self, name: str = "admin") -> None:
        super().__init__(name)

    def login(self, request: HttpRequest, extra_context=None) -> HttpResponse:
        if _awaits_second_factor(request):
            return self._second_factor_redirect(request)
        response = super().login(request, extra_context)
        if request.method == "POST" and _awaits_second_factor(request):
            return self._second_factor_redirect(request)
        return response

    def _second_factor_redirect(self, request: HttpRequest) -> HttpResponseRedirect:
        name = "verify" if otp.confirmed_device(request.user) else "enroll"
        url = reverse(f"{self.name}:staff_{name}")
        target = safe_next(request)
        if target:
            url += "?" + urlencode({"next": target})
        return HttpResponseRedirect(url)

    def get_urls(self):
        def staff(view, permission: str | None = None):
            return self.admin_view(views.requires(permission)(view) if permission else view)

        return [
            path("verify/", views.verify, name="staff_verify"),
            path("enroll/", views.enroll, name="staff_enroll"),
            path("sign-out/", views.sign_out, name="staff_sign_out"),
            path("backup-codes/", staff(views.backup_codes), name="staff_backup_codes"),
            path(
                "dashboard/",
                staff(views.dashboard, "linking.view_link_dashboard"),
                name="staff_dashboard",
            ),
            path(
                "dashboard.csv",
                staff(views.dashboard_csv, "linking.view_link_dashboard"),
                name="staff_dashboard_csv",
            ),
            path(
                "dashboard/refresh/",
                staff(views.dashboard_refresh, "linking.view_link_dashboard"),
                name="staff_dashboard_refresh",
            ),
            path("search/", staff(views.search, "accounts.view_customer"), name="staff_search"),
            path(
                "customer/<int:pk>/",
                staff(views.customer, "accounts.view_customer"),
                name="staff_customer",
            ),
            path(
                "customer/<int:pk>/link/",
                staff(views.link, "linking.assist_link"),
                name="staff_link",
            ),
            path(
                "customer/<int:pk>/unlink/",
                staff(views.unlink, "linking.assist_link"),
                name="staff_unlink",
            ),
            path(
                "matching/",
                staff(views.matching_report, "linking.view_matching_report"),
                name="staff_matching",
            ),
            *(path(old + "<path:rest>", self._moved(new)) for old, new in MOVED.items()),
            *(path(old, self._moved(new)) for old, new in MOVED.items()),
            *super().get_urls(),
        ]

    def _moved(self, new: str):
        """A permanent redirect to the page's new address, query string kept, so
        bookmarks and links to the old one still work."""

        def moved(request: HttpRequest, rest: str = "") -> HttpResponsePermanentRedirect:
            url = reverse(f"{self.name}:index") + new + rest
            query = request.META.get("QUERY_STRING", "")
            return HttpResponsePermanentRedirect(f"{url}?{query}" if query else url)

        return moved


def _awaits_second_factor(request: HttpRequest) -> bool:
    user = request.user
    # Right after the password step, request.user is the fresh user without
    # OTPMiddleware's is_verified(): not verified yet.
    is_verified = getattr(user, "is_verified", None)
    verified = bool(is_verified and is_verified())
    return user.is_authenticated and user.is_active and user.is_staff and not verified
