"""A BRIN index on ApiCall.created_at (PostgreSQL only), for pruning old audit rows
(linking.api.retention.prune_calls): it finds them without reading the rows kept, and
costs COPY next to nothing, the rows being written in time order. Built
concurrently, so that the audit COPYs are not held up on a large table."""

from django.db import migrations

INDEX = "api_call_created_brin"


def create(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {INDEX} ON api_apicall USING brin (created_at)"
        )


def drop(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("api", "0001_initial")]

    operations = [migrations.RunPython(create, drop)]
