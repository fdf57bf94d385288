from django import forms
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.models import (
    BackchannelLogout,
    ConsentNotice,
    ConsentRecord,
    Customer,
    IssuedUnifiedID,
)
from linking.staff import roles
from linking.staff.read_only import ReadOnlyAdmin

# Django stores a permission's name in English when it migrates ("Can add customer"),
# so staff would pick permissions in English; these say it in the staff's language.
_DEFAULT_PERMISSIONS = {
    "add": _("Can add %(thing)s"),
    "change": _("Can change %(thing)s"),
    "delete": _("Can delete %(thing)s"),
    "view": _("Can view %(thing)s"),
}


def staff_permissions() -> QuerySet[Permission]:
    """The permissions that grant something in the admin: those of the models it shows
    and those declared for staff pages (a model's Meta.permissions)."""
    models = [
        model
        for model in apps.get_models()
        if admin.site.is_registered(model) or model._meta.permissions
    ]
    types = ContentType.objects.get_for_models(*models, for_concrete_models=False).values()
    return Permission.objects.filter(content_type__in=types).select_related("content_type")


class PermissionChoiceField(forms.ModelMultipleChoiceField):
    """A permission as "app | what it allows", in the staff's language."""

    def label_from_instance(self, obj: Permission) -> str:
        model = obj.content_type.model_class()
        action, _sep, model_name = obj.codename.partition("_")
        if action in _DEFAULT_PERMISSIONS and model and model_name == model._meta.model_name:
            name = _DEFAULT_PERMISSIONS[action] % {"thing": model._meta.verbose_name}
        else:
            name = gettext(obj.name)  # declared by us: the name is in the catalogue
        return f"{apps.get_app_config(obj.content_type.app_label).verbose_name} | {name}"


class RoleChoiceField(forms.ModelMultipleChoiceField):
    """A role by its name in the staff's language (the group keeps its stored name)."""

    def label_from_instance(self, obj: Group) -> str:
        return roles.label(obj.name)


class RoleListFilter(admin.RelatedFieldListFilter):
    """The staff list's filter by role, roles named in the staff's language."""

    def field_choices(self, field, request, model_admin):
        choices = super().field_choices(field, request, model_admin)
        return [(pk, roles.label(name)) for pk, name in choices]


class _PermissionsInLanguage:
    """Roles and permissions are ticked in plain checkbox lists: the admin's two-list
    picker labels its search icons with an aria-label that WCAG forbids there."""

    filter_horizontal = ()

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name in ("permissions", "user_permissions"):
            kwargs["form_class"] = PermissionChoiceField
            kwargs["queryset"] = staff_permissions()
        if db_field.name == "groups":
            kwargs["form_class"] = RoleChoiceField
        if db_field.name in ("permissions", "user_permissions", "groups"):
            kwargs["widget"] = forms.CheckboxSelectMultiple
        return super().formfield_for_manytomany(db_field, request, **kwargs)


class RoleForm(forms.ModelForm):
    class Meta:
        model = Group
        fields = ("name", "permissions")
        labels = {"name": _("role name")}


admin.site.unregister(Group)


@admin.register(Group)
class RoleAdmin(_PermissionsInLanguage, GroupAdmin):
    """Staff roles (Django groups): named as roles, their permissions in the staff's
    language."""

    form = RoleForm
    list_display = ("role",)

    @admin.display(description=_("role name"), ordering="name")
    def role(self, obj: Group) -> str:
        return roles.label(obj.name)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        role = self.get_object(request, object_id)
        if role is not None:  # the page's subtitle; otherwise the stored name
            extra_context = {"subtitle": roles.label(role.name), **(extra_context or {})}
        return super().change_view(request, object_id, form_url, extra_context)


@admin.register(Customer)
class CustomerAdmin(_PermissionsInLanguage, UserAdmin):
    ordering = ("-date_joined",)
    list_display = ("unified_id", "email", "name", "is_staff", "date_joined")
    list_filter = ("is_staff", "is_superuser", "is_active", ("groups", RoleListFilter))
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
class IssuedUnifiedIDAdmin(ReadOnlyAdmin):
    list_display = ("unified_id", "issued_at", "retired_at")
    search_fields = ("unified_id",)


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
class ConsentRecordAdmin(ReadOnlyAdmin):
    list_display = ("customer_unified_id", "kind", "notice", "source", "created_at")
    list_filter = ("kind", "source")
    search_fields = ("customer_unified_id",)


@admin.register(BackchannelLogout)
class BackchannelLogoutAdmin(admin.ModelAdmin):
    """A group service's back-channel logout URI (accounts.oidc_logout)."""

    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    list_display = ("client", "uri")
