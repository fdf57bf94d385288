from django.db import migrations, models


def forwards(apps, schema_editor):
    """Old "sending" rows were claimed, never handed over; old "sent" rows without
    the server's answer are what "unconfirmed" now names."""
    Delivery = apps.get_model("campaigns", "Delivery")
    Delivery.objects.filter(status="sending").update(status="claimed")
    Delivery.objects.filter(status="sent", confirmed_at__isnull=True).update(status="unconfirmed")


def backwards(apps, schema_editor):
    Delivery = apps.get_model("campaigns", "Delivery")
    Delivery.objects.filter(status="sending").update(status="sent")
    Delivery.objects.filter(status="claimed").update(status="sending")
    Delivery.objects.filter(status="sent").update(confirmed_at=models.F("sent_at"))
    Delivery.objects.filter(status="unconfirmed").update(status="sent")


class Migration(migrations.Migration):

    dependencies = [
        ("campaigns", "0003_delivery_confirmed_at"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="delivery",
            name="delivery_sent_has_sent_at",
        ),
        migrations.RemoveIndex(
            model_name="delivery",
            name="delivery_claimable",
        ),
        migrations.AlterField(
            model_name="delivery",
            name="status",
            field=models.CharField(
                choices=[
                    ("pending", "pending"),
                    ("claimed", "claimed by a sender"),
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
        migrations.RemoveField(
            model_name="delivery",
            name="confirmed_at",
        ),
        migrations.AlterField(
            model_name="delivery",
            name="sent_at",
            field=models.DateTimeField(
                blank=True, null=True, verbose_name="handed to the mail server at"
            ),
        ),
        migrations.AddIndex(
            model_name="delivery",
            index=models.Index(
                condition=models.Q(("status__in", ["pending", "claimed", "sending"])),
                fields=["campaign", "status", "not_before"],
                name="delivery_claimable",
            ),
        ),
        migrations.AddConstraint(
            model_name="delivery",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("status__in", ["sending", "sent", "unconfirmed"]), _negated=True),
                    ("sent_at__isnull", False),
                    _connector="OR",
                ),
                name="delivery_handed_over_has_sent_at",
            ),
        ),
        migrations.AddConstraint(
            model_name="delivery",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("status__in", ["claimed", "sending"]), _negated=True),
                    models.Q(
                        ("lease_until__isnull", False),
                        models.Q(("claim", ""), _negated=True),
                    ),
                    _connector="OR",
                ),
                name="delivery_leased_has_claim",
            ),
        ),
    ]
