"""Probabilistic 名寄せ (linking.matching): Japanese variants fold to the same
features; Splink on synthetic data with known truth beats today's exact-key report;
a run stores versioned parameters, counts and reviewable groups; a confirmed group
becomes a suggestion in the owner's link center, and never a link."""

import datetime
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from linking import claims
from linking.matching import engine, evaluation, features, jobs, model, synthetic
from linking.matching.models import CandidateGroup, MatchRun, ModelVersion
from linking.matching.tasks import run_matching
from linking.models import LegacyAccount, LinkEvent
from linking.normalize import EXACT_RULES
from linking.staff import matching as report
from tests.fixtures.staff import verified_login

START = 'action="/admin/matching/matchrun/start/"'


def _feature_rows(*records: dict) -> list[dict]:
    base = {"service": "s", "email": "", "phone": "", "name": "", "name_kana": "", "attributes": {}}
    table = features.table({**base, "id": i, **r} for i, r in enumerate(records, 1))
    return table.to_pylist()


def test_japanese_variants_fold_to_the_same_features():
    first, second, third = _feature_rows(
        {
            "name": "山田 花子",
            "name_kana": "ヤマダ　ハナコ",
            "phone": "０９０－１２３４－５６７８",
            "email": "Hanako@Example.JP",
            "birth_date": datetime.date(1990, 4, 1),
            "attributes": {"postal_code": "１５０－０００１", "prefecture": "東京都"},
        },
        {"name": "山田花子", "name_kana": "ﾔﾏﾀﾞﾊﾅｺ", "phone": "+81 90 1234 5678"},
        {"name_kana": "やまだ はなこ", "birth_date": datetime.date(1990, 1, 4)},
    )
    assert first["name_key"] == second["name_key"] == "山田花子"
    assert first["kana"] == second["kana"] == third["kana"] == "やまだはなこ"
    # The half-width reading has no space: split on the surname seen elsewhere.
    assert (second["surname_kana"], second["given_kana"]) == ("やまだ", "はなこ")
    assert first["phone"] == second["phone"] == "+819012345678"
    assert (first["email"], first["email_local"]) == ("hanako@example.jp", "hanako")
    assert first["postal"] == "1500001"
    assert third["birth_swapped"] == first["birth"] == "1990-04-01"
    assert second["birth"] is None and second["email"] is None  # blank: no evidence


