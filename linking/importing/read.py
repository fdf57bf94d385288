"""Reading a legacy-account CSV: its encoding, its header, then its rows in batches.

Every line is accounted for: it belongs to a row that goes on to validation, is
blank, or is reported here (a row the CSV reader cannot make sense of). A quoted
field that never closes is reported on its first line and the lines it swallowed
are read again as rows of their own; an oversized field or line rejects its row."""

import codecs
import csv
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple, TextIO

from django.utils.translation import gettext

from linking.importing.report import UNDECODABLE, Reject, shown_id

COLUMNS = (
    "external_id",
    "email",
    "phone",
    "name",
    "name_kana",
    "birth_date",
    "password_hash",
    "points",
)
# Optional: present or not, never kept in attributes.
OPTIONAL_COLUMNS = ("line_user_id",)
ENCODINGS = ("auto", "utf-8", "cp932")
# The csv module's limit on one field (its default, a process-wide setting left as is).
MAX_FIELD_CHARS = csv.field_size_limit()
# A longer line, or a row spanning lines that together are longer, is rejected unread.
MAX_ROW_CHARS = 1024 * 1024
# A batch ends after this many characters even if it has fewer rows than asked for.
BATCH_CHARS = 1024 * 1024
_SAMPLE_BYTES = 4 * 1024 * 1024
_SAMPLE_CHUNK = 64 * 1024


class ImportFileError(Exception):
    """The file as a whole cannot be imported (nothing was written)."""


class Batch(NamedTuple):
    """Rows in file order, each with its first and last line, and the rejects of
    the lines among them that made no row (in line order)."""

    rows: list[list[str]]
    firsts: list[int]
    lasts: list[int]
    rejects: list[Reject]


def resolve_encoding(path: Path, encoding: str) -> str:
    if encoding not in ENCODINGS:
        raise ImportFileError(
            gettext("unknown encoding %(encoding)s; use one of %(encodings)s")
            % {"encoding": repr(encoding), "encodings": ", ".join(ENCODINGS)}
        )
    if encoding == "cp932":
        return "cp932"
    if encoding == "utf-8":
        return "utf-8-sig"
    return _detect_encoding(path)


