"""The report of rejected rows is written in the language of the staff member who
uploaded the file, whatever language the worker runs in: its header and every
reason, each keeping its line numbers and the excerpt of the value."""

import csv
import io
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.utils import translation

from linking import import_jobs
from linking.importing import import_legacy_accounts
from linking.models import ImportJob, LegacyService
from tests.import_support import upload

HEADER = "external_id,email,phone,name,name_kana,birth_date,password_hash,points"
LINES = [
    HEADER,
    "S1,hanako@example.jp,,山田 花子,ヤマダ ハナコ,1990-04-01,,100",  # 2: imported
    ",nobody@example.jp,,,,,,",  # 3
    "S2,,,田中 太郎,,not-a-date,,5",  # 4
    "S3,,,佐藤 次郎,,,," + "多" * 50,  # 5
    "S4,,,鈴木 一郎,,1850-01-01,,",  # 6
    "S1,,,山田 花子,,,,",  # 7
    "S5,,,高橋",  # 8
    'S6,,,"伊藤 一,,,,',  # 9: a quote left open swallows line 10
    "S7,,,渡辺 健,,,,",  # 10: read again, imported
    'S8,,,"木村 二",,,,',  # 11: its quote "closes" line 9's; read again, imported
]


@pytest.fixture
def service(db) -> LegacyService:
    return LegacyService.objects.create(code="pos", name_ja="POS会員")


def _report_lines(path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as file:
        return list(csv.reader(file))


def test_a_japanese_upload_gets_a_japanese_report(
    otp_admin_client, service, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.MEDIA_ROOT = tmp_path / "media"
    content = "\n".join(LINES).encode()
    job = upload(
        otp_admin_client, service, django_capture_on_commit_callbacks, content, language="ja"
    )
    assert job.language == "ja"

    with translation.override("en"):  # the worker's own language does not matter
        import_jobs.run(job.pk)

    job.refresh_from_db()
    assert (job.status, job.inserted, job.rejected) == ("done", 3, 7)
    response = otp_admin_client.get(f"/admin/linking/importjob/{job.pk}/report/")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows == [
        ["行", "最終行", "external_id", "理由"],
        ["3", "3", "", "external_id がありません"],
        [
            "4",
            "4",
            "S2",
            "birth_date 'not-a-date' を日付として読めません（YYYY-MM-DD の形で書いてください）",
        ],
        ["5", "5", "S3", "points '" + "多" * 40 + "…'（50文字） が整数ではありません"],
        [
            "6",
            "6",
            "S4",
            "birth_date '1850-01-01' はありえない日付です（1870年1月1日から今日までが有効）",
        ],
        [
            "7",
            "7",
            "S1",
            "external_id が重複しています（同じ値がファイルのこれより前の行にあります）",
        ],
        ["8", "8", "S5", "列の数が合いません（列が8個のはずが4個あります）"],
        [
            "9",
            "9",
            "S6",
            "引用符の閉じ忘れの可能性があります。この行で始まる引用符付きの項目が11行目まで"
            "続いています（10行目はそれだけで1件のデータとして読めます）。"
            "10〜11行目はそれぞれ別のデータとして読み直しました",
        ],
    ]


def test_an_english_upload_gets_an_english_report(
    otp_admin_client, service, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.MEDIA_ROOT = tmp_path / "media"
    content = "\n".join(LINES[:4]).encode()
    job = upload(
        otp_admin_client, service, django_capture_on_commit_callbacks, content, language="en"
    )

    with translation.override("ja"):
        import_jobs.run(job.pk)

    job.refresh_from_db()
    with job.report.open("rb") as file:
        rows = list(csv.reader(io.StringIO(file.read().decode())))
    assert rows == [
        ["line", "last_line", "external_id", "reason"],
        ["3", "3", "", "missing external_id"],
        ["4", "4", "S2", "bad birth_date 'not-a-date' (expected YYYY-MM-DD)"],
    ]


def test_a_file_refused_whole_is_explained_in_the_uploaders_language(service, tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    job = ImportJob(service=service, language="ja")
    job.file.save("pos.csv", SimpleUploadedFile("pos.csv", b"external_id,email\n"), save=True)

    import_jobs.run(job.pk)

    job.refresh_from_db()
    assert job.status == "failed"
    assert job.error.startswith("見出し行に必須の列 phone, name, name_kana, birth_date")


def test_reasons_from_parallel_workers_are_in_the_imports_language(service, tmp_path):
    """Batches validated in forked worker processes give their reasons in the
    language the import runs in, like those validated in the importing process."""
    lines = [HEADER]
    lines += [f"P{n},,,名前 {n},,{'bad' if n % 50 == 0 else ''},," for n in range(1, 401)]
    path = tmp_path / "accounts.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = tmp_path / "report.csv"

    with translation.override("ja"):
        result = import_legacy_accounts(
            service=service, path=path, report=report, workers=2, batch_rows=50
        )

    assert (result.inserted, result.rejected) == (392, 8)
    reasons = {tuple(row) for row in _report_lines(report)[1:]}
    expected = "birth_date 'bad' を日付として読めません（YYYY-MM-DD の形で書いてください）"
    assert reasons == {(str(n + 1), str(n + 1), f"P{n}", expected) for n in range(50, 401, 50)}


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        # No --language: the site's language (LANGUAGE_CODE), as in a new manage.py process.
        ([], [["行", "最終行", "external_id", "理由"], ["3", "3", "", "external_id がありません"]]),
        (
            ["--language", "en"],
            [["line", "last_line", "external_id", "reason"], ["3", "3", "", "missing external_id"]],
        ),
    ],
)
def test_the_command_writes_its_report_in_the_language_asked_for(
    service, tmp_path, options, expected
):
    path = tmp_path / "accounts.csv"
    path.write_text("\n".join(LINES[:3]) + "\n", encoding="utf-8")
    report = tmp_path / "report.csv"
    translation.deactivate()  # as in a new manage.py process: LANGUAGE_CODE

    call_command(
        "import_legacy_accounts", "pos", str(path), "--report", str(report), *options,
        stdout=io.StringIO(),
    )  # fmt: skip

    assert _report_lines(report) == expected


def test_an_upload_that_cannot_be_read_is_explained_in_the_uploaders_language(
    service, tmp_path, settings
):
    settings.MEDIA_ROOT = tmp_path / "media"
    job = ImportJob(service=service, language="ja")
    job.file.save("pos.csv", SimpleUploadedFile("pos.csv", b"external_id\n"), save=True)
    Path(job.file.path).unlink()  # the stored upload is gone

    import_jobs.run(job.pk)

    job.refresh_from_db()
    assert job.status == "failed"
    assert (
        job.error
        == "アップロードされたファイルを読めませんでした。もう一度アップロードしてください"
    )
