import accounts.audit
import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


def move_content_type(apps, schema_editor):
    """Permissions and admin log entries follow the model: its content type is
    relabelled, unless the new label exists already."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    db = schema_editor.connection.alias
    if not ContentType.objects.using(db).filter(app_label=NEW, model="auditevent").exists():
        ContentType.objects.using(db).filter(app_label=OLD, model="auditevent").update(
            app_label=NEW
        )


def move_content_type_back(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    db = schema_editor.connection.alias
    if not ContentType.objects.using(db).filter(app_label=OLD, model="auditevent").exists():
        ContentType.objects.using(db).filter(app_label=NEW, model="auditevent").update(
            app_label=OLD
        )


OLD, NEW = "linking", "accounts"


class Migration(migrations.Migration):
    """AuditEvent from linking, in state only: the table keeps its name."""

    dependencies = [
        ('accounts', '0007_rate_limit_counter'),
        ('linking', '0013_auditevent_to_accounts'),
        ('contenttypes', '0002_remove_content_type_name'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='AuditEvent',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now, verbose_name='created at')),
                        ('reference', models.CharField(db_index=True, default=accounts.audit.new_reference, max_length=8, verbose_name='reference')),
                        ('action', models.CharField(max_length=40, verbose_name='action')),
                        ('customer_unified_id', models.CharField(blank=True, max_length=32, verbose_name='unified ID')),
                        ('actor_kind', models.CharField(choices=[('customer', 'customer'), ('staff', 'staff'), ('system', 'system')], default='customer', max_length=10, verbose_name='actor kind')),
                        ('method', models.CharField(blank=True, max_length=20, verbose_name='method')),
                        ('ip', models.GenericIPAddressField(blank=True, null=True, verbose_name='IP address')),
                        ('user_agent', models.CharField(blank=True, max_length=300, verbose_name='user agent')),
                        ('reason', models.TextField(blank=True, verbose_name='reason')),
                        ('data', models.JSONField(blank=True, default=dict, verbose_name='data')),
                        ('account', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='audit_events', to='linking.legacyaccount', verbose_name='legacy account')),
                        ('actor', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL, verbose_name='actor')),
                        ('customer', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='audit_events', to=settings.AUTH_USER_MODEL, verbose_name='customer')),
                    ],
                    options={
                        'verbose_name': 'audit event',
                        'verbose_name_plural': 'audit events',
                        'db_table': 'linking_auditevent',
                        'ordering': ('-created_at', '-id'),
                        'indexes': [models.Index(fields=['customer', 'created_at'], name='audit_customer_created'), models.Index(fields=['action', 'created_at'], name='audit_action_created')],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(move_content_type, move_content_type_back),
    ]
