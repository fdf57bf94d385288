"""Staff manage campaigns here: write, preview in both languages, send a test to
themselves, start, pause, resume, cancel, and watch progress."""

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.mail import EmailMultiAlternatives
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import path, re_path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from linking.campaigns import by_line, content, control, planning, selectors
from linking.campaigns.models import Campaign, CampaignStep, Channel, Delivery, Suppression
from linking.models import Language, LegacyAccount
from linking.staff.widgets import name_inputs

_CONTENT_FIELDS = ("subject_ja", "text_ja", "html_ja", "subject_en", "text_en", "html_en")
_LINE_FIELDS = ("line_text_ja", "line_text_en")


class CampaignForm(forms.ModelForm):
    class Meta:
        model = Campaign
        fields = (
            "name",
            "services",
            "start_at",
            "rate_per_minute",
            "accounts",
            "min_points",
            "active_since",
            *_CONTENT_FIELDS,
            *_LINE_FIELDS,
            "from_email",
            "sender_company",
            "sender_address",
            "sender_contact",
            "link_valid_days",
            "attribution_days",
        )

    def clean(self) -> dict:
        data = super().clean()
        for field in (*_CONTENT_FIELDS, *_LINE_FIELDS):
            unknown = content.unknown_placeholders(data.get(field) or "")
            if unknown:
                self.add_error(
                    field,
                    _("Unknown placeholders: %(names)s. Use %(known)s.")
                    % {
                        "names": ", ".join(unknown),
                        "known": ", ".join("{{ " + name + " }}" for name in content.PLACEHOLDERS),
                    },
                )
        if bool(data.get("subject_en")) != bool(data.get("text_en")):
            self.add_error("text_en", _("Give both an English subject and text, or neither."))
        return data


class StepForm(forms.ModelForm):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["channel"].required = False  # a form posted without it: email

    def clean_channel(self) -> str:
        return self.cleaned_data.get("channel") or CampaignStep.Channels.EMAIL


class StepFormSet(forms.BaseInlineFormSet):
    def clean(self) -> None:
        """A step sent by LINE needs the LINE message, with the personal link in it."""
        super().clean()
        by_line = any(
            form.cleaned_data.get("channel", CampaignStep.Channels.EMAIL)
            != CampaignStep.Channels.EMAIL
            for form in self.forms
            if form.cleaned_data and not form.cleaned_data.get("DELETE")
        )
        campaign = self.instance
        texts = [campaign.line_text_ja] + ([campaign.line_text_en] if campaign.line_text_en else [])
        if by_line and not all("link" in content.placeholders(text) for text in texts):
            raise forms.ValidationError(
                _("A step sent by LINE needs a LINE message that contains {{ link }}.")
            )


