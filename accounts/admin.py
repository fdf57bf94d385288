from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import (
    BackchannelLogout,
    ConsentNotice,
    ConsentRecord,
    Customer,
    IssuedUnifiedID,
)


@admin.register(Customer)
class CustomerAdmin(UserAdmin):
    ordering = ("-date_joined",)
    list_display = ("unified_id", "email", "name", "is_staff", "date_joined")
    search_fields = ("unified_id", "email", "name")
    readonly_fields = ("unified_id", "date_joined", "last_login")
    fieldsets = (
        (None, {"fields": ("unified_id", "email", "name", "password")}),
        (
            _("Permissions"),
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        (_("Dates"), {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)


@admin.register(IssuedUnifiedID)
class IssuedUnifiedIDAdmin(admin.ModelAdmin):
    list_display = ("unified_id", "issued_at", "retired_at")
    search_fields = ("unified_id",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ConsentNotice)
class ConsentNoticeAdmin(admin.ModelAdmin):
    """Staff write a draft, then publish it; a published version is read-only, and a
    change means a new version (customers are asked to agree again)."""

    list_display = ("version", "created_at", "published_at")
    readonly_fields = ("version", "created_at", "published_at")
    actions = ("publish",)
    fieldsets = (
        (_("Purpose of use"), {"fields": ("purpose_ja", "purpose_en")}),
        (
            _("Joint use"),
            {
                "fields": (
                    "joint_companies_ja",
                    "joint_companies_en",
                    "joint_data_ja",
                    "joint_data_en",
                    "joint_purposes_ja",
                    "joint_purposes_en",
                    "responsible_company_ja",
                    "responsible_company_en",
                )
            },
        ),
        (_("Version"), {"fields": ("version", "created_at", "published_at")}),
    )

    def has_change_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.is_published:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.is_published:
            return False
        return super().has_delete_permission(request, obj)

    @admin.action(description=_("Publish the selected drafts"))
    def publish(self, request, queryset) -> None:
        published = queryset.filter(published_at__isnull=True).update(published_at=timezone.now())
        self.message_user(request, _("%(count)d notice(s) published.") % {"count": published})


@admin.register(ConsentRecord)
class ConsentRecordAdmin(admin.ModelAdmin):
    list_display = ("customer_unified_id", "kind", "notice", "source", "created_at")
    list_filter = ("kind", "source")
    search_fields = ("customer_unified_id",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(BackchannelLogout)
class BackchannelLogoutAdmin(admin.ModelAdmin):
    """A group service's back-channel logout URI (accounts.oidc_logout)."""

    list_display = ("client", "uri")
