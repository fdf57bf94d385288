import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import translation

from linking.importing import ENCODINGS, ImportFileError, import_legacy_accounts
from linking.models import LegacyService


class Command(BaseCommand):
    help = (
        "Import legacy accounts of one service from a CSV export (UTF-8 or Shift_JIS/CP932). "
        "Header: external_id,email,phone,name,name_kana,birth_date,password_hash,points; "
        "other columns go to attributes. Rejected rows are listed in a report file."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("service_code")
        parser.add_argument("file", type=Path)
        parser.add_argument("--encoding", choices=ENCODINGS, default="auto")
        parser.add_argument(
            "--report",
            type=Path,
            help="CSV of rejected rows (line, last_line, external_id, reason); default "
            "FILE.rejected.csv when any row is rejected",
        )
        parser.add_argument(
            "--language",
            choices=[code for code, _name in settings.LANGUAGES],
            help="of the report's header and reasons, and of a refused file's error "
            "(default: LANGUAGE_CODE)",
        )

    def handle(self, *args, language: str | None, **options):
        # Without --language: the active one, LANGUAGE_CODE in a manage.py process.
        with translation.override(language or translation.get_language()):
            self._import(**options)

    def _import(self, *, service_code: str, file: Path, encoding: str, report, **options):
        service = self._service(service_code)
        if not file.is_file():
            raise CommandError(f"no such file: {file}")
        started = time.monotonic()
        target = report or file.with_name(file.name + ".rejected.csv")
        try:
            result = import_legacy_accounts(
                service=service,
                path=file,
                encoding=encoding,
                report=target,
                progress=self._progress,
            )
        except ImportFileError as error:  # raised before the report is written
            raise CommandError(f"{file}: {error}; nothing was imported") from None
        elapsed = time.monotonic() - started
        sys.stderr.write("\n")
        if not result.rejected and not report:
            target.unlink()
        self.stdout.write(
            f"{service.code}: read {result.read}, inserted {result.inserted}, "
            f"updated {result.updated}, unchanged {result.unchanged}, "
            f"rejected {result.rejected} ({result.encoding}, {elapsed:.1f} s)"
        )
        if result.rejected or report:
            self.stdout.write(f"report: {target}")

    def _service(self, code: str) -> LegacyService:
        try:
            return LegacyService.objects.get(code=code)
        except LegacyService.DoesNotExist:
            known = ", ".join(LegacyService.objects.values_list("code", flat=True)) or "none"
            raise CommandError(f"no legacy service {code!r} (known: {known})") from None

    def _progress(self, rows: int) -> None:
        sys.stderr.write(f"\r  {rows:,} rows read")
        sys.stderr.flush()