class StepInline(admin.TabularInline):
    model = CampaignStep
    form = StepForm
    formset = StepFormSet
    extra = 1
    fields = ("number", "days_after", "channel", "planned_at")
    readonly_fields = ("planned_at",)

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        # A tabular row has column headers, not labels: each input is named.
        return name_inputs(super().formfield_for_dbfield(db_field, request, **kwargs))


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    form = CampaignForm
    list_display = ("name", "status", "start_at", "rate_per_minute", "created_at")
    list_filter = ("status",)
    search_fields = ("name",)
    raw_id_fields = ("accounts",)  # millions of accounts: IDs, never a select box
    inlines = (StepInline,)
    readonly_fields = ("status", "started_at", "finished_at", "created_by", "created_at")
    actions = ("start_selected", "pause_selected", "resume_selected", "cancel_selected")
    change_form_template = "admin/campaigns/campaign/change_form.html"
    fieldsets = (
        (None, {"fields": ("name", "status", "services", "start_at", "rate_per_minute")}),
        (gettext_lazy("Audience filters"), {"fields": ("accounts", "min_points", "active_since")}),
        (
            gettext_lazy("Content"),
            {
                "fields": _CONTENT_FIELDS,
                "description": gettext_lazy(
                    "Placeholders: {{ name }}, {{ service }}, {{ member_number }}, "
                    "{{ incentive }}, {{ link }}. Without an HTML body, the text is used."
                ),
            },
        ),
        (
            gettext_lazy("LINE message"),
            {
                "fields": _LINE_FIELDS,
                "description": gettext_lazy(
                    "Sent to LINE friends by steps whose channel is LINE: a short text with "
                    "the same placeholders, {{ link }} required."
                ),
            },
        ),
        (
            gettext_lazy("Sender (shown in every email)"),
            {"fields": ("from_email", "sender_company", "sender_address", "sender_contact")},
        ),
        (
            gettext_lazy("Links"),
            {"fields": ("link_valid_days", "attribution_days")},
        ),
        (
            gettext_lazy("History"),
            {"fields": ("started_at", "finished_at", "created_by", "created_at")},
        ),
    )

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "services":  # a few services: checkboxes, not a two-list picker
            kwargs["widget"] = forms.CheckboxSelectMultiple
        formfield = super().formfield_for_dbfield(db_field, request, **kwargs)
        return name_inputs(formfield) if db_field.name == "start_at" else formfield

    def save_model(self, request: HttpRequest, obj: Campaign, form, change: bool) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    def save_related(self, request: HttpRequest, form, formsets, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        CampaignStep.objects.get_or_create(
            campaign=form.instance, number=0, defaults={"days_after": 0}
        )

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<int:pk>/preview/", view(self.preview_view), name="campaigns_campaign_preview"),
            path("<int:pk>/send-test/", view(self.send_test_view), name="campaigns_campaign_test"),
            path(
                "<int:pk>/progress/", view(self.progress_view), name="campaigns_campaign_progress"
            ),
            # Only the actions: "<pk>/change/" and the other admin pages stay the admin's.
            re_path(
                r"^(?P<pk>\d+)/(?P<action>start|pause|resume|cancel)/$",
                view(self.control_view),
                name="campaigns_campaign_control",
            ),
            *super().get_urls(),
        ]

    def _campaign(self, request: HttpRequest, pk: int, *, change: bool = False) -> Campaign:
        campaign = get_object_or_404(Campaign, pk=pk)
        allowed = (
            self.has_change_permission(request, campaign)
            if change
            else self.has_view_permission(request, campaign)
        )
        if not allowed:
            raise PermissionDenied
        return campaign

    def preview_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        campaign = self._campaign(request, pk)
        account = selectors.sample_account(campaign)
        return render(
            request,
            "admin/campaigns/campaign/preview.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "campaign": campaign,
                "account": account,
                "previews": _samples(campaign, account),
                "line_previews": _line_samples(campaign, account),
                "title": _("Preview"),
            },
        )

    def send_test_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        campaign = self._campaign(request, pk)
        if request.method != "POST":
            return HttpResponseRedirect(reverse("admin:campaigns_campaign_preview", args=[pk]))
        if not request.user.email:
            messages.error(request, _("Your staff account has no email address."))
            return HttpResponseRedirect(reverse("admin:campaigns_campaign_preview", args=[pk]))
        for rendered in _samples(campaign, selectors.sample_account(campaign)):
            message = EmailMultiAlternatives(
                subject=f"[TEST] {rendered.subject}",
                body=rendered.text,
                to=[request.user.email],
                from_email=campaign.from_email or None,
            )
            message.attach_alternative(rendered.html, "text/html")
            message.send()
        messages.success(
            request,
            _("Sent a test in both languages to %(email)s.") % {"email": request.user.email},
        )
        return HttpResponseRedirect(reverse("admin:campaigns_campaign_preview", args=[pk]))

    def progress_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        campaign = self._campaign(request, pk)
        return render(
            request,
            "admin/campaigns/campaign/progress.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "campaign": campaign,
                "counts": [
                    (key, _COUNT_LABELS[key], value)
                    for key, value in selectors.progress(campaign).items()
                ],
                # reached -> clicked -> linked, per channel the deliveries went by
                "channels": [
                    (Channel(channel).label, figures)
                    for channel, figures in selectors.funnel_by_channel(campaign).items()
                ],
                "actions": [(action, _ACTION_LABELS[action]) for action in _VALID[campaign.status]],
                "audience": (
                    planning.audience(campaign, channel=_first_channel(campaign)).count()
                    if campaign.status in (Campaign.Status.DRAFT, Campaign.Status.SCHEDULED)
                    and campaign.started_at is None
                    else None
                ),
                "title": _("Progress"),
                "refresh": campaign.status in (Campaign.Status.SENDING, Campaign.Status.SCHEDULED),
            },
        )

    def control_view(self, request: HttpRequest, pk: int, action: str) -> HttpResponse:
        campaign = self._campaign(request, pk, change=True)
        if request.method == "POST" and action in _ACTIONS:
            _change_status(request, action, campaign)
        return HttpResponseRedirect(reverse("admin:campaigns_campaign_progress", args=[pk]))

    @admin.action(description=gettext_lazy("Start the selected campaigns"))
    def start_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        for campaign in queryset:
            _change_status(request, "start", campaign)

    @admin.action(description=gettext_lazy("Pause the selected campaigns"))
    def pause_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        for campaign in queryset:
            _change_status(request, "pause", campaign)

    @admin.action(description=gettext_lazy("Resume the selected campaigns"))
    def resume_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        for campaign in queryset:
            _change_status(request, "resume", campaign)

    @admin.action(description=gettext_lazy("Cancel the selected campaigns"))
    def cancel_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        for campaign in queryset:
            _change_status(request, "cancel", campaign)


