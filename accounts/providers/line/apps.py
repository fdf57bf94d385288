from django.apps import AppConfig


class ProviderConfig(AppConfig):
    name = "accounts.providers.line"
    label = "line_login"
