from django.apps import AppConfig


class ProviderConfig(AppConfig):
    name = "accounts.providers.google"
    label = "google_login"
