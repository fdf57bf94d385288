"""How people sign in, in the admin: authenticator apps, signed-in sessions and
IdP identities, in place of django-otp's and allauth's own pages. Named in both
languages; no TOTP key or QR code (django-otp's page shows them, so any admin
could copy a second factor); removal is the only change (a lost phone, a session
to end, an IdP identity to detach), never adding one by hand (that would hand
someone a way into the account)."""

from allauth.socialaccount import providers
from allauth.socialaccount.models import SocialAccount
from allauth.usersessions.models import UserSession
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.mfa.models import AuthenticatorApp, SignedInSession
from linking.staff.filters import titled
from linking.staff.labels import when

admin.site.unregister(TOTPDevice)
admin.site.unregister(UserSession)
admin.site.unregister(SocialAccount)


class _RemoveOnlyAdmin(admin.ModelAdmin):
    search_fields = ("=user__email", "=user__unified_id")
    search_help_text = _("Email address or unified ID (without spaces).")
    list_select_related = ("user",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description=_("person"), ordering="user__email")
    def person(self, obj) -> str:
        return str(obj.user)


@admin.register(AuthenticatorApp)
class AuthenticatorAppAdmin(_RemoveOnlyAdmin):
    """Removing a staff member's app makes them enroll a new one at the next sign-in."""

    list_display = ("person", "device_name", "is_confirmed", "added", "last_used")
    list_filter = (("confirmed", titled(_("set up"))),)
    fields = list_display

    @admin.display(description=_("device name"), ordering="name")
    def device_name(self, obj: TOTPDevice) -> str:
        return obj.name

    @admin.display(description=_("set up"), boolean=True, ordering="confirmed")
    def is_confirmed(self, obj: TOTPDevice) -> bool:
        return obj.confirmed

    @admin.display(description=_("added at"), ordering="created_at")
    def added(self, obj: TOTPDevice) -> str:
        return when(obj.created_at)

    @admin.display(description=_("last used at"), ordering="last_used_at")
    def last_used(self, obj: TOTPDevice) -> str:
        return when(obj.last_used_at)


@admin.register(SignedInSession)
class SignedInSessionAdmin(_RemoveOnlyAdmin):
    """Removing a session signs that browser out (allauth ends the session too)."""

    list_display = ("person", "ip_address", "browser", "started", "last_seen")
    fields = list_display

    @admin.display(description=_("IP address"), ordering="ip")
    def ip_address(self, obj: UserSession) -> str:
        return obj.ip

    @admin.display(description=_("browser"))
    def browser(self, obj: UserSession) -> str:
        return obj.user_agent

    @admin.display(description=_("signed in at"), ordering="created_at")
    def started(self, obj: UserSession) -> str:
        return when(obj.created_at)

    @admin.display(description=_("last seen at"), ordering="last_seen_at")
    def last_seen(self, obj: UserSession) -> str:
        return when(obj.last_seen_at)

    def delete_model(self, request: HttpRequest, obj: UserSession) -> None:
        obj.end()

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[UserSession]) -> None:
        for session in queryset:
            session.end()


@admin.register(SocialAccount)
class SocialAccountAdmin(_RemoveOnlyAdmin):
    """Removing one detaches that IdP sign-in from the unified ID."""

    search_fields = ("=uid", "=user__email", "=user__unified_id")
    search_help_text = _("IdP user ID, email address or unified ID (without spaces).")
    list_display = ("person", "provider_name", "idp_user_id", "first_used", "last_used")
    list_filter = (("provider", titled(_("IdP"))),)
    fields = list_display

    @admin.display(description=_("IdP"), ordering="provider")
    def provider_name(self, obj: SocialAccount) -> str:
        # The provider's class names it; an OpenID Connect IdP goes by its own ID.
        provider = providers.registry.get_class(obj.provider)
        return provider.name if provider is not None else obj.provider

    @admin.display(description=_("IdP user ID"), ordering="uid")
    def idp_user_id(self, obj: SocialAccount) -> str:
        return obj.uid

    @admin.display(description=_("first signed in at"), ordering="date_joined")
    def first_used(self, obj: SocialAccount) -> str:
        return when(obj.date_joined)

    @admin.display(description=_("last signed in at"), ordering="last_login")
    def last_used(self, obj: SocialAccount) -> str:
        return when(obj.last_login)
