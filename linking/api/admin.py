"""Staff register group services as clients (allauth's OpenID Connect client
registry, extended with ServiceClient), read the API audit and the webhook
delivery log, and redeliver."""

from allauth.idp.oidc.adapter import get_adapter
from allauth.idp.oidc.admin import ClientAdmin as AllauthClientAdmin
from allauth.idp.oidc.models import Client, Token
from django import forms
from django.contrib import admin, messages
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import formats, timezone
from django.utils.translation import gettext_lazy as _

from linking.api import outbox
from linking.api.admin_labels import ClientLabels, TokenLabels
from linking.api.models import (
    ApiCall,
    ProviderToken,
    ServiceClient,
    WebhookAttempt,
    WebhookDelivery,
)
from linking.staff.read_only import ReadOnlyAdmin


class ServiceClientInline(admin.StackedInline):
    model = ServiceClient
    can_delete = False
    max_num = 1
    # A few services: checkboxes, not the two-list picker.
    formfield_overrides = {
        models.ManyToManyField: {"widget": forms.CheckboxSelectMultiple},
        models.URLField: {"assume_scheme": "https"},
    }
    fields = (
        "services",
        "rate_limit_per_minute",
        "webhook_url",
        "webhook_previous_secret_until",
        "return_urls",
    )
    readonly_fields = ("webhook_previous_secret_until",)


admin.site.unregister(Client)
admin.site.unregister(Token)


@admin.register(Client)
class ClientAdmin(ClientLabels, AllauthClientAdmin):
    """allauth's client admin: the secret is hashed and shown once at creation.
    Adds the API access inline, secret rotation and a webhook test ping."""

    inlines = (ServiceClientInline,)
    actions = (
        "rotate_secret",
        "rotate_webhook_secret",
        "retire_previous_webhook_secret",
        "send_webhook_ping",
    )

    def save_related(self, request: HttpRequest, form, formsets, change: bool) -> None:
        had_access = ServiceClient.objects.filter(pk=form.instance.pk).exists()
        super().save_related(request, form, formsets, change)
        access = ServiceClient.objects.filter(pk=form.instance.pk).first()
        if access is not None and not had_access:
            self._show_once(request, _("Webhook signing secret"), access.webhook_secret)

    @admin.action(description=_("Rotate the client secret (the old one stops working)"))
    def rotate_secret(self, request: HttpRequest, queryset: QuerySet[Client]) -> None:
        for client in queryset:
            secret = get_adapter().generate_client_secret()
            client.set_secret(secret)
            client.save(update_fields=["secret"])
            self._show_once(request, _("New client secret of %s") % client.name, secret)

    @admin.action(
        description=_("Rotate the webhook signing secret (the old one signs too for a while)")
    )
    def rotate_webhook_secret(self, request: HttpRequest, queryset: QuerySet[Client]) -> None:
        for access in ServiceClient.objects.filter(client__in=queryset).select_related("client"):
            secret = access.rotate_webhook_secret()
            self._show_once(
                request, _("New webhook signing secret of %s") % access.client.name, secret
            )
            self.message_user(
                request,
                _("The previous secret of %(name)s signs too until %(until)s, or until retired.")
                % {
                    "name": access.client.name,
                    "until": formats.localize(
                        timezone.localtime(access.webhook_previous_secret_until)
                    ),
                },
            )

    @admin.action(description=_("Retire the previous webhook signing secret now"))
    def retire_previous_webhook_secret(
        self, request: HttpRequest, queryset: QuerySet[Client]
    ) -> None:
        for access in ServiceClient.objects.filter(client__in=queryset).select_related("client"):
            access.retire_previous_webhook_secret()
            self.message_user(
                request, _("Only the current secret of %s signs now.") % access.client.name
            )

    @admin.action(description=_("Send a test ping to the webhook"))
    def send_webhook_ping(self, request: HttpRequest, queryset: QuerySet[Client]) -> None:
        for access in ServiceClient.objects.filter(client__in=queryset).select_related("client"):
            if outbox.ping(access) is None:
                self.message_user(
                    request, _("No webhook URL is set for %s.") % access.client.name, messages.ERROR
                )
            else:
                self.message_user(
                    request,
                    _("Ping queued for %s: its result is under Webhook deliveries.")
                    % access.client.name,
                )

    def _show_once(self, request: HttpRequest, label: str, secret: str) -> None:
        self.message_user(
            request,
            _("%(label)s (shown only now): %(secret)s") % {"label": label, "secret": secret},
            level=messages.WARNING,
        )


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    readonly_fields = ("number", "at", "status_code", "error", "duration_ms")
    ordering = ("at",)

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = (
        "created_at",
        "event_type",
        "client",
        "status",
        "attempts",
        "last_status_code",
        "next_attempt_at",
        "delivered_at",
    )
    list_filter = ("status", "event_type", "client")
    search_fields = ("event_id", "url")
    readonly_fields = [field.name for field in WebhookDelivery._meta.fields]
    inlines = (WebhookAttemptInline,)
    actions = ("redeliver",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.action(description=_("Redeliver (a fresh round of attempts, starting now)"))
    def redeliver(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        count = outbox.redeliver(queryset)
        self.message_user(request, _("%d deliveries queued again.") % count)


@admin.register(ApiCall)
class ApiCallAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "client_id", "endpoint", "status", "subject", "items", "ip")
    list_filter = ("endpoint", "status")
    search_fields = ("client_id", "subject")
    show_full_result_count = False


@admin.register(ProviderToken)
class ProviderTokenAdmin(TokenLabels, admin.ModelAdmin):
    """Tokens issued to group services signing customers in with the unified ID:
    read, or removed to revoke one."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
