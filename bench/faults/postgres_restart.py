"""Fault: PostgreSQL restarts (every session cut) mid-import and mid-campaign.

Import: `manage.py import_legacy_accounts` of a generated CSV is running when the
server restarts. Whatever it reports, running it again must give the full file,
row for row, and a third run must find every row unchanged.

Campaign: a Celery worker with beat is sending when the server restarts. Senders
and beat reconnect; the campaign must reach every address exactly once.

    python -m bench.faults.postgres_restart [--quick]
"""

import csv
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import _common
from bench.faults import _support as support

FULL = (400_000, 3000)  # rows imported, addresses mailed
QUICK = (100_000, 600)
RATE = 6000


def main() -> None:
    args = _common.setup(__doc__.splitlines()[0])
    from django.db import connection

    if connection.vendor != "postgresql":
        raise SystemExit("set DATABASE_URL to the local PostgreSQL")
    rows, count = QUICK if args.quick else FULL
    print(f"fault postgres_restart: PostgreSQL {support.postgres_version()}, {support.uptime()}")
    problems, figures = import_fault(rows)
    connection.close()
    more, campaign_figures = campaign_fault(count)
    problems += more
    connection.close()
    problems += support.half_written_links()
    support.verdict("postgres_restart", problems, f"{figures}; {campaign_figures}")


def import_fault(rows: int) -> tuple[list[str], str]:
    from django.db import connection

    from linking.models import LegacyAccount, LegacyService

    service = LegacyService.objects.create(
        code=f"bench-fault-import-{int(time.time()):x}", name_ja="障害試験インポート"
    )
    path = Path(tempfile.mkdtemp(prefix="bench-fault-import-")) / "accounts.csv"
    expected = set()
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["external_id", "email", "phone", "name", "name_kana", "birth_date",
                         "password_hash", "points"])  # fmt: skip
        for n in range(rows):
            external_id, email = f"I{n:07d}", f"import{n:07d}@example.jp"
            writer.writerow([external_id, email, f"090{n:08d}", "山田 花子", "ヤマダ ハナコ",
                             "1990-01-02", "", n % 5000])  # fmt: skip
            expected.add((external_id, email, n % 5000))
    command = [sys.executable, "manage.py", "import_legacy_accounts", service.code, str(path)]
    base = Path(__file__).resolve().parent.parent.parent

    def run() -> subprocess.CompletedProcess:
        return subprocess.run(command, cwd=base, capture_output=True, text=True)

    first = subprocess.Popen(
        command, cwd=base, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        # Restart once the import is under way (its progress line shows rows read).
        seen = ""
        while first.poll() is None and "rows read" not in seen:
            seen += first.stderr.read(16) or ""
        running = first.poll() is None
        down = support.restart_postgres()
        out, err = first.communicate(timeout=600)
    finally:
        if not support.postgres_up():
            support.restart_postgres()
    connection.close()
    after_fault = LegacyAccount.objects.filter(service=service).count()
    print(
        f"  import: restarted PostgreSQL ({down:.1f} s) while the import was "
        f"{'running' if running else 'already done'}; it exited {first.returncode} "
        f"({(out + err).strip().splitlines()[-1][:160] if (out + err).strip() else ''}); "
        f"{after_fault:,} of {rows:,} rows in the database"
    )
    second = run()
    third = run()
    print(f"  import again: {second.stdout.strip()}")
    print(f"  and again:    {third.stdout.strip()}")
    problems = []
    if second.returncode != 0:
        problems.append(f"the second import failed: {second.stderr[-500:]}")
    found = set(
        LegacyAccount.objects.filter(service=service).values_list("external_id", "email", "points")
    )
    if found != expected:
        problems.append(
            f"after the re-run: {len(found - expected)} unexpected rows, "
            f"{len(expected - found)} missing"
        )
    if f"unchanged {rows}," not in third.stdout:
        problems.append(f"a third run changed rows: {third.stdout.strip()}")
    path.unlink()
    return problems, (
        f"import of {rows:,} rows: {after_fault:,} in the DB after the restart, "
        f"{len(found):,} after re-running (expected {rows:,})"
    )


def campaign_fault(count: int) -> tuple[list[str], str]:
    from linking.campaigns import control

    with support.Sink() as sink:
        worker = support.Worker(sink.port)
        campaign, emails = support.make_campaign(count, rate_per_minute=RATE, tag="pg")
        worker.start()
        down = before = 0.0
        try:
            started = time.monotonic()
            control.start(campaign)
            support.wait_for(lambda: sink.count() >= count // 4, seconds=120, what="a quarter")
            before = sink.count()
            down = support.restart_postgres()
            print(f"  campaign: PostgreSQL restarted after {before} emails, down {down:.1f} s")
            finished = support.wait_for_campaign(campaign, seconds=300)
            elapsed = time.monotonic() - started
        finally:
            if not support.postgres_up():
                support.restart_postgres()
            worker.kill()
        problems = support.unfinished(finished, worker)
        problems += support.campaign_problems(campaign, sink, emails)
    return problems, (
        f"campaign of {count}: {sink.count()} received, {len(sink.ids)} distinct Message-IDs, "
        f"restart after {before} took {down:.1f} s, finished in {elapsed:.1f} s"
    )


if __name__ == "__main__":
    main()
