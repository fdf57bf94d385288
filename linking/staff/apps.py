from django.contrib.admin.apps import AdminConfig


class StaffAdminConfig(AdminConfig):
    """django.contrib.admin with linking.staff.site.StaffAdminSite as admin.site, so
    every @admin.register lands on the site that demands a second factor."""

    default_site = "linking.staff.site.StaffAdminSite"
