"""Staff see LINE friends, their bindings, the account-link nonces (digests only) and
the webhook events handled. Bindings change only through the account-link flow and
the customer's own unlink, so everything here is read-only."""

from django.contrib import admin

from linking.line.models import AccountLinkNonce, LineFriend, WebhookEvent


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


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
    list_display = ("received_at", "event_type", "line_user_id", "occurred_at", "redelivery")
    list_filter = ("event_type", "redelivery")
    search_fields = ("webhook_event_id", "line_user_id")
