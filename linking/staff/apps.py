from django.contrib.admin.apps import AdminConfig


class StaffAdminConfig(AdminConfig):
    """django.contrib.admin with linking.staff.site.StaffAdminSite as admin.site, so
    every @admin.register lands on the site that demands a second factor."""

    default_site = "linking.staff.site.StaffAdminSite"

    def ready(self) -> None:
        super().ready()  # every app's admin module registers its models
        from allauth.socialaccount.models import SocialApp, SocialToken
        from django.contrib import admin

        # Sign-in providers are configured in settings: a provider added here too
        # would be found twice by allauth (and break its sign-in). Provider tokens
        # are not stored (SOCIALACCOUNT_STORE_TOKENS).
        admin.site.unregister([SocialApp, SocialToken])
