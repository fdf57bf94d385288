from django.contrib import admin
from django.db import models
from django.http import FileResponse, Http404, HttpRequest
from django.urls import path, reverse
from django.utils import translation
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from accounts.audit import AuditEvent
from linking import import_jobs, tasks
from linking.models import ImportJob, LegacyAccount, LegacyService, LinkEvent
from linking.staff import labels
from linking.staff.read_only import ReadOnlyAdmin


@admin.register(LegacyService)
class LegacyServiceAdmin(admin.ModelAdmin):
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    list_display = ("code", "name_ja", "name_en", "accepted_proofs", "created_at")
    search_fields = ("code", "name_ja", "name_en")
    readonly_fields = ("created_at",)


@admin.register(LegacyAccount)
class LegacyAccountAdmin(admin.ModelAdmin):
    list_display = ("external_id", "service", "name", "email_key", "phone_key", "owner", "points")
    list_filter = ("service",)
    list_select_related = ("service", "owner")
    search_fields = ("=external_id", "=email_key", "=phone_key")
    raw_id_fields = ("owner",)
    # Ownership changes only through the linking flows, which record history.
    readonly_fields = (
        "owner",
        "linked_at",
        "email_key",
        "phone_key",
        "name_key",
        "row_hash",
        "imported_at",
        "updated_at",
    )
    show_full_result_count = False


class _AppendOnlyAdmin(ReadOnlyAdmin):
    show_full_result_count = False


def _choice_filter(title: str, field: str, names: dict) -> type[admin.SimpleListFilter]:
    """A filter over the values staff have names for (no DISTINCT over the table)."""

    class Filter(admin.SimpleListFilter):
        parameter_name = field

        def lookups(self, request, model_admin) -> list[tuple[str, str]]:
            return list(names.items())

        def queryset(self, request, queryset):
            return queryset.filter(**{field: self.value()}) if self.value() else queryset

    Filter.title = title
    return Filter


class _LabelledEventAdmin(_AppendOnlyAdmin):
    @admin.display(description=_("reason"))
    def reason_label(self, obj) -> str:
        return labels.reason(obj.reason)


@admin.register(LinkEvent)
class LinkEventAdmin(_LabelledEventAdmin):
    list_display = (
        "created_at",
        "action",
        "account",
        "customer_unified_id",
        "proof",
        "actor_kind",
        "reason_label",
    )
    list_filter = ("action", "proof", "actor_kind")
    list_select_related = ("account__service",)
    search_fields = ("=customer_unified_id", "=account__external_id")
    date_hierarchy = "created_at"
    fields = (
        "created_at",
        "action",
        "account",
        "customer",
        "customer_unified_id",
        "proof",
        "actor_kind",
        "actor",
        "campaign_id",
        "reason_label",
        "ip",
        "user_agent",
    )
    readonly_fields = fields


@admin.register(AuditEvent)
class AuditEventAdmin(_LabelledEventAdmin):
    """The audit trail, read-only for everyone: by customer (unified ID or email),
    actor (email), action and date. Actions, methods and the system's reasons are
    stored in English and shown in the staff member's language."""

    list_display = (
        "created_at",
        "reference",
        "action_label",
        "customer_unified_id",
        "actor_kind",
        "actor",
        "method_label",
        "reason_label",
        "ip",
    )
    list_filter = (
        _choice_filter(_("action"), "action", labels.ACTIONS),
        "actor_kind",
        _choice_filter(_("method"), "method", labels.METHODS),
        ("created_at", admin.DateFieldListFilter),
    )
    list_select_related = ("actor",)
    search_fields = (
        "=reference",
        "=customer_unified_id",
        "=customer__email",
        "=actor__email",
        "=account__external_id",
    )
    search_help_text = _("Reference, unified ID, customer or staff email, or member number.")
    date_hierarchy = "created_at"
    fields = (
        "created_at",
        "reference",
        "action_label",
        "customer",
        "customer_unified_id",
        "actor_kind",
        "actor",
        "account",
        "method_label",
        "reason_label",
        "ip",
        "user_agent",
        "data",
    )
    readonly_fields = fields

    @admin.display(description=_("action"), ordering="action")
    def action_label(self, obj: AuditEvent) -> str:
        return labels.action(obj.action)

    @admin.display(description=_("method"), ordering="method")
    def method_label(self, obj: AuditEvent) -> str:
        return labels.method(obj.method)


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    """Upload a CSV of legacy accounts; a Celery worker imports it. While one runs,
    its page and the list refresh themselves (no JavaScript) and show the rows read
    so far; a job whose worker was lost runs again by itself (attempts)."""

    list_display = (
        "created_at",
        "service",
        "file_name",
        "status",
        "progress",
        "inserted",
        "updated",
        "rejected",
    )
    list_filter = ("status", "service")
    fields = ("service", "file", "encoding")
    change_form_template = "admin/linking/importjob/change_form.html"
    change_list_template = "admin/linking/importjob/change_list.html"

    def get_readonly_fields(self, request: HttpRequest, obj: ImportJob | None = None):
        if obj is None:
            return ()
        return (
            "service",
            "file_name",
            "encoding",
            "status",
            "progress",
            "inserted",
            "updated",
            "unchanged",
            "rejected",
            "report_link",
            "error",
            "attempts",
            "created_by",
            "created_at",
            "started_at",
            "finished_at",
        )

    def get_fields(self, request: HttpRequest, obj: ImportJob | None = None):
        return self.fields if obj is None else self.get_readonly_fields(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: ImportJob | None = None) -> bool:
        return False if obj is not None else super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: ImportJob | None = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: ImportJob, form, change: bool) -> None:
        obj.created_by = request.user
        obj.language = translation.get_language()  # the worker writes reasons in it
        super().save_model(request, obj, form, change)
        tasks.start_import(obj)

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None):
        running = ImportJob.objects.filter(
            status__in=[ImportJob.Status.PENDING, ImportJob.Status.RUNNING]
        ).exists()
        return super().changelist_view(request, {**(extra_context or {}), "refresh": running})

    @admin.display(description=_("CSV file"))
    def file_name(self, obj: ImportJob) -> str:
        # The name only: uploads are not served (MEDIA_URL is not a public route).
        return obj.file.name.rsplit("/", 1)[-1]

    @admin.display(description=_("rows read"))
    def progress(self, obj: ImportJob) -> int:
        return import_jobs.rows_read(obj)

    @admin.display(description=_("report of rejected rows"))
    def report_link(self, obj: ImportJob) -> str:
        if not obj.report:
            return "-"
        url = reverse("admin:linking_importjob_report", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, _("download"))

    def get_urls(self):
        report = self.admin_site.admin_view(self.report_view)
        return [
            path("<int:pk>/report/", report, name="linking_importjob_report"),
            *super().get_urls(),
        ]

    def report_view(self, request: HttpRequest, pk: int) -> FileResponse:
        job = ImportJob.objects.filter(pk=pk).first()
        if job is None or not job.report or not self.has_view_permission(request, job):
            raise Http404
        return FileResponse(
            job.report.open("rb"), as_attachment=True, filename=job.report.name.rsplit("/", 1)[-1]
        )
