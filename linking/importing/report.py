"""The report of rejected rows: one CSV line per rejected row, written as the rows
are read (never held in memory), every value from the file quoted only as a short,
escaped excerpt and made safe to open in a spreadsheet."""

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from django.utils.translation import gettext, pgettext

from linking.spreadsheet import safe_cell

EXCERPT_CHARS = 40
# A byte the file's encoding could not decode, as errors="surrogateescape" reads it.
UNDECODABLE = re.compile("[\udc80-\udcff]")


@dataclass(frozen=True)
class Reject:
    """Lines line..last_line of the file (one row) were not imported, for reason."""

    line: int
    last_line: int
    external_id: str
    reason: str


def excerpt(value: str) -> str:
    """A value quoted in a reason: its first EXCERPT_CHARS characters, unprintable
    ones escaped as Python writes them (NUL as \\x00), an ellipsis if cut."""
    if len(value) <= EXCERPT_CHARS:
        return repr(value)
    quoted = repr(value[:EXCERPT_CHARS])
    return gettext("%(value)s (%(count)s characters)") % {
        "value": f"{quoted[:-1]}…{quoted[-1]}",
        "count": f"{len(value):,}",
    }


def shown_id(value: str) -> str:
    """The external_id column of the report: as read, at most 64 characters,
    undecodable bytes as "?"."""
    return UNDECODABLE.sub("?", value.strip()[:64])


def header() -> tuple[str, ...]:
    """The report's header line in the active language (in English: line, last_line,
    external_id, reason); external_id is the input file's own column name."""
    return (
        pgettext("import report column", "line"),
        pgettext("import report column", "last_line"),
        "external_id",
        pgettext("import report column", "reason"),
    )


class Report:
    """Counts rejects and, given a path, streams them there in line order."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.count = 0
        self._file = None
        self._writer = None

    def __enter__(self) -> "Report":
        if self.path is not None:
            self._file = self.path.open("w", encoding="utf-8", newline="")
            self._writer = csv.writer(self._file)
            self._writer.writerow(header())
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._file is not None:
            self._file.close()

    def add(self, rejects: list[Reject]) -> None:
        self.count += len(rejects)
        if self._writer is not None and rejects:
            self._writer.writerows(
                (r.line, r.last_line, safe_cell(r.external_id), safe_cell(r.reason))
                for r in rejects
            )
