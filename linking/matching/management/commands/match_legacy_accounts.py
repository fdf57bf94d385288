from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from linking.matching import jobs
from linking.matching.models import MatchRun, ModelVersion


class Command(BaseCommand):
    help = (
        "Probabilistic 名寄せ over all legacy accounts (Splink): candidate groups for "
        "staff to review. Links nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--backend", choices=["duckdb", "spark"], default=None)
        parser.add_argument(
            "--model-version", type=int, help="score with this saved model instead of training"
        )

    def handle(self, *args, backend: str | None, model_version: int | None, **options):
        version = None
        if model_version is not None:
            version = ModelVersion.objects.filter(pk=model_version).first()
            if version is None:
                raise CommandError(f"no model version {model_version}")
        run = MatchRun.objects.create(
            backend=backend or settings.MATCHING_BACKEND, model_version=version
        )
        run = jobs.run(run.pk)
        if run.status != MatchRun.Status.DONE:
            raise CommandError(f"run #{run.pk} failed: {run.error}")
        self.stdout.write(
            f"run #{run.pk} ({run.backend}, model v{run.model_version_id}): "
            f"{run.input_records} records of {run.input_services} services, "
            f"{run.pairs_scored} pairs scored, {run.groups_found} groups, "
            f"{run.duration_seconds:.1f} s"
        )
