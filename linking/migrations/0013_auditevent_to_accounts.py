from django.db import migrations


class Migration(migrations.Migration):
    """AuditEvent moves to the accounts app (the bottom layer, which every layer
    records to); its table stays linking_auditevent, so no row moves."""

    dependencies = [
        ("linking", "0012_staff_names"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="AuditEvent")],
            database_operations=[],
        ),
    ]
