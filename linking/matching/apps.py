from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MatchingConfig(AppConfig):
    name = "linking.matching"
    label = "matching"
    verbose_name = _("Probabilistic matching (名寄せ)")

    def ready(self) -> None:
        from linking.matching import review  # noqa: F401  (signal receiver)
