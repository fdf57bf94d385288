"""Staff roles: analyst (read-only), support (may link and unlink with a reason), admin."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

from linking.staff import roles


def create_roles(apps, schema_editor):
    # Permissions are normally created after all migrations ran; the groups need
    # them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    roles.ensure_groups(apps.get_model("auth", "Group"), apps.get_model("auth", "Permission"))


class Migration(migrations.Migration):
    dependencies = [
        ("linking", "0004_staffaccess_dailylinkstat_staffbackupcode_statsday_and_more"),
        ("accounts", "0001_initial"),
        ("campaigns", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("otp_totp", "0003_add_timestamps"),
    ]

    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
