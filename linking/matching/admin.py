"""Staff pages for probabilistic 名寄せ: start a run, see its progress, review the
groups it found with the evidence per field, confirm or dismiss them."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from linking.matching import review, tasks
from linking.matching.models import CandidateGroup, MatchRun, ModelVersion
from linking.staff.read_only import ReadOnlyAdmin


@admin.register(ModelVersion)
class ModelVersionAdmin(ReadOnlyAdmin):
    list_display = ("__str__", "created_at", "note")
    readonly_fields = ("created_at", "note", "splink_settings")


@admin.register(MatchRun)
class MatchRunAdmin(ReadOnlyAdmin):
    list_display = (
        "__str__",
        "backend",
        "progress",
        "model_version",
        "input_records",
        "input_services",
        "groups_found",
        "duration_seconds",
        "created_at",
    )
    change_list_template = "admin/matching/matchrun_change_list.html"

    def get_urls(self):
        start = self.admin_site.admin_view(self.start_view)
        return [path("start/", start, name="matching_matchrun_start"), *super().get_urls()]

    def start_view(self, request: HttpRequest) -> HttpResponse:
        """POST only: a run for a worker (the list shows its progress)."""
        if request.method != "POST":
            return HttpResponseRedirect(reverse("admin:matching_matchrun_changelist"))
        if not request.user.has_perm("matching.add_matchrun"):
            raise PermissionDenied
        run = tasks.start(user=request.user)
        messages.success(request, _("Matching run #%(run)s started.") % {"run": run.pk})
        return HttpResponseRedirect(reverse("admin:matching_matchrun_changelist"))

    def changelist_view(self, request: HttpRequest, extra_context=None):
        extra = {"can_start": request.user.has_perm("matching.add_matchrun")}
        return super().changelist_view(request, {**(extra_context or {}), **extra})


@admin.register(CandidateGroup)
class CandidateGroupAdmin(ReadOnlyAdmin):
    list_display = ("__str__", "status", "probability", "size", "run")
    list_filter = ("status",)
    list_select_related = ("run",)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(size=Count("members"))

    @admin.display(description=gettext_lazy("accounts"), ordering="size")
    def size(self, group: CandidateGroup) -> int:
        return group.size

    def has_change_permission(self, request, obj=None) -> bool:
        return request.user.has_perm("matching.change_candidategroup")

    def change_view(self, request: HttpRequest, object_id: str, form_url="", extra_context=None):
        """The review page: accounts, per-field evidence, confirm or dismiss."""
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        group = self.get_object(request, object_id)  # None for a malformed id too
        if group is None:
            raise Http404
        if request.method == "POST":
            if not self.has_change_permission(request, group):
                raise PermissionDenied
            decision = request.POST.get("decision")
            if decision not in review.DECISIONS:
                messages.error(request, _("Choose confirm or dismiss."))
            else:
                review.decide(group, decision, request.user)
                messages.success(request, review.DECISIONS[decision])
                return HttpResponseRedirect(reverse("admin:matching_candidategroup_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "title": _("Candidate group #%(group)s") % {"group": group.pk},
            "opts": self.model._meta,
            "group": group,
            "rows": review.evidence_rows(group),
            "accounts": review.accounts(group),
            "can_decide": self.has_change_permission(request, group),
        }
        return render(request, "admin/matching/group.html", context)
