from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LinkingConfig(AppConfig):
    name = "linking"
    verbose_name = _("Linking")

    def ready(self) -> None:
        from linking import notifications  # noqa: F401  (signal receiver)
