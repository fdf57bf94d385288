"""Staff see LINE friends, their bindings, the account-link nonces (digests only) and
the webhook events handled. Bindings change only through the account-link flow and
the customer's own unlink, so everything here is read-only."""

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from linking.line.models import AccountLinkNonce, LineFriend, WebhookEvent
from linking.staff.read_only import ReadOnlyAdmin

# LINE's names for the events the webhook handles, as staff read them.
EVENT_TYPES: dict[str, str | Promise] = {
    "follow": _("added as a friend"),
    "unfollow": _("blocked by the friend"),
    "accountLink": _("account link"),
    "message": _("message"),
}


def event_type_label(value: str) -> str:
    return str(EVENT_TYPES.get(value, value))


class EventTypeFilter(admin.SimpleListFilter):
    title = _("event type")
    parameter_name = "event_type"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin):
        seen = WebhookEvent.objects.values_list("event_type", flat=True).distinct()
        return [(value, event_type_label(value)) for value in sorted(seen)]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(event_type=self.value()) if self.value() else queryset


@admin.register(LineFriend)
class LineFriendAdmin(ReadOnlyAdmin):
    list_display = ("line_user_id", "customer", "is_friend", "followed_at", "linked_at")
    list_filter = ("is_friend",)
    search_fields = ("line_user_id", "customer__unified_id")
    raw_id_fields = ("customer",)


@admin.register(AccountLinkNonce)
class AccountLinkNonceAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "customer", "expires_at", "used_at", "line_user_id")
    exclude = ("nonce_hash", "link_token")
    raw_id_fields = ("customer",)


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    list_display = ("received_at", "event", "line_user_id", "occurred_at", "redelivery")
    list_filter = (EventTypeFilter, "redelivery")
    search_fields = ("webhook_event_id", "line_user_id")

    @admin.display(description=_("event type"), ordering="event_type")
    def event(self, obj: WebhookEvent) -> str:
        return event_type_label(obj.event_type)
