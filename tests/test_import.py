import csv
import datetime
import hashlib
import io
import json
import threading
import tracemalloc
from pathlib import Path

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import connection, connections
from django.utils import timezone

from linking.importing import KEYS_VERSION, ImportResult, import_legacy_accounts
from linking.models import LegacyAccount, LegacyService
from linking.spreadsheet import safe_cell
from tests.campaign_support import wait_until

HEADER = "external_id,email,phone,name,name_kana,birth_date,password_hash,points"
ROWS = [
    "A0001,ＴＡＲＯ@Example.JP ,090-1234-5678,山田　太郎,ﾔﾏﾀﾞ ﾀﾛｳ,1985-04-01,,1200",
    "A0002,hanako@example.jp,０３－１２３４－５６７８,佐藤 花子,サトウ ハナコ,1990/12/31,,0",
    "A0003,,,髙橋 一郎,たかはし いちろう,,,",
]


# The reasons asserted here are the English ones (test_import_i18n: Japanese).
pytestmark = pytest.mark.usefixtures("in_english")


def write_csv(tmp_path: Path, lines: list[str], encoding: str = "utf-8", name: str = "x.csv"):
    path = tmp_path / name
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))
    return path


def run_import(path: Path, *args: str, code: str = "store") -> str:
    out = io.StringIO()
    call_command("import_legacy_accounts", code, str(path), *args, stdout=out)
    return out.getvalue()


