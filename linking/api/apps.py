from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ApiConfig(AppConfig):
    name = "linking.api"
    label = "api"
    verbose_name = _("Group services")

    def ready(self) -> None:
        from linking.api import outbox  # noqa: F401  (signal receiver)
