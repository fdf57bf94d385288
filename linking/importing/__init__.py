"""Import of legacy accounts from a CSV export: read (read.py), validate and
normalize (validate.py), write (write.py), and report the rejected rows (report.py).
Rows are upserted by (service, external_id); a row whose hash did not change is
never written, so importing a file twice changes nothing. Ownership (owner,
linked_at) is never touched."""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from django.db import connection, transaction

from linking.importing.read import COLUMNS, ENCODINGS, ImportFileError, Reader, resolve_encoding
from linking.importing.report import Report
from linking.importing.validate import (
    KEYS_VERSION,
    NEW,
    Layout,
    Prepared,
    Preparer,
    Record,
    default_workers,
    items,
    prepared_batches,
    unique,
)
from linking.importing.write import (
    copy_prefix,
    copy_write,
    existing_hashes,
    lock_service,
    orm_write,
)
from linking.models import LegacyService

__all__ = [
    "COLUMNS",
    "ENCODINGS",
    "KEYS_VERSION",
    "ImportFileError",
    "ImportResult",
    "Record",
    "import_legacy_accounts",
    "valid_records",
]
BATCH_ROWS = 5000


@dataclass
class ImportResult:
    encoding: str = ""
    read: int = 0  # rows, counting a line the reader rejected as one
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0


def import_legacy_accounts(
    *,
    service: LegacyService,
    path: Path,
    encoding: str = "auto",
    report: Path | None = None,
    progress: Callable[[int], None] | None = None,
    workers: int | None = None,
    batch_rows: int = BATCH_ROWS,
) -> ImportResult:
    """Import one CSV file into one service's legacy accounts, in one transaction
    (a savepoint inside the caller's). report: where the rejected rows are written.
    workers: processes that validate batches; None picks one per CPU for a large
    file, 0 or 1 keeps the work in this process."""
    result = ImportResult(encoding=resolve_encoding(path, encoding))
    if workers is None:
        workers = default_workers(path)
    postgresql = connection.vendor == "postgresql"
    with path.open(encoding=result.encoding, errors="surrogateescape", newline="") as file:
        reader = Reader(file)
        with Report(report) as rejects, transaction.atomic():
            if postgresql:
                lock_service(service)
            prefix = copy_prefix(service) if postgresql else None
            preparer = Preparer(Layout.of(reader.header), existing_hashes(service), prefix)
            prepared = unique(prepared_batches(reader.batches(batch_rows), preparer, workers))
            counted = _counted(prepared, result, rejects, progress)
            writer = copy_write if postgresql else orm_write
            result.inserted, result.updated = writer(service, counted)
    result.rejected = rejects.count
    result.unchanged = result.read - result.rejected - result.inserted - result.updated
    return result


def valid_records(path: Path, encoding: str = "auto") -> Iterator[Record]:
    """Every valid row of a file as a Record, compared with nothing in the database
    (bench.legacy_import's baseline writes them with bulk_create)."""
    with path.open(
        encoding=resolve_encoding(path, encoding), errors="surrogateescape", newline=""
    ) as file:
        reader = Reader(file)
        preparer = Preparer(Layout.of(reader.header), {}, copy_prefix=None)
        for prepared in unique(prepared_batches(reader.batches(BATCH_ROWS), preparer, 0)):
            yield from items(prepared, NEW)


def _counted(
    batches: Iterator[Prepared],
    result: ImportResult,
    rejects: Report,
    progress: Callable[[int], None] | None,
) -> Iterator[Prepared]:
    for prepared in batches:
        result.read += prepared.read
        rejects.add(prepared.rejects)
        if progress:
            progress(result.read)
        yield prepared