def read_report(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as file:
        return list(csv.DictReader(file))


def test_it_imports_utf8_with_japanese_names_and_match_keys(service, tmp_path):
    path = write_csv(tmp_path, [HEADER, *ROWS], encoding="utf-8-sig")

    out = run_import(path)

    assert "read 3, inserted 3, updated 0, unchanged 0, rejected 0" in out
    taro = LegacyAccount.objects.get(service=service, external_id="A0001")
    assert taro.name == "山田　太郎"
    assert taro.name_kana == "ﾔﾏﾀﾞ ﾀﾛｳ"
    assert taro.email_key == "taro@example.jp"
    assert taro.phone_key == "+819012345678"
    assert taro.name_key == "山田太郎"
    assert taro.birth_date == datetime.date(1985, 4, 1)
    assert taro.points == 1200
    assert taro.owner is None
    hanako = LegacyAccount.objects.get(external_id="A0002")
    assert hanako.phone_key == "+81312345678"
    assert hanako.birth_date == datetime.date(1990, 12, 31)
    ichiro = LegacyAccount.objects.get(external_id="A0003")
    assert (ichiro.email_key, ichiro.phone_key, ichiro.birth_date, ichiro.points) == (
        "",
        "",
        None,
        0,
    )


@pytest.mark.parametrize("args", [(), ("--encoding", "cp932")])
def test_it_imports_cp932_files(service, tmp_path, args):
    path = write_csv(tmp_path, [HEADER, *ROWS], encoding="cp932")

    out = run_import(path, *args)

    assert "inserted 3" in out
    assert "cp932" in out
    names = set(LegacyAccount.objects.values_list("name", flat=True))
    assert names == {"山田　太郎", "佐藤 花子", "髙橋 一郎"}


def test_a_utf8_file_with_a_few_broken_bytes_is_still_read_as_utf8(service, tmp_path):
    """Detection does not fall back to CP932 for one bad byte: that would garble
    every name in the file. The row with the byte is rejected."""
    path = write_csv(tmp_path, [HEADER, *ROWS])
    path.write_bytes(
        path.read_bytes() + "A0009,,,山\udcff田,,,,\r\n".encode(errors="surrogateescape")
    )
    report = tmp_path / "report.csv"

    out = run_import(path, "--report", str(report))

    assert "read 4, inserted 3, updated 0, unchanged 0, rejected 1 (utf-8-sig, " in out
    names = set(LegacyAccount.objects.values_list("name", flat=True))
    assert names == {"山田　太郎", "佐藤 花子", "髙橋 一郎"}
    assert [r["reason"] for r in read_report(report)] == [
        "undecodable bytes in name (not valid in the file's encoding)"
    ]


def test_it_imports_good_rows_of_a_cp932_file_and_reports_bad_ones_by_line(service, tmp_path):
    lines = [
        HEADER,
        "B0001,ok@example.jp,09011112222,鈴木 一郎,スズキ イチロウ,1970-01-01,,10",  # line 2
        ",nobody@example.jp,,名無し,ナナシ,,,",  # line 3: missing external_id
        "B0003,,,田中 次郎,タナカ ジロウ,1970-02-30,,",  # line 4: bad birth date
        "B0004,,,中村 三郎,ナカムラ サブロウ,,,たくさん",  # line 5: points not an integer
        "B0001,dup@example.jp,,鈴木 一郎,スズキ イチロウ,,,",  # line 6: duplicate
        "B0006,,,小林,コバヤシ,,,1,extra",  # line 7: wrong number of columns
        "B" + "9" * 64 + ",,,長い,ナガイ,,,",  # line 8: over-long external_id
        "B0008,,,加藤 四郎,カトウ シロウ,,,5",  # line 9
    ]
    path = write_csv(tmp_path, lines, encoding="cp932")
    # Line 10: bytes that are not CP932 (0x81 0x7F is an invalid double-byte pair).
    path.write_bytes(path.read_bytes() + b"B0009,,,\x81\x7f,,,,\r\n")
    report = tmp_path / "report.csv"

    out = run_import(path, "--report", str(report))

    assert "read 9, inserted 2, updated 0, unchanged 0, rejected 7" in out
    assert set(LegacyAccount.objects.values_list("external_id", flat=True)) == {"B0001", "B0008"}
    assert LegacyAccount.objects.get(external_id="B0001").email == "ok@example.jp"
    rejected = read_report(report)
    assert [r["line"] for r in rejected] == ["3", "4", "5", "6", "7", "8", "10"]
    reasons = {r["line"]: r["reason"] for r in rejected}
    assert reasons["3"] == "missing external_id"
    assert "birth_date" in reasons["4"]
    assert "not an integer" in reasons["5"]
    assert "duplicate external_id" in reasons["6"]
    assert "wrong number of columns" in reasons["7"]
    assert "external_id longer than 64" in reasons["8"]
    assert "undecodable bytes in name" in reasons["10"]
    assert {r["line"]: r["external_id"] for r in rejected}["6"] == "B0001"


def test_a_report_is_written_beside_the_file_when_rows_are_rejected(service, tmp_path):
    path = write_csv(tmp_path, [HEADER, ",,,,,,,"])

    out = run_import(path)

    report = tmp_path / "x.csv.rejected.csv"
    assert f"report: {report}" in out
    assert read_report(report) == [
        {"line": "2", "last_line": "2", "external_id": "", "reason": "missing external_id"}
    ]


def test_the_report_writes_formula_like_values_as_text(service, tmp_path):
    # Staff open the report in a spreadsheet; the values come from the imported file.
    path = write_csv(tmp_path, [HEADER, '=HYPERLINK("http://x"),,,,,1985-13-45,,'])

    run_import(path)

    (row,) = read_report(tmp_path / "x.csv.rejected.csv")
    assert row["external_id"] == '\'=HYPERLINK("http://x")'


def test_importing_the_same_file_twice_changes_nothing(service, tmp_path):
    path = write_csv(tmp_path, [HEADER, *ROWS], encoding="cp932")
    run_import(path)
    before = dict(LegacyAccount.objects.values_list("external_id", "updated_at"))

    out = run_import(path)

    assert "read 3, inserted 0, updated 0, unchanged 3, rejected 0" in out
    assert dict(LegacyAccount.objects.values_list("external_id", "updated_at")) == before
    assert LegacyAccount.objects.count() == 3


def test_changed_rows_are_updated_and_others_left_alone(service, tmp_path):
    run_import(write_csv(tmp_path, [HEADER, *ROWS], name="first.csv"))
    before = dict(LegacyAccount.objects.values_list("external_id", "updated_at"))
    changed = "A0002,hanako.new@example.jp,080-9999-0000,佐藤 花子,サトウ ハナコ,1990-12-31,,50"
    added = "A0004,jiro@example.jp,,山本 次郎,ヤマモト ジロウ,,,"

    out = run_import(write_csv(tmp_path, [HEADER, ROWS[0], changed, ROWS[2], added], name="2.csv"))

    assert "read 4, inserted 1, updated 1, unchanged 2, rejected 0" in out
    hanako = LegacyAccount.objects.get(external_id="A0002")
    assert (hanako.email_key, hanako.phone_key, hanako.points) == (
        "hanako.new@example.jp",
        "+818099990000",
        50,
    )
    assert hanako.updated_at > before["A0002"]
    assert LegacyAccount.objects.get(external_id="A0001").updated_at == before["A0001"]


def test_reimport_keeps_the_owner_of_a_linked_account(service, tmp_path, customer):
    run_import(write_csv(tmp_path, [HEADER, *ROWS], name="first.csv"))
    linked_at = timezone.now()
    LegacyAccount.objects.filter(external_id="A0001").update(owner=customer, linked_at=linked_at)
    changed = "A0001,taro@example.jp,090-1234-5678,山田 太郎,ヤマダ タロウ,1985-04-01,,9999"

    out = run_import(write_csv(tmp_path, [HEADER, changed], name="second.csv"))

    assert "updated 1" in out
    taro = LegacyAccount.objects.get(external_id="A0001")
    assert taro.points == 9999
    assert (taro.owner, taro.linked_at) == (customer, linked_at)


def test_a_missing_header_column_fails_and_imports_nothing(service, tmp_path):
    header = "external_id,email,phone,name,birth_date,password_hash,points"
    path = write_csv(tmp_path, [header, "A0001,a@example.jp,,山田,,,1"])

    with pytest.raises(CommandError, match=r"lacks required column.*name_kana"):
        run_import(path)

    assert not LegacyAccount.objects.exists()


def test_unknown_columns_land_in_attributes(service, tmp_path):
    header = HEADER + ",rank,store_code"
    path = write_csv(tmp_path, [header, ROWS[0] + ",ゴールド,S01", ROWS[1] + ",,S02"])

    run_import(path)

    assert LegacyAccount.objects.get(external_id="A0001").attributes == {
        "rank": "ゴールド",
        "store_code": "S01",
    }
    assert LegacyAccount.objects.get(external_id="A0002").attributes == {"store_code": "S02"}


def test_a_quoted_field_spanning_lines_keeps_line_numbers_right(service, tmp_path):
    lines = [HEADER, 'C0001,,,"山田\n太郎",,,,', ",,,,,,,"]
    report = tmp_path / "report.csv"

    run_import(write_csv(tmp_path, lines), "--report", str(report))

    assert LegacyAccount.objects.get(external_id="C0001").name == "山田\n太郎"
    assert [r["line"] for r in read_report(report)] == ["4"]


def test_an_unknown_service_is_refused(service, tmp_path):
    with pytest.raises(CommandError, match=r"no legacy service 'pos'.*store"):
        run_import(write_csv(tmp_path, [HEADER, *ROWS]), code="pos")

    assert not LegacyAccount.objects.exists()


def test_worker_processes_give_the_same_result_as_one_process(service, tmp_path):
    """Batches of two rows over two workers: line numbers (also after fields spanning
    lines), rejects, duplicates across batches and the rows written are the same."""
    lines = [
        HEADER,
        *ROWS,  # lines 2-4
        'D0001,,,"鈴木\r\n一郎",,,,',  # lines 5-6
        "A0002,dup@example.jp,,,,,,",  # line 7: duplicate of line 3
        'D0002,,,"田中\r次郎\n三郎",,,,',  # lines 8-10 (a lone CR ends a line too)
        "",  # line 11: blank, skipped
        "D0003,,,,,1970-02-30,,",  # line 12: bad date
        "D0004,,,,,,,",
        "D0004,,,,,,,",  # line 14: duplicate within one batch
        ",,,,,,,",  # line 15: missing external_id
    ]
    path = write_csv(tmp_path, lines)

    serial = import_legacy_accounts(
        service=service, path=path, workers=0, report=tmp_path / "serial.csv"
    )
    serial_rows = _stored(service)
    LegacyAccount.objects.all().delete()
    parallel = import_legacy_accounts(
        service=service, path=path, workers=2, batch_rows=2, report=tmp_path / "parallel.csv"
    )

    rejects = read_report(tmp_path / "parallel.csv")
    assert [(r["line"], r["external_id"], r["reason"][:20]) for r in rejects] == [
        ("7", "A0002", "duplicate external_i"),
        ("12", "D0003", "bad birth_date '1970"),
        ("14", "D0004", "duplicate external_i"),
        ("15", "", "missing external_id"),
    ]
    assert rejects == read_report(tmp_path / "serial.csv")
    assert (parallel.read, parallel.inserted, parallel.rejected) == (10, 6, 4)
    assert (serial.read, serial.inserted) == (parallel.read, parallel.inserted)
    assert _stored(service) == serial_rows
    assert serial_rows["D0002"]["name"] == "田中\r次郎\n三郎"

    again = import_legacy_accounts(service=service, path=path, workers=2, batch_rows=2)

    assert (again.inserted, again.updated, again.unchanged, again.rejected) == (0, 0, 6, 4)


def _stored(service) -> dict[str, dict]:
    fields = ["external_id", "email", "phone", "name", "name_kana", "birth_date", "points"]
    fields += ["attributes", "email_key", "phone_key", "name_key", "row_hash"]
    accounts = LegacyAccount.objects.filter(service=service).values(*fields)
    return {account["external_id"]: account for account in accounts}


def test_values_that_need_escaping_are_stored_as_read_with_a_stable_row_hash(service, tmp_path):
    """Tabs, backslashes, quotes and line ends survive the trip to the database, and
    the row hash is the documented one, so rows imported before keep matching."""
    header = HEADER + ",note,rank"
    name = "山田\t太郎\\＼"  # NFKC turns the full-width backslash into "\"
    row = ["E0001", "a\\b@example.jp", "", name, "ヤマダ", "", "md5$x$y", "7"]
    row += ['say "hi"\\\n\x01ok', "ゴールド"]
    buffer = io.StringIO()
    csv.writer(buffer).writerows([header.split(","), row])
    path = tmp_path / "escape.csv"
    path.write_text(buffer.getvalue(), encoding="utf-8")

    import_legacy_accounts(service=service, path=path)

    account = LegacyAccount.objects.get(service=service, external_id="E0001")
    attributes = {"note": row[8], "rank": "ゴールド"}
    assert (account.name, account.email, account.attributes) == (
        name,
        "a\\b@example.jp",
        attributes,
    )
    assert account.name_key == "山田太郎\\\\"
    assert account.birth_date is None
    attributes_json = json.dumps(attributes, ensure_ascii=False, sort_keys=True)
    hashed = "\x1f".join([KEYS_VERSION, *row[:5], "None", row[6], "7", attributes_json])
    assert account.row_hash == hashlib.blake2b(hashed.encode(), digest_size=32).hexdigest()


def test_a_row_whose_stored_hash_is_not_ours_is_rewritten(service, tmp_path):
    path = write_csv(tmp_path, [HEADER, *ROWS])
    run_import(path)
    LegacyAccount.objects.filter(external_id="A0001").update(row_hash="", points=1)
    LegacyAccount.objects.filter(external_id="A0003").delete()

    out = run_import(path)

    assert "read 3, inserted 1, updated 1, unchanged 1, rejected 0" in out
    assert LegacyAccount.objects.get(external_id="A0001").points == 1200
    assert LegacyAccount.objects.filter(external_id="A0003").exists()


# PostgreSQL: COPY with the database's own foreign-key checks, no privilege beyond
# SELECT, INSERT and UPDATE.


def _postgresql_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the COPY path is PostgreSQL's; run with DATABASE_URL=postgres://...")


@pytest.mark.django_db(transaction=True)
def test_the_service_cannot_be_deleted_while_its_rows_are_copied_in(tmp_path):
    """A service deleted mid-import would leave the imported rows pointing nowhere."""
    _postgresql_only()
    service = LegacyService.objects.create(code="store", name_ja="オンラインストア")
    attempts: list[str] = []

    def delete_the_service(read: int) -> None:
        if attempts:
            return
        with psycopg.connect(**connection.get_connection_params()) as other:
            other.execute("SET lock_timeout = '200ms'")
            try:
                other.execute("DELETE FROM linking_legacyservice WHERE id = %s", [service.pk])
                attempts.append("deleted")
            except psycopg.errors.LockNotAvailable:
                attempts.append("blocked")

    result = import_legacy_accounts(
        service=service, path=write_csv(tmp_path, [HEADER, *ROWS]), progress=delete_the_service
    )

    assert attempts == ["blocked"]
    assert result.inserted == 3
    assert LegacyAccount.objects.filter(service=service).count() == 3


@pytest.mark.django_db(transaction=True)
def test_two_imports_of_one_service_take_turns(tmp_path):
    """The second waits for the first to commit, then finds its rows unchanged
    (reading the service's rows at once, it would copy them in again and collide)."""
    _postgresql_only()
    service = LegacyService.objects.create(code="store", name_ja="オンラインストア")
    path = write_csv(tmp_path, [HEADER, *ROWS])
    first_reading, go = threading.Event(), threading.Event()
    results: dict[str, object] = {}

    def first_waits(read: int) -> None:
        first_reading.set()
        go.wait()

    first = _import_in_thread(results, "first", service=service, path=path, progress=first_waits)
    first_reading.wait()
    second = _import_in_thread(results, "second", service=service, path=path)
    with psycopg.connect(**connection.get_connection_params(), autocommit=True) as watch:
        wait_until(
            lambda: not second.is_alive() or _waiting_for_a_lock(watch),
            what="the second import to wait",
        )
    go.set()
    first.join()
    second.join()

    assert results["first"] == ImportResult(encoding="utf-8-sig", read=3, inserted=3)
    assert results["second"] == ImportResult(encoding="utf-8-sig", read=3, unchanged=3)


def _import_in_thread(results: dict, name: str, **arguments) -> threading.Thread:
    def run() -> None:
        try:
            results[name] = import_legacy_accounts(**arguments)
        except Exception as error:  # shown by the assertions
            results[name] = error
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _waiting_for_a_lock(watch) -> bool:
    found = watch.execute(
        "SELECT 1 FROM pg_stat_activity "
        "WHERE wait_event_type = 'Lock' AND datname = current_database()"
    ).fetchone()
    return found is not None


def test_a_table_trigger_of_its_own_sees_every_imported_row(service, tmp_path):
    """The COPY skips nothing: a trigger someone put on the table (an audit copy,
    say) fires for every row."""
    _postgresql_only()
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE import_seen (external_id text)")
        cursor.execute(
            "CREATE FUNCTION import_seen_note() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN INSERT INTO import_seen VALUES (NEW.external_id); RETURN NULL; END $$"
        )
        cursor.execute(
            "CREATE TRIGGER import_seen_note AFTER INSERT ON linking_legacyaccount "
            "FOR EACH ROW EXECUTE FUNCTION import_seen_note()"
        )

        result = import_legacy_accounts(service=service, path=write_csv(tmp_path, [HEADER, *ROWS]))

        cursor.execute("SELECT external_id FROM import_seen ORDER BY 1")
        assert [row[0] for row in cursor.fetchall()] == ["A0001", "A0002", "A0003"]
    assert result.inserted == 3


def test_a_role_with_only_table_privileges_imports_through_copy(service, tmp_path):
    """The usual application role in production: no superuser, no SET on
    session_replication_role. New and changed rows both go in."""
    _postgresql_only()
    run_import(write_csv(tmp_path, [HEADER, ROWS[0]], name="first.csv"))
    changed = ROWS[0].replace(",1200", ",1300")
    with connection.cursor() as cursor:
        cursor.execute("CREATE ROLE unified_id_importer_test NOLOGIN")
        cursor.execute(
            "GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public "
            "TO unified_id_importer_test"
        )
        cursor.execute("SET LOCAL ROLE unified_id_importer_test")

        result = import_legacy_accounts(
            service=service, path=write_csv(tmp_path, [HEADER, changed, *ROWS[1:]])
        )

        cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        assert cursor.fetchone() == (False,)
    assert (result.inserted, result.updated) == (2, 1)
    assert LegacyAccount.objects.get(external_id="A0001").points == 1300


# Hostile files: every line accounted for, short escaped reasons, a streamed report.


def test_reasons_quote_a_short_escaped_excerpt_of_the_value(service, tmp_path):
    lines = [
        HEADER,
        "G0001,,,,," + "9" * 10_000 + ",,",  # line 2
        "G0002,,,,,\x1b[31m1985-01-01,,",  # line 3: an escape sequence
        "G0003,,,,,,," + "多" * 50,  # line 4
    ]
    report = tmp_path / "report.csv"

    run_import(write_csv(tmp_path, lines), "--report", str(report))

    reasons = [r["reason"] for r in read_report(report)]
    assert reasons == [
        "bad birth_date '" + "9" * 40 + "…' (10,000 characters) (expected YYYY-MM-DD)",
        "bad birth_date '\\x1b[31m1985-01-01' (expected YYYY-MM-DD)",
        "points '" + "多" * 40 + "…' (50 characters) is not an integer",
    ]


def test_a_file_of_huge_fields_gets_a_small_streamed_report_in_bounded_memory(service, tmp_path):
    """2,000 rows with a 10,000-character birth date (20 MB): the report quotes
    excerpts, is on disk before the import ends, and memory stays far below the
    file's size."""
    lines = [HEADER, *(f"H{n:05d},,,,," + "1" * 10_000 + ",," for n in range(2000))]
    path = write_csv(tmp_path, lines)
    report = tmp_path / "report.csv"
    on_disk: list[int] = []

    def progress(read: int) -> None:
        on_disk.append(report.stat().st_size if report.exists() else 0)

    tracemalloc.start()
    try:
        result = import_legacy_accounts(
            service=service, path=path, report=report, progress=progress, workers=0
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert (result.read, result.rejected) == (2000, 2000)
    size = path.stat().st_size
    assert report.stat().st_size < 2000 * 150 < size / 60
    reason = "bad birth_date '" + "1" * 40 + "…' (10,000 characters) (expected YYYY-MM-DD)"
    assert {r["reason"] for r in read_report(report)} == {reason}
    assert len(on_disk) > 2 and on_disk[-1] > 0  # written while the rows were read
    assert peak < size / 4, f"peak {peak:,} bytes for a file of {size:,}"


def test_nul_and_formula_characters_are_escaped_in_the_report(service, tmp_path):
    ids = ["A\x00B", '＝HYPERLINK("http://x")', "＠SUM(A1)", "＋1", "－1", "=1", "+1", "-1", "@x"]
    body = [[external_id, "", "", "", "", "not a date", "", ""] for external_id in ids]
    buffer = io.StringIO()
    csv.writer(buffer).writerows([HEADER.split(","), *body])
    path = tmp_path / "hostile.csv"
    path.write_text(buffer.getvalue(), encoding="utf-8")
    report = tmp_path / "report.csv"

    run_import(path, "--report", str(report))

    assert b"\x00" not in report.read_bytes()
    shown = [r["external_id"] for r in read_report(report)]
    assert shown == ["A\\x00B", *("'" + external_id for external_id in ids[1:])]


@pytest.mark.parametrize(
    "value", ["=1", "+1", "-1", "@x", "\tx", "\rx", "＝1", "＋1", "－1", "＠x"]
)
def test_a_cell_a_spreadsheet_would_run_gets_an_apostrophe(value):
    assert safe_cell(value) == "'" + value


def test_an_unclosed_quote_rejects_its_line_and_the_rows_it_swallowed_are_read(service, tmp_path):
    lines = [
        HEADER,
        'J0001,,,"山田 太郎,,,,',  # line 2: the quote is never closed
        "J0002,,,佐藤 花子,,,,",  # line 3: swallowed, read again
        'J0003,,,"鈴木 一郎",,,,',  # line 4: its quote "closes" line 2's
        'J0004,,,"中村 三郎,,,,',  # line 5: open until the end of the file
        "J0005,,,小林,,,,",
    ]
    report = tmp_path / "report.csv"

    out = run_import(write_csv(tmp_path, lines), "--report", str(report))

    assert "read 5, inserted 3, updated 0, unchanged 0, rejected 2" in out
    names = dict(LegacyAccount.objects.values_list("external_id", "name"))
    assert names == {"J0002": "佐藤 花子", "J0003": "鈴木 一郎", "J0005": "小林"}
    rejects = read_report(report)
    assert [(r["line"], r["last_line"], r["external_id"]) for r in rejects] == [
        ("2", "2", "J0001"),
        ("5", "5", "J0004"),
    ]
    assert rejects[0]["reason"] == (
        "unclosed quote? the quoted field opened on this line runs to line 4 (line 3 reads "
        "as a row of its own); lines 3-4 were read again as rows of their own"
    )
    assert rejects[1]["reason"].startswith("unclosed quote? the quoted field opened on this ")
    assert "(4 columns instead of 8)" in rejects[1]["reason"]


def test_every_line_is_imported_blank_or_in_the_report(service, tmp_path):
    lines = [
        HEADER,
        "K0001,,,,,,,",  # 2
        'K0002,,,"山田\n太郎",,,,',  # 3-4: one row over two lines
        "",  # 5: blank
        "K0003,,,,," + "x" * 200_000 + ",,",  # 6: a field over the csv module's limit
        "K0004,,,," + "," * 1_100_000,  # 7: a line over 1,048,576 characters
        'K0005,,,"佐藤\n花子",,1970-02-30,,',  # 8-9: one row, rejected
        'K0006,,,"鈴木,,,,',  # 10: unclosed
        "K0007,,,,,,,",  # 11
    ]
    report = tmp_path / "report.csv"

    out = run_import(write_csv(tmp_path, lines), "--report", str(report))

    assert "read 7, inserted 3, updated 0, unchanged 0, rejected 4" in out
    imported = set(LegacyAccount.objects.values_list("external_id", flat=True))
    assert imported == {"K0001", "K0002", "K0007"}
    rejects = [(r["line"], r["last_line"], r["reason"][:30]) for r in read_report(report)]
    assert rejects == [
        ("6", "6", "a field longer than 131,072 ch"),
        ("7", "7", "line longer than 1,048,576 cha"),
        ("8", "9", "bad birth_date '1970-02-30' (e"),
        ("10", "10", "unclosed quote? the quoted fie"),
    ]
