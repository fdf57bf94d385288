"""A matching run over every legacy account: load, train (or reuse a saved model
version), score, cluster, store the groups for review. Progress is written to the
MatchRun row as it goes, so the admin can show it while a worker runs it."""

import time

from django.db import transaction
from django.utils import timezone

from linking.matching import engine, features
from linking.matching.models import CandidateGroup, CandidateMember, MatchRun, ModelVersion
from linking.models import LegacyAccount

_FIELDS = ("id", "service_id", "email", "phone", "name", "name_kana", "birth_date", "attributes")


def _progress(run: MatchRun, text: str, **fields) -> None:
    run.progress = text
    for name, value in fields.items():
        setattr(run, name, value)
    run.save(update_fields=["progress", *fields])


def _records():
    for row in LegacyAccount.objects.order_by("pk").values_list(*_FIELDS).iterator(5000):
        record = dict(zip(_FIELDS, row, strict=True))
        record["service"] = record.pop("service_id")
        yield record


def run(run_id: int) -> MatchRun:
    """Run one pending run to its end; a failure is recorded on the row, not raised."""
    started = MatchRun.objects.filter(pk=run_id, status=MatchRun.Status.PENDING).update(
        status=MatchRun.Status.RUNNING, started_at=timezone.now()
    )
    run = MatchRun.objects.get(pk=run_id)
    if not started:
        return run  # already run, or running elsewhere
    began = time.monotonic()
    try:
        _progress(run, "loading legacy accounts")
        table = features.table(_records())
        services = len(set(table.column("service").to_pylist()))
        _progress(run, "training", input_records=table.num_rows, input_services=services)
        if run.model_version is None:
            trained = engine.train(table)
            version = ModelVersion.objects.create(splink_settings=trained, note=f"run #{run.pk}")
            _progress(run, "training", model_version=version)
        _progress(run, "scoring")
        result = engine.score(table, run.model_version.splink_settings, run.backend)
        _progress(run, "saving groups", pairs_scored=result.pairs_scored)
        _save(run, result)
    except Exception as error:  # any failure ends the run, visibly
        run.status, run.error = MatchRun.Status.FAILED, f"{type(error).__name__}: {error}"
    else:
        run.status = MatchRun.Status.DONE
    run.finished_at = timezone.now()
    run.duration_seconds = round(time.monotonic() - began, 3)
    run.progress = ""
    run.save()
    return run


@transaction.atomic
def _save(run: MatchRun, result: engine.Result) -> None:
    groups = []
    for index in range(len(result.groups)):
        links = result.links.get(index, [])
        # A group is as sure as its weakest link.
        probability = min((link.probability for link in links), default=0.0)
        groups.append(
            CandidateGroup(run=run, probability=probability, evidence=[vars(x) for x in links])
        )
    groups = CandidateGroup.objects.bulk_create(groups, batch_size=2000)
    CandidateMember.objects.bulk_create(
        (
            CandidateMember(group=group, account_id=account)
            for group, accounts in zip(groups, result.groups, strict=True)
            for account in accounts
        ),
        batch_size=5000,
    )
    run.groups_found = len(groups)
