from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MatchingConfig(AppConfig):
    name = "linking.matching"
    label = "matching"
    verbose_name = _("Probabilistic matching (名寄せ)")