_COUNT_LABELS = {
    "planned": gettext_lazy("planned"),
    "pending": gettext_lazy("waiting"),
    "leased": gettext_lazy("leased by a sender"),
    "sending": gettext_lazy("handed to the mail server"),
    "sent": gettext_lazy("sent"),
    "unconfirmed": gettext_lazy("unconfirmed: handed over, answer never recorded (not resent)"),
    "failed": gettext_lazy("failed"),
    "skipped": gettext_lazy("skipped (suppressed or already linked)"),
    "cancelled": gettext_lazy("cancelled"),
    "clicked": gettext_lazy("clicked"),
    "linked": gettext_lazy("linked through the campaign"),
    "linked_otherwise": gettext_lazy("linked otherwise within the attribution window"),
    "unsubscribed": gettext_lazy("unsubscribed"),
    "bounced": gettext_lazy("bounced"),
}
_ACTION_LABELS = {
    "start": gettext_lazy("Start"),
    "pause": gettext_lazy("Pause"),
    "resume": gettext_lazy("Resume"),
    "cancel": gettext_lazy("Cancel"),
}
# What staff can do in each status; control refuses the rest anyway.
_VALID = {
    Campaign.Status.DRAFT: ("start", "cancel"),
    Campaign.Status.SCHEDULED: ("pause", "cancel"),
    Campaign.Status.SENDING: ("pause", "cancel"),
    Campaign.Status.PAUSED: ("resume", "cancel"),
    Campaign.Status.FINISHED: (),
    Campaign.Status.CANCELLED: (),
}
_ACTIONS = {
    "start": control.start,
    "pause": control.pause,
    "resume": control.resume,
    "cancel": control.cancel,
}


def _change_status(request: HttpRequest, action: str, campaign: Campaign) -> None:
    """Start, pause, resume or cancel, and tell staff what came of it."""
    try:
        _ACTIONS[action](campaign)
    except control.NotAllowed:
        messages.error(
            request,
            _("%(campaign)s cannot %(action)s while it is %(status)s.")
            % {"campaign": campaign, "action": action, "status": campaign.get_status_display()},
        )
        return
    campaign.refresh_from_db()
    messages.success(
        request,
        _("%(campaign)s is now %(status)s.")
        % {"campaign": campaign, "status": campaign.get_status_display()},
    )


def _first_channel(campaign: Campaign) -> str:
    step = campaign.steps.filter(number=0).values_list("channel", flat=True).first()
    return step or CampaignStep.Channels.EMAIL


def _samples(campaign: Campaign, account: LegacyAccount) -> list[content.Rendered]:
    """The first email to `account`, in Japanese and in English, with links that go nowhere."""
    renderer = content.Renderer(campaign)
    return [
        renderer.render(
            account,
            step=0,
            link=f"{settings.SITE_URL}/c/preview-link/",
            unsubscribe_url=f"{settings.SITE_URL}/c/preview-unsubscribe/",
            language=language,
        )
        for language in (Language.JA, Language.EN)
    ]


def _line_samples(campaign: Campaign, account: LegacyAccount) -> list[tuple[str, str]]:
    """The LINE message to `account`, per language the campaign has one in."""
    if not campaign.line_text_ja:
        return []
    link = f"{settings.SITE_URL}/c/preview-link/"
    languages = [Language.JA] + ([Language.EN] if campaign.line_text_en else [])
    return [
        (language, by_line.text(campaign, account, link=link, language=language))
        for language in languages
    ]


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = (
        "campaign",
        "step",
        "account",
        "channel",
        "status",
        "sent_at",
        "clicked_at",
        "linked_at",
    )
    list_filter = ("status", "channel", "step", "campaign")
    list_select_related = ("campaign", "account__service")
    search_fields = ("=email_key", "=account__external_id")
    show_full_result_count = False
    exclude = ("token_hash", "lease")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    list_display = ("email_key", "reason", "campaign", "created_at")
    list_filter = ("reason",)
    search_fields = ("=email_key",)
    readonly_fields = ("created_at",)
