"""Normalization for 名寄せ: the match keys of legacy accounts and of customers.

Every function is total (any str in, a str out, never raises) and idempotent, so
a key can be normalized again without changing it. An empty result means "no
usable key": blank keys never match anything.
"""

import re
import unicodedata
from collections.abc import Callable

import phonenumbers
from phonenumbers import PhoneNumberFormat

_MAX_ROUNDS = 4

# Exact matches between services: the match keys (LegacyAccount columns) that must
# all be equal and non-blank. The staff report groups by them; the probabilistic
# matching's evaluation compares against them.
EXACT_RULES = {
    "email": ("email_key",),
    "phone": ("phone_key",),
    "name_birth": ("name_key", "birth_date"),
}


def _fixpoint(step: Callable[[str], str], value: str) -> str:
    # Unicode normalization and case folding do not always commute (a folded
    # character can decompose again), so repeat until the value stops changing.
    for _round in range(_MAX_ROUNDS):
        next_value = step(value)
        if next_value == value:
            return value
        value = next_value
    return value


def _nfkc(value: str) -> str:
    return unicodedata.normalize("NFKC", value)


def _without_space(value: str) -> str:
    # str.split() splits on every Unicode space, 全角スペース (U+3000) included.
    return "".join(value.split())


def _without_invisible(value: str) -> str:
    # Control and format characters (zero-width spaces, BOMs) sneak into exports.
    if value.isprintable():
        return value
    return "".join(c for c in value if unicodedata.category(c) not in {"Cc", "Cf"})


# 中黒 separates given and family names in katakana foreign names (ジョン・スミス).
_NAME_SEPARATORS = {ord("・"): None}


def normalize_email(value: str) -> str:
    """ "ＴＡＲＯ@Example.JP " -> "taro@example.jp"."""
    if not value:
        return ""
    if value.isascii():
        # NFKC leaves ASCII alone and casefold() is lower() there: the common case, fast.
        return value.strip().lower()
    return _fixpoint(lambda v: _nfkc(v).strip().casefold(), value)


def normalize_name(value: str) -> str:
    """A name without width, case, spaces or separators: "山田　太郎" -> "山田太郎"."""
    if not value:
        return ""
    return _fixpoint(_name_step, value)


def _name_step(value: str) -> str:
    text = _without_space(_nfkc(value).translate(_NAME_SEPARATORS))
    return _without_invisible(text).casefold()


_KATAKANA_TO_HIRAGANA = {cp: cp - 0x60 for cp in range(0x30A1, 0x30F7)} | {
    0x30FD: 0x309D,  # ヽ -> ゝ
    0x30FE: 0x309E,  # ヾ -> ゞ
}


def normalize_kana(value: str) -> str:
    """Readings folded to hiragana: "ヤマダ　タロウ", "ﾔﾏﾀﾞ ﾀﾛｳ" -> "やまだたろう"."""
    if not value:
        return ""
    return _fixpoint(_kana_step, value)


def _kana_step(value: str) -> str:
    return _name_step(value).translate(_KATAKANA_TO_HIRAGANA)


# Phone numbers: everything that is not a digit or a leading "+" is decoration
# (hyphens, brackets, spaces, "TEL:"), after NFKC turned full-width digits to ASCII.
_NOT_DIGIT = re.compile(r"[^0-9]")
# "010" is Japan's international call prefix, not a domestic area code.
_JP_DOMESTIC = re.compile(r"0((?!10)[1-9][0-9]{8,9})")
_JP_INTERNATIONAL = re.compile(r"\+81([1-9][0-9]{8,9})")


def normalize_phone(value: str) -> str:
    """A phone number in E.164 ("+819012345678"), or "" when it is not a valid number.

    Numbers without a country code are read as Japanese."""
    if not value:
        return ""
    # NFKC leaves ASCII alone: skip it for the common case.
    text = (value if value.isascii() else _nfkc(value)).strip()
    digits = _NOT_DIGIT.sub("", text)
    if not digits or len(digits) > 17:
        return ""
    cleaned = "+" + digits if text.startswith("+") else digits
    national = _plain_japanese_national(cleaned)
    if national and _is_valid_japanese(national):
        return "+81" + national
    return _parse_with_phonenumbers(cleaned)


def _plain_japanese_national(cleaned: str) -> str:
    match = _JP_DOMESTIC.fullmatch(cleaned) or _JP_INTERNATIONAL.fullmatch(cleaned)
    return match.group(1) if match else ""


def _parse_with_phonenumbers(cleaned: str) -> str:
    try:
        number = phonenumbers.parse(cleaned, "JP")
    except phonenumbers.NumberParseException:
        return ""
    if not phonenumbers.is_valid_number(number):
        return ""
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def _japanese_validity() -> re.Pattern[str]:
    """One pattern for phonenumbers.is_valid_number on a Japanese national number:
    a possible length and the pattern of the general description, then of one kind
    (phonenumbers' _is_number_matching_desc for each, as lookaheads)."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region("JP")
    kinds = ("mobile", "fixed_line", "toll_free", "voip", "premium_rate", "shared_cost")
    kinds += ("personal_number", "pager", "uan", "voicemail")
    descs = [getattr(metadata, kind) for kind in kinds]
    alternatives = "|".join(_desc_pattern(d) for d in descs if d and d.national_number_pattern)
    return re.compile(f"{_desc_pattern(metadata.general_desc)}(?:{alternatives})")


def _desc_pattern(desc) -> str:
    lengths = "|".join(f"[0-9]{{{n}}}" for n in sorted(set(desc.possible_length or ())))
    length = f"(?=(?:{lengths})\\Z)" if lengths else ""
    return f"{length}(?=(?:{desc.national_number_pattern})\\Z)"


_JP_VALID = _japanese_validity()


def _is_valid_japanese(national: str) -> bool:
    """phonenumbers.is_valid_number for a Japanese national number, without parsing.

    Parsing costs about 30 µs a number, too slow for millions of imported rows; this
    applies the same metadata patterns directly (tests check both agree)."""
    return _JP_VALID.match(national) is not None
