from django.contrib.auth.management import create_permissions
from django.db import migrations

# linking.staff.roles: analysts and support see every view permission of VIEW_APPS,
# admins have every permission. Written out here: a migration of this app may not
# import the staff site (tests/test_layers.py).
ROLES_THAT_VIEW = ("analyst", "support")


def give_roles_the_line_permissions(apps, schema_editor):
    app_config = apps.get_app_config("line_oa")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    ours = Permission.objects.filter(content_type__app_label="line_oa")
    for group in Group.objects.filter(name__in=ROLES_THAT_VIEW):
        group.permissions.add(*ours.filter(codename__startswith="view_"))
    for group in Group.objects.filter(name="admin"):
        group.permissions.add(*ours)


class Migration(migrations.Migration):
    dependencies = [
        ("line_oa", "0001_line_channel"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("linking", "0005_staff_roles"),
    ]

    operations = [
        migrations.RunPython(give_roles_the_line_permissions, migrations.RunPython.noop),
    ]
