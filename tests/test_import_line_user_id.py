"""The optional line_user_id column of a legacy import: the LINE user a service had
bound to a member number, checked, stored on the legacy account, and never kept in
attributes."""

import csv
from pathlib import Path

import pytest

from linking.importing import import_legacy_accounts
from linking.models import LegacyAccount, LegacyService

HEADER = "external_id,email,phone,name,name_kana,birth_date,password_hash,points"
FRIEND = "U" + "0123456789abcdef" * 2


# The reasons asserted here are the English ones (test_import_i18n: Japanese).
pytestmark = pytest.mark.usefixtures("in_english")


def _import(service: LegacyService, tmp_path: Path, lines: list[str]):
    path = tmp_path / "accounts.csv"
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    report = tmp_path / "report.csv"
    result = import_legacy_accounts(service=service, path=path, report=report)
    with report.open(encoding="utf-8", newline="") as file:
        return result, list(csv.DictReader(file))


def test_a_line_user_id_is_stored_and_a_bad_one_rejected_with_its_line(service, tmp_path):
    result, rejects = _import(
        service,
        tmp_path,
        [
            f"{HEADER},line_user_id,rank",
            f"A1,a@example.jp,,,,,,0,{FRIEND},gold",
            "A2,b@example.jp,,,,,,0,,",
            f"A3,c@example.jp,,,,,,0,{FRIEND.upper()},",
            "A4,,,,,,,0,U1234,",
        ],
    )

    assert (result.inserted, result.rejected) == (2, 2)
    stored = dict(LegacyAccount.objects.values_list("external_id", "line_user_id"))
    assert stored == {"A1": FRIEND, "A2": ""}
    assert LegacyAccount.objects.get(external_id="A1").attributes == {"rank": "gold"}
    reasons = {row["line"]: (row["external_id"], row["reason"]) for row in rejects}
    expected = 'bad line_user_id {!r} (expected "U" and 32 lowercase hexadecimal digits)'
    assert reasons == {
        "4": ("A3", expected.format(FRIEND.upper())),
        "5": ("A4", expected.format("U1234")),
    }


def test_a_file_without_the_column_still_imports(service, tmp_path):
    result, rejects = _import(service, tmp_path, [HEADER, "A1,a@example.jp,,,,,,0"])

    assert (result.inserted, rejects) == (1, [])
    assert LegacyAccount.objects.get().line_user_id == ""


def test_a_reimport_sets_changes_and_clears_the_line_user_id(service, tmp_path):
    other = "U" + "f" * 32
    _import(service, tmp_path, [HEADER, "A1,a@example.jp,,,,,,0", "A2,b@example.jp,,,,,,0"])

    again, _ = _import(
        service,
        tmp_path,
        [f"{HEADER},line_user_id", f"A1,a@example.jp,,,,,,0,{FRIEND}", "A2,b@example.jp,,,,,,0,"],
    )
    assert (again.updated, again.unchanged) == (1, 1)
    changed, _ = _import(
        service, tmp_path, [f"{HEADER},line_user_id", f"A1,a@example.jp,,,,,,0,{other}"]
    )
    assert changed.updated == 1
    assert LegacyAccount.objects.get(external_id="A1").line_user_id == other
    cleared, _ = _import(service, tmp_path, [HEADER, "A1,a@example.jp,,,,,,0"])

    assert cleared.updated == 1
    assert LegacyAccount.objects.get(external_id="A1").line_user_id == ""