def _detect_encoding(path: Path) -> str:
    """UTF-8 if the file's start decodes strictly as UTF-8, else CP932 (Shift_JIS),
    unless CP932 would fail even more often (a UTF-8 file with a few broken bytes)."""
    # Incremental decoders, so a character cut between chunks is no error.
    utf8 = codecs.getincrementaldecoder("utf-8")("surrogateescape")
    cp932 = codecs.getincrementaldecoder("cp932")("surrogateescape")
    utf8_errors = cp932_errors = 0
    with path.open("rb") as file:
        for _ in range(_SAMPLE_BYTES // _SAMPLE_CHUNK):
            chunk = file.read(_SAMPLE_CHUNK)
            if not chunk:
                break
            utf8_errors += len(UNDECODABLE.findall(utf8.decode(chunk)))
            cp932_errors += len(UNDECODABLE.findall(cp932.decode(chunk)))
    if utf8_errors == 0 or utf8_errors <= cp932_errors:
        return "utf-8-sig"
    return "cp932"


class _Broken(Exception):
    """Raised through the csv reader: the row being read cannot be one."""


class _Lines:
    """The file's lines for the csv reader, numbered as the file splits them (\\r\\n,
    \\r and \\n each end one). The lines of the row being read after its first are
    kept, so that a broken row's can be read again; none is longer than MAX_ROW_CHARS."""

    def __init__(self, file: TextIO) -> None:
        self._readline = file.readline
        self.number = 0  # lines taken from the file
        self.chars = 0  # characters taken from the file
        self.first = 0  # first line of the row being read; 0 between rows
        self.last = 0
        self.kept: list[tuple[int, str | None]] = []  # None: a line too long to keep
        self.kept_chars = 0
        self.to_reread: deque[tuple[int, str | None]] = deque()

    def __iter__(self) -> "_Lines":
        return self

    def __next__(self) -> str:
        if self.to_reread:
            number, line = self.to_reread.popleft()
        else:
            line = self._readline(MAX_ROW_CHARS + 1)
            if not line:
                raise StopIteration
            self.number += 1
            number = self.number
            self.chars += len(line)
            if len(line) > MAX_ROW_CHARS:
                self._skip_rest_of_line()
                line = None
        if self.first:
            self.kept.append((number, line))
            self.kept_chars += MAX_ROW_CHARS if line is None else len(line)
        else:
            self.first = number
        self.last = number
        if line is None:
            raise _Broken(
                gettext("line longer than %(limit)s characters") % {"limit": f"{MAX_ROW_CHARS:,}"}
            )
        if self.kept_chars > MAX_ROW_CHARS:
            raise _Broken(
                gettext("row longer than %(limit)s characters") % {"limit": f"{MAX_ROW_CHARS:,}"}
            )
        return line

    def _skip_rest_of_line(self) -> None:
        while chunk := self._readline(MAX_ROW_CHARS):
            self.chars += len(chunk)
            if chunk.endswith(("\n", "\r")):
                return

    def next_row(self) -> None:
        self.first = 0
        if self.kept:
            self.kept.clear()
            self.kept_chars = 0

    def read_again(self) -> None:
        """The kept lines come again, before any line not yet read."""
        self.to_reread.extendleft(reversed(self.kept))
        self.next_row()


class Reader:
    """Rows of a CSV file with the header checked; see the module's docstring."""

    def __init__(self, file: TextIO) -> None:
        self._lines = _Lines(file)
        self._rows = csv.reader(self._lines)
        self.header = self._read_header()
        self._width = len(self.header)
        self._id_position = self.header.index("external_id")

    def _read_header(self) -> list[str]:
        try:
            header = [column.strip().lstrip("\ufeff") for column in next(self._rows)]
        except StopIteration:
            raise ImportFileError(gettext("the file is empty: expected a header line")) from None
        except (csv.Error, _Broken) as error:
            raise ImportFileError(
                gettext("the header line is not valid CSV: %(error)s") % {"error": error}
            ) from None
        self._lines.next_row()
        missing = [column for column in COLUMNS if column not in header]
        if missing:
            raise ImportFileError(
                gettext(
                    "the header lacks required column(s) %(missing)s; expected %(columns)s, "
                    "optionally %(optional)s (other columns go to attributes)"
                )
                % {
                    "missing": ", ".join(missing),
                    "columns": ",".join(COLUMNS),
                    "optional": ",".join(OPTIONAL_COLUMNS),
                }
            )
        duplicates = sorted({column for column in header if header.count(column) > 1})
        if duplicates or "" in header:
            raise ImportFileError(
                gettext("the header has duplicate or empty column names: %(names)s")
                % {"names": duplicates}
            )
        return header

    def batches(self, batch_rows: int) -> Iterator[Batch]:
        """Batches of at most batch_rows rows and about BATCH_CHARS characters."""
        lines, rows_of, width = self._lines, self._rows, self._width
        rows: list[list[str]] = []
        firsts: list[int] = []
        lasts: list[int] = []
        rejects: list[Reject] = []
        start = lines.chars
        while True:
            try:
                row = next(rows_of)
            except StopIteration:
                break
            except csv.Error:  # in non-strict mode only a field over the limit
                problem = gettext("a field longer than %(limit)s characters")
                rejects.append(self._broken(problem % {"limit": f"{MAX_FIELD_CHARS:,}"}))
                continue
            except _Broken as error:
                rejects.append(self._broken(str(error)))
                continue
            if lines.kept or (row and len(row) != width):
                reject = self._check(row)
                if reject:
                    rejects.append(reject)
                    continue
            if row:  # a blank line reads as []
                rows.append(row)
                firsts.append(lines.first)
                lasts.append(lines.last)
            lines.next_row()
            if len(rows) >= batch_rows or lines.chars - start >= BATCH_CHARS:
                yield Batch(rows, firsts, lasts, rejects)
                rows, firsts, lasts, rejects = [], [], [], []
                start = lines.chars
        if rows or rejects:
            yield Batch(rows, firsts, lasts, rejects)

    def _check(self, row: list[str]) -> Reject | None:
        """The reject of a row of the wrong width, or of one spanning lines with a
        line among them that reads as a row of its own (a quote left open)."""
        external_id = row[self._id_position] if self._id_position < len(row) else ""
        found = gettext("%(found)d columns instead of %(expected)d") % {
            "found": len(row),
            "expected": self._width,
        }
        if not self._lines.kept:
            problem = gettext("wrong number of columns: %(found)s") % {"found": found}
            return self._broken(problem, external_id)
        if len(row) != self._width:
            return self._broken(found, external_id)
        for number, line in self._lines.kept:
            try:
                fields = next(csv.reader([line]), [])
            except csv.Error:  # a field over the limit: not a row
                continue
            if len(fields) == self._width and fields[self._id_position].strip():
                problem = gettext("line %(number)d reads as a row of its own")
                return self._broken(problem % {"number": number}, external_id)
        return None

    def _broken(self, problem: str, external_id: str = "") -> Reject:
        """Reject the row being read. If it spans lines, a quote was probably left
        open: only its first line is rejected and the others are read again."""
        lines = self._lines
        first, last = lines.first, lines.last
        if not lines.kept:
            lines.next_row()
            return Reject(first, last, shown_id(external_id), problem)
        lines.read_again()
        reason = gettext(
            "unclosed quote? the quoted field opened on this line runs to line %(last)d "
            "(%(problem)s); lines %(next)d-%(last)d were read again as rows of their own"
        ) % {"last": last, "problem": problem, "next": first + 1}
        return Reject(first, first, shown_id(external_id), reason)
