from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = _("Customers")

    def ready(self) -> None:
        # Signal receivers, and the Celery tasks that live outside accounts.tasks.
        from accounts import deletion, notifications, oidc_logout, oidc_provider, sessions  # noqa: F401
