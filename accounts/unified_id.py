"""Unified IDs (統合ID): 12 random digits, the last a Damm check digit.

The Damm check digit catches every single-digit error and every transposition of
two adjacent digits, which Luhn does not (it misses 09 <-> 90). IDs are drawn from
the OS random source, so they say nothing about the customer, the time, or the
order of sign-up. 11 random digits (no leading zero) give 9 x 10^10 IDs.
"""

import secrets

LENGTH = 12

_DAMM = (
    (0, 3, 1, 7, 5, 9, 8, 6, 4, 2),
    (7, 0, 9, 2, 1, 5, 4, 8, 6, 3),
    (4, 2, 0, 6, 8, 7, 1, 3, 5, 9),
    (1, 7, 5, 0, 9, 8, 3, 4, 2, 6),
    (6, 1, 2, 3, 0, 4, 5, 9, 7, 8),
    (3, 6, 7, 4, 2, 0, 9, 5, 8, 1),
    (5, 8, 6, 9, 7, 2, 0, 1, 3, 4),
    (8, 9, 4, 5, 3, 6, 2, 0, 1, 7),
    (9, 4, 3, 8, 6, 1, 7, 2, 0, 5),
    (2, 5, 8, 1, 4, 3, 6, 7, 9, 0),
)


def _damm_interim(digits: str) -> int:
    interim = 0
    for char in digits:
        interim = _DAMM[interim][int(char)]
    return interim


def check_digit(digits: str) -> str:
    return str(_damm_interim(digits))


def is_valid(value: str) -> bool:
    """True for a well-formed unified ID (spaces and hyphens are ignored)."""
    digits = normalize(value)
    return (
        len(digits) == LENGTH
        and digits.isdigit()
        and digits.isascii()
        and _damm_interim(digits) == 0
    )


def normalize(value: str) -> str:
    return value.replace(" ", "").replace("-", "").strip()


def generate() -> str:
    body = str(10 ** (LENGTH - 2) + secrets.randbelow(9 * 10 ** (LENGTH - 2)))
    return body + check_digit(body)


def display(value: str) -> str:
    """1234 5678 9012: groups of four, as printed on the member card."""
    return " ".join(value[i : i + 4] for i in range(0, len(value), 4))
