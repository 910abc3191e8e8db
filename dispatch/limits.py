"""The limits every outside input is held to, in one place: 64-bit integers, sane days, clean and bounded text.

Pure rules (no web, no database): the web edges (web/validation.py) screen every request with
them, and the services use them where a value reaches the database, so that a hostile value is
refused with a ServiceError before anything is written, on SQLite and PostgreSQL alike
(PostgreSQL refuses NUL in text and integers beyond 64 bits with an error, SQLite overflows).
"""
from __future__ import annotations

import re
from datetime import date, datetime


# Integers: what a BIGINT column (and SQLite's INTEGER) can hold.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# Days and times: wide enough for any real record, narrow enough that a period's UTC bounds and a
# time zone shift never overflow Python's or the database's date range.
EARLIEST_DAY, LATEST_DAY = date(1900, 1, 1), date(2999, 12, 31)

# Sizes. Free text (descriptions, notes) has its own limits in the services (2,000 characters);
# these bound what reaches any handler at all.
MAX_QUERY_VALUE = 1_000      # one query-string value (codes, filters, search words)
MAX_QUERY_PARAMS = 100       # query-string parameters in one request
MAX_PATH = 2_000             # a request path
MAX_API_STRING = 20_000      # one string in an API JSON body
MAX_CALLBACK_STRING = 12 * 1024 * 1024  # one string in a Dash callback body: a photo's data URL (8 MB as base64)
MAX_JSON_DEPTH = 32          # nesting of a JSON body
MAX_JSON_ITEMS = 20_000      # values in one JSON body (a Dash callback carries a few hundred)

# Control characters: none where text is stored or queried; free text keeps tab, newline, return.
# Lone surrogates cannot be encoded for the database either.
_CONTROL = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
_CONTROL_FREE_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def is_int64(value) -> bool:
    """True for an int (not a bool) a 64-bit signed column can hold."""
    return isinstance(value, int) and not isinstance(value, bool) and INT64_MIN <= value <= INT64_MAX


def bad_character(text: str, free_text: bool = False) -> str | None:
    """The first control character in `text` (tab, newline and return are allowed in free text), or None."""
    m = (_CONTROL_FREE_TEXT if free_text else _CONTROL).search(text)
    return m.group(0) if m else None


def describe_character(ch: str) -> str:
    return f"U+{ord(ch):04X}"


def day_in_range(value: date | datetime) -> bool:
    """Whether a day or time (its own calendar day) lies in EARLIEST_DAY..LATEST_DAY."""
    day = value.date() if isinstance(value, datetime) else value
    return EARLIEST_DAY <= day <= LATEST_DAY