def test_a_seed_gives_the_same_synthetic_records_in_every_process():
    """Whatever the process's hash seed: the known-truth tests and bench.matching
    measure the same records every run."""
    script = (
        "import hashlib; from linking.matching import synthetic; "
        "print(hashlib.sha256(repr(synthetic.generate(500, seed=3)).encode()).hexdigest())"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", script],
            cwd=Path(__file__).resolve().parent.parent,
            env={**os.environ, "PYTHONHASHSEED": str(hash_seed)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for hash_seed in (1, 2, 3)
    }
    here = hashlib.sha256(repr(synthetic.generate(500, seed=3)).encode()).hexdigest()
    assert digests == {here + "\n"}


def test_splink_beats_the_exact_key_report_on_known_truth():
    records = synthetic.generate(4000, seed=3)
    table = features.table(records)
    result = engine.score(table, engine.train(table))
    truth = evaluation.pairs(evaluation.true_groups(records))
    ours = evaluation.scores(evaluation.pairs(result.groups), truth)
    exact = evaluation.scores(evaluation.pairs(evaluation.exact_key_groups(records)), truth)
    assert ours.f1 >= 0.95
    assert ours.f1 >= exact.f1 + 0.15


@pytest.fixture
def synthetic_accounts(make_service):
    services = {code: make_service(code) for code in synthetic.SERVICES}
    records = synthetic.generate(500, seed=11)
    ids = synthetic.load(records, services)
    for record in records:
        record["id"] = ids[record["id"]]
    return records


def test_the_exact_key_mirror_is_the_report(synthetic_accounts):
    """The benchmark's exact-key figures come from the report's own rules."""
    by_report = set()
    for rule in EXACT_RULES:
        groups = report.groups(rule, limit=10_000)
        by_report |= evaluation.pairs([a.pk for a in g.members] for g in groups)
    assert by_report
    assert evaluation.pairs(evaluation.exact_key_groups(synthetic_accounts)) == by_report


def test_a_run_stores_its_model_counts_and_groups_and_links_nothing(synthetic_accounts):
    run = jobs.run(MatchRun.objects.create().pk)
    assert run.status == MatchRun.Status.DONE, run.error
    assert (run.input_records, run.input_services) == (500, 4)
    assert run.duration_seconds > 0 and run.pairs_scored > 0
    version = run.model_version
    assert [c["output_column_name"] for c in version.splink_settings["comparisons"]] == [
        "name_key", "surname_kana", "given_kana", "email", "phone", "birth", "postal"
    ]  # fmt: skip
    assert run.groups_found == CandidateGroup.objects.filter(run=run).count() > 20
    group = CandidateGroup.objects.filter(run=run).first()
    assert group.probability >= model.THRESHOLD
    assert set(group.evidence[0]["weights"]) == {
        "name_key", "surname_kana", "given_kana", "email", "phone", "birth", "postal"
    }  # fmt: skip
    truth = evaluation.pairs(evaluation.true_groups(synthetic_accounts))
    found = evaluation.pairs(
        [m.account_id for m in g.members.all()] for g in CandidateGroup.objects.filter(run=run)
    )
    assert evaluation.scores(found, truth).f1 >= 0.9
    assert not LegacyAccount.objects.filter(owner__isnull=False).exists()
    assert not LinkEvent.objects.exists()

    # Scoring again with the saved version trains nothing and finds the same groups.
    again = jobs.run(MatchRun.objects.create(model_version=version).pk)
    assert ModelVersion.objects.count() == 1
    assert again.groups_found == run.groups_found
    # A run is run once: a second worker picking it up does nothing.
    assert jobs.run(again.pk).groups_found == again.groups_found
    assert CandidateGroup.objects.filter(run=again).count() == again.groups_found


def test_the_management_command_runs_and_reports(synthetic_accounts, capsys):
    call_command("match_legacy_accounts")
    out = capsys.readouterr().out
    run = MatchRun.objects.get()
    assert f"run #{run.pk} (duckdb, model v{run.model_version_id}): 500 records" in out


def test_staff_start_a_run_for_a_worker(
    client, make_staff, synthetic_accounts, django_capture_on_commit_callbacks
):
    verified_login(client, make_staff("admin@example.jp", superuser=True))
    assert START in client.get("/admin/matching/matchrun/").content.decode()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post("/admin/matching/matchrun/start/")
    assert response.status_code == 302
    run = MatchRun.objects.get()
    assert run.status == MatchRun.Status.PENDING and len(callbacks) == 1
    run_matching(run.pk)  # what the worker runs
    run.refresh_from_db()
    assert run.status == MatchRun.Status.DONE and run.groups_found > 0


def test_staff_without_the_permission_cannot_start_or_decide(
    client, make_staff, synthetic_accounts
):
    from django.contrib.auth.models import Permission

    jobs.run(MatchRun.objects.create().pk)
    group = CandidateGroup.objects.first()
    viewer = make_staff()
    viewer.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="matching",
            codename__in=["view_candidategroup", "view_matchrun"],
        )
    )
    verified_login(client, viewer)
    url = f"/admin/matching/candidategroup/{group.pk}/change/"
    page = client.get(url).content.decode()
    assert 'name="decision"' not in page  # may read, may not decide
    assert START not in client.get("/admin/matching/matchrun/").content.decode()
    assert client.post("/admin/matching/matchrun/start/").status_code == 403
    assert client.post(url, {"decision": "confirm"}).status_code == 403
    group.refresh_from_db()
    assert group.status == CandidateGroup.Status.OPEN
    assert MatchRun.objects.count() == 1


@pytest.fixture
def reviewed(make_service, make_account, make_customer):
    """Three accounts of one person at three services; the customer owns one."""
    shop, card, mail = make_service("shop"), make_service("card"), make_service("mail")
    born = datetime.date(1985, 7, 3)
    common = {"name_kana": "サトウ ミサキ", "birth_date": born}
    owned = make_account(
        "S1", service=shop, name="佐藤 美咲", email="misaki@example.jp", phone="090-1111-2222",
        **common,
    )  # fmt: skip
    on_card = make_account("C1", service=card, name="佐藤美咲", phone="090-1111-2222", **common)
    on_mail = make_account("M1", service=mail, email="misaki.s@example.com", **common)
    customer = make_customer("misaki@example.jp")
    claims.link(account=owned, customer=customer, proof="password", request=None)
    run = MatchRun.objects.create(status=MatchRun.Status.DONE)
    group = CandidateGroup.objects.create(
        run=run,
        probability=0.99,
        evidence=[{"a": owned.pk, "b": on_card.pk, "probability": 0.99, "weights": {"phone": 9.1}}],
    )
    for account in (owned, on_card, on_mail):
        group.members.create(account=account)
    return {"customer": customer, "group": group, "card": on_card, "mail": on_mail}


