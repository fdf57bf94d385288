"""The importer given broken and hostile files: random bytes, wrong encodings, huge
fields, missing columns and ragged rows. It either refuses the whole file with an
ImportFileError (nothing written) or imports the valid rows and reports every other
row with a short reason, in a report safe to open; it never fails another way, and
importing again changes nothing."""

import csv
import io
import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from linking.importing import COLUMNS, ImportFileError, import_legacy_accounts
from linking.models import LegacyAccount, LegacyService

FUZZ = settings(
    max_examples=12,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
_codes = itertools.count()

cells = st.text(st.characters(codec="utf-8"), max_size=40)
huge_cells = st.sampled_from([0, 300, 5_000, 200_000]).map(lambda n: "長" * n)
rows = st.lists(st.lists(cells | huge_cells, min_size=0, max_size=10), max_size=8)


# The reasons asserted here are the English ones (test_import_i18n: Japanese).
pytestmark = pytest.mark.usefixtures("in_english")


def _service() -> LegacyService:
    return LegacyService.objects.create(code=f"fuzz-{next(_codes)}", name_ja="ファズ")


def _import_and_check(tmp_path, data: bytes, encoding: str = "auto") -> None:
    """Import data twice into a fresh service; what must hold either way."""
    service = _service()
    path = tmp_path / f"{service.code}.csv"
    path.write_bytes(data)
    report = tmp_path / f"{service.code}.rejected.csv"
    try:
        first = import_legacy_accounts(service=service, path=path, encoding=encoding, report=report)
    except ImportFileError as refused:
        assert str(refused)  # a reason the operator can read
        assert not LegacyAccount.objects.filter(service=service).exists()
        return
    stored = LegacyAccount.objects.filter(service=service)
    assert first.read == first.inserted + first.updated + first.unchanged + first.rejected
    assert stored.count() == first.inserted
    assert b"\x00" not in report.read_bytes()
    rejects = _report(report)
    assert len(rejects) == first.rejected
    last = 1  # the header's line
    for reject in rejects:  # in file order, each line at most once
        assert reject["reason"] and len(reject["reason"]) < 600
        assert last < int(reject["line"]) <= int(reject["last_line"])
        last = int(reject["last_line"])
        assert not reject["external_id"].startswith(("=", "+", "-", "@", "＝", "＋", "－", "＠"))
    assert not stored.filter(owner__isnull=False).exists()
    again = import_legacy_accounts(service=service, path=path, encoding=encoding)
    assert (again.inserted, again.updated) == (0, 0)
    assert again.unchanged == first.inserted
    assert stored.count() == first.inserted


def _report(path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as file:
        return list(csv.DictReader(file))


def _csv(header: list[str], body: list[list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(body)
    return out.getvalue()


@pytest.mark.django_db
@FUZZ
@given(data=st.binary(max_size=2_000))
def test_random_bytes_are_refused_or_imported_cleanly(tmp_path, data):
    _import_and_check(tmp_path, data)


@pytest.mark.django_db
@FUZZ
@given(data=st.binary(max_size=1_000))
def test_random_bytes_after_a_valid_header_are_refused_or_imported_cleanly(tmp_path, data):
    _import_and_check(tmp_path, ",".join(COLUMNS).encode() + b"\r\n" + data)


@pytest.mark.django_db
@FUZZ
@given(
    body=rows,
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "cp932", "utf-16", "latin-1", "euc-jp"]),
    declared=st.sampled_from(["auto", "utf-8", "cp932"]),
)
def test_rows_in_any_encoding_are_refused_or_imported_cleanly(tmp_path, body, encoding, declared):
    text = _csv(list(COLUMNS), body)
    _import_and_check(tmp_path, text.encode(encoding, errors="replace"), declared)


@pytest.mark.django_db
@FUZZ
@given(
    dropped=st.sets(st.sampled_from(COLUMNS), max_size=len(COLUMNS)),
    extra=st.lists(cells, max_size=3),
    body=rows,
)
def test_missing_or_extra_columns_are_refused_or_imported_cleanly(tmp_path, dropped, extra, body):
    header = [column for column in COLUMNS if column not in dropped] + extra
    _import_and_check(tmp_path, _csv(header, body).encode())


def test_a_missing_column_refuses_the_file_and_names_it(db, tmp_path):
    service = _service()
    path = tmp_path / "no-email.csv"
    path.write_text("external_id,phone,name,name_kana,birth_date,password_hash,points\nA1,,,,,,\n")

    with pytest.raises(ImportFileError, match="email"):
        import_legacy_accounts(service=service, path=path)
    assert not LegacyAccount.objects.filter(service=service).exists()


@pytest.mark.parametrize(
    ("size", "reason"),
    [(100_000, "name longer than "), (200_000, "a field longer than 131,072 characters")],
)
def test_a_huge_field_rejects_its_row_only(db, tmp_path, size, reason):
    """Also one over the csv module's field limit (131,072 characters)."""
    service = _service()
    path = tmp_path / "huge.csv"
    body = [
        ["A1", "a@example.jp", "", "名" * size, "", "", "", "1"],
        ["A2", "", "", "", "", "", "", ""],
    ]
    path.write_text(_csv(list(COLUMNS), body), encoding="utf-8")

    result = import_legacy_accounts(service=service, path=path, report=tmp_path / "r.csv")

    assert (result.inserted, result.rejected) == (1, 1)
    (reject,) = _report(tmp_path / "r.csv")
    assert (reject["line"], reject["last_line"]) == ("2", "2")
    assert reject["reason"].startswith(reason)
    assert list(
        LegacyAccount.objects.filter(service=service).values_list("external_id", flat=True)
    ) == ["A2"]


tricky = st.lists(
    st.sampled_from(['"', "\n", "\r", "\r\n", ",", "A", "名", " ", "1"]), max_size=6
).map("".join)
records = st.lists(tricky, min_size=len(COLUMNS), max_size=len(COLUMNS)).map(lambda r: _csv(r, []))
pieces = st.lists(records | tricky, max_size=12)  # a bare piece may leave a quote open


def _outcome(tmp_path, text: str, **options) -> tuple[list, dict]:
    service = _service()
    path = tmp_path / f"{service.code}.csv"
    path.write_text(text, encoding="utf-8", newline="")
    report = tmp_path / f"{service.code}.rejected.csv"
    try:
        import_legacy_accounts(service=service, path=path, report=report, **options)
    except ImportFileError as refused:
        return [str(refused)], {}
    fields = ("external_id", "email", "phone", "name", "name_kana", "points", "row_hash")
    stored = LegacyAccount.objects.filter(service=service).values_list(*fields)
    return _report(report), {row[0]: row for row in stored}


@pytest.mark.django_db
@FUZZ
@given(body=pieces)
def test_batches_of_any_size_read_the_file_as_one_reader_would(tmp_path, body):
    """Quoted fields spanning lines, lone CRs, open quotes and blank lines, cut into
    batches anywhere: the same rows, rejects and line numbers as one batch."""
    text = ",".join(COLUMNS) + "\r\n" + "".join(body)
    whole = _outcome(tmp_path, text, workers=0, batch_rows=100_000)

    for batch_rows in (1, 2, 3):
        assert _outcome(tmp_path, text, workers=0, batch_rows=batch_rows) == whole
    assert _outcome(tmp_path, text, workers=2, batch_rows=2) == whole
