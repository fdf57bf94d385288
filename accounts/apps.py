from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = _("Customers")

    def ready(self) -> None:
        from accounts import notifications, oidc_logout, sessions  # noqa: F401  (signal receivers)
