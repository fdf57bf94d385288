from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LineConfig(AppConfig):
    name = "linking.line"
    label = "line_oa"
    verbose_name = _("LINE Official Account")

    def ready(self) -> None:
        from linking.line import friendship  # noqa: F401  (LINE Login's friendship check)
