"""Mail to the customer when one of their legacy accounts is linked or unlinked
(accounts.notifications sends it after commit)."""

from django.db.models.signals import post_save
from django.dispatch import receiver

from accounts import notifications
from linking.models import LinkEvent


@receiver(post_save, sender=LinkEvent)
def _link_event_created(sender, instance: LinkEvent, created: bool, **kwargs) -> None:
    """linking.claims writes exactly one LinkEvent per link and unlink."""
    if not created or instance.customer_id is None:
        return
    template = (
        "accounts/email/account_linked"
        if instance.action == LinkEvent.Action.LINK
        else "accounts/email/account_unlinked"
    )
    account = instance.account
    notifications.send_on_commit(
        instance.customer_id,
        template,
        {
            "service_name": account.service.name,
            "masked_external_id": account.masked_external_id,
            "by_staff": instance.actor_kind == "staff",
            "ip": instance.ip or "-",
            "user_agent": instance.user_agent or "-",
        },
    )
