"""CSV that staff open in a spreadsheet: cells that would run as formulas are made text."""

import unicodedata

# A spreadsheet runs a cell that starts with one of these as a formula; full-width
# and small forms (＝, ＋, －, ＠, ﹦ ...) count too, as spreadsheets fold them.
_FORMULA_STARTS = frozenset("=+-@\t\r")


def safe_cell(value: object) -> object:
    """Text that a spreadsheet would read as a formula gets a leading apostrophe;
    NUL, where some readers cut the cell, is written as \\x00."""
    if not isinstance(value, str) or not value:
        return value
    value = value.replace("\x00", "\\x00")
    if unicodedata.normalize("NFKC", value[0])[:1] in _FORMULA_STARTS:
        return "'" + value
    return value
