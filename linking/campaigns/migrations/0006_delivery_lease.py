"""A sender's hold on a delivery is a lease, not a claim (a claim is a customer's
ownership claim, linking.claims): the status "claimed" becomes "leased" and the
field naming the sender run `claim` becomes `lease`. Stored rows are rewritten."""

from django.db import migrations, models


def forwards(apps, schema_editor):
    Delivery = apps.get_model("campaigns", "Delivery")
    Delivery.objects.filter(status="claimed").update(status="leased")


def backwards(apps, schema_editor):
    Delivery = apps.get_model("campaigns", "Delivery")
    Delivery.objects.filter(status="leased").update(status="claimed")


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0005_staff_names"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="delivery",
            name="delivery_leased_has_claim",
        ),
        migrations.RemoveIndex(
            model_name="delivery",
            name="delivery_claimable",
        ),
        migrations.RenameField(
            model_name="delivery",
            old_name="claim",
            new_name="lease",
        ),
        migrations.AlterField(
            model_name="delivery",
            name="status",
            field=models.CharField(
                choices=[
                    ("pending", "pending"),
                    ("leased", "leased by a sender"),
                    ("sending", "handed to the mail server"),
                    ("sent", "sent"),
                    ("unconfirmed", "unconfirmed"),
                    ("failed", "failed"),
                    ("skipped", "skipped"),
                    ("cancelled", "cancelled"),
                ],
                default="pending",
                max_length=12,
                verbose_name="status",
            ),
        ),
        migrations.RunPython(forwards, backwards),
        migrations.AddIndex(
            model_name="delivery",
            index=models.Index(
                condition=models.Q(("status__in", ["pending", "leased", "sending"])),
                fields=["campaign", "status", "not_before"],
                name="delivery_to_send",
            ),
        ),
        migrations.AddConstraint(
            model_name="delivery",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("status__in", ["leased", "sending"]), _negated=True),
                    models.Q(
                        ("lease_until__isnull", False),
                        models.Q(("lease", ""), _negated=True),
                    ),
                    _connector="OR",
                ),
                name="delivery_leased_names_its_lease",
            ),
        ),
    ]
