"""Match keys the database computes, for columns that store none (a customer's name,
a legacy account's kana). A functional index and the queries that use it must
build the same expression: both take it from here."""

from django.db.models import F, Func, Value
from django.db.models.functions import Lower, Replace


def spaceless(field: str) -> Func:
    """The column in lower case without half- or full-width spaces (U+0020, U+3000)."""
    return Lower(Replace(Replace(F(field), Value(" "), Value("")), Value("\u3000"), Value("")))
