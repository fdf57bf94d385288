# Staff backup codes moved to accounts.mfa.BackupCode, shared with customers.
# Nothing was deployed, so the codes are dropped rather than copied.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("linking", "0005_staff_roles"),
        ("mfa", "0001_initial"),
    ]

    operations = [
        migrations.DeleteModel(name="StaffBackupCode"),
    ]
