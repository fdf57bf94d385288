from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CampaignsConfig(AppConfig):
    name = "linking.campaigns"
    label = "campaigns"
    verbose_name = _("Campaigns")

    def ready(self) -> None:
        # bounces connects its receiver; control holds beat's campaigns.tick task.
        from linking.campaigns import bounces, control  # noqa: F401
