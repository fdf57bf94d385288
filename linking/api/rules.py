"""What the API accepts, in one place: the views check their input with these, and
openapi.py states them from these, so the document and the code cannot differ."""

import re

from linking.models import LegacyAccount, LegacyService

BATCH_LIMIT = 1000
EVENTS_PAGE_DEFAULT = 100
EVENTS_PAGE_MAX = 1000
SERVICE_MAX = LegacyService._meta.get_field("code").max_length
EXTERNAL_ID_MAX = LegacyAccount._meta.get_field("external_id").max_length
JSON = "application/json"

# Patterns as JSON Schema writes them (ECMA-262, matched anywhere unless anchored);
# the views match them whole (fullmatch), so "$" cannot pass a trailing newline.
# A service code is a slug, as LegacyService.code is.
SERVICE = f"^[-a-zA-Z0-9_]{{1,{SERVICE_MAX}}}$"
# Anything but control characters.
_CONTROL = r"\x00-\x1f\x7f-\x9f"
EXTERNAL_ID = f"^[^{_CONTROL}]{{1,{EXTERNAL_ID_MAX}}}$"
# Twelve digits, grouped as on the member card or not: "1234 5678 9012".
UNIFIED_ID = r"^[0-9]{4}[ -]?[0-9]{4}[ -]?[0-9]{4}$"
# A link request's return URL (one of the client's, exactly), the service's state
# (anything printable) and the code it exchanges (what the return URL got).
RETURN_URL_MAX = 500
RETURN_URL = f"^https?://[^{_CONTROL} ]{{1,{RETURN_URL_MAX - 8}}}$"
STATE_MAX = 200
STATE = f"^[^{_CONTROL}]{{0,{STATE_MAX}}}$"
CODE = "^[-_a-zA-Z0-9]{43}$"
# A next_cursor from an earlier page; empty or absent: from the start.
CURSOR = r"^[0-9]{0,18}$"


def _matcher(pattern: str):
    return re.compile(pattern.removeprefix("^").removesuffix("$")).fullmatch


is_service = _matcher(SERVICE)
# And no lone surrogate: no JSON Schema string holds one, but a JSON body can escape
# one ("\ud800"), and the database cannot store it.
is_external_id = re.compile(f"[^{_CONTROL}\\ud800-\\udfff]{{1,{EXTERNAL_ID_MAX}}}").fullmatch
is_unified_id = _matcher(UNIFIED_ID)
is_cursor = _matcher(CURSOR)
is_return_url = _matcher(RETURN_URL)
is_state = re.compile(f"[^{_CONTROL}\\ud800-\\udfff]{{0,{STATE_MAX}}}").fullmatch
is_code = _matcher(CODE)