def test_a_review_page_for_no_group_is_not_found(client, make_staff, reviewed):
    verified_login(client, make_staff("admin@example.jp", superuser=True))
    for object_id in ("abc", str(reviewed["group"].pk + 1)):
        url = f"/admin/matching/candidategroup/{object_id}/change/"
        assert client.get(url).status_code == 404
        assert client.post(url, {"decision": "confirm"}).status_code == 404
    assert CandidateGroup.objects.get().status == CandidateGroup.Status.OPEN


def test_staff_confirm_a_group_and_the_owner_sees_the_others(client, make_staff, reviewed):
    group, customer = reviewed["group"], reviewed["customer"]
    centre = client.__class__()
    centre.force_login(customer)
    assert 'data-testid="also-yours"' not in centre.get("/link/").content.decode()

    verified_login(client, make_staff("admin@example.jp", superuser=True))
    url = f"/admin/matching/candidategroup/{group.pk}/change/"
    page = client.get(url).content.decode()
    assert "9.10" in page and "C1" in page and "M1" in page
    assert client.post(url, {"decision": "bogus"}).status_code == 200
    group.refresh_from_db()
    assert group.status == CandidateGroup.Status.OPEN
    assert client.post(url, {"decision": "confirm"}).status_code == 302
    group.refresh_from_db()
    assert group.status == CandidateGroup.Status.CONFIRMED and group.reviewed_by is not None

    page = centre.get("/link/").content.decode()
    assert page.count('href="/link/service/card/"') >= 1
    assert 'data-testid="also-yours"' in page
    # Still unlinked: each account needs its own proof; the email shortcut refuses them.
    mine = [reviewed["card"].pk, reviewed["mail"].pk]
    assert not LegacyAccount.objects.filter(pk__in=mine, owner__isnull=False).exists()
    assert centre.get(f"/link/suggested/{reviewed['card'].pk}/").status_code == 404


def test_dismissed_or_open_groups_and_strangers_get_no_suggestion(client, make_customer, reviewed):
    from linking.matching.review import suggested_accounts

    group, customer = reviewed["group"], reviewed["customer"]
    assert not suggested_accounts(customer).exists()  # open
    group.status = CandidateGroup.Status.DISMISSED
    group.save()
    assert not suggested_accounts(customer).exists()
    group.status = CandidateGroup.Status.CONFIRMED
    group.save()
    assert sorted(a.external_id for a in suggested_accounts(customer)) == ["C1", "M1"]
    # Someone who owns none of the group's accounts sees nothing of it.
    assert not suggested_accounts(make_customer("other@example.jp")).exists()
    # A suggested account linked meanwhile is no longer suggested.
    claims.link(account=reviewed["mail"], customer=customer, proof="code", request=None)
    assert [a.external_id for a in suggested_accounts(customer)] == ["C1"]


@pytest.mark.spark
def test_spark_local_mode_finds_the_same_groups_as_duckdb(settings, tmp_path):
    """The same trained model on both backends (Spark in local mode is slow to start);
    Spark checkpoints the clustering's steps where it is told."""
    pytest.importorskip("pyspark", reason="pyspark is the `spark` extra: pip install -e .[spark]")
    settings.MATCHING_SPARK_PARTITIONS = 1  # a few hundred rows: one partition is plenty
    settings.MATCHING_SPARK_CHECKPOINT_DIR = str(tmp_path)
    records = synthetic.generate(300, seed=5)
    table = features.table(records)
    trained = engine.train(table)
    duck = engine.score(table, trained, "duckdb")
    try:
        spark = engine.score(table, trained, "spark")
    finally:
        from pyspark.sql import SparkSession

        if session := SparkSession.getActiveSession():
            session.stop()
    assert duck.groups and spark.groups == duck.groups
    assert any(path.is_file() for path in tmp_path.rglob("*"))
    weights = {(x.a, x.b): x.weights for links in duck.links.values() for x in links}
    assert {(x.a, x.b): x.weights for links in spark.links.values() for x in links} == weights
