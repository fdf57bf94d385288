"""Staff roles as Django groups. Used by the data migration that creates them."""

from django.utils.translation import pgettext_lazy

ANALYST, SUPPORT, ADMIN = "analyst", "support", "admin"
# What staff read for each role. The groups keep these names: code looks them up by name.
LABELS = {
    ADMIN: pgettext_lazy("staff role", "admin"),
    ANALYST: pgettext_lazy("staff role", "analyst"),
    SUPPORT: pgettext_lazy("staff role", "support"),
}


def label(name: str) -> str:
    """A role's name as staff read it; a role staff created is shown as they named it."""
    return str(LABELS.get(name, name))


# Read-only: every view permission of these apps, and the staff reports.
VIEW_APPS = ("accounts", "linking", "campaigns", "line_oa")
REPORTS = ("view_link_dashboard", "view_matching_report")


def ensure_groups(Group, Permission) -> None:
    """Create the groups, or add what they lack; never removes permissions."""
    views = Permission.objects.filter(
        content_type__app_label__in=VIEW_APPS, codename__startswith="view_"
    ) | Permission.objects.filter(content_type__app_label="linking", codename__in=REPORTS)
    assist = Permission.objects.filter(content_type__app_label="linking", codename="assist_link")
    analyst, _ = Group.objects.get_or_create(name=ANALYST)
    analyst.permissions.add(*views)
    support, _ = Group.objects.get_or_create(name=SUPPORT)
    support.permissions.add(*views, *assist)
    admin, _ = Group.objects.get_or_create(name=ADMIN)
    admin.permissions.add(*Permission.objects.all())
