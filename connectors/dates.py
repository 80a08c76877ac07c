"""Reading dates as departments write them (a field's ``date_formats``).

An entry of ``date_formats`` is either a Python ``strptime`` format (it holds a
``%``: ``"%Y-%m-%d"``) or the name of a family of writings:

========  =====================================================================
``ymd``   year first, the unambiguous writings: ``2024-03-05``, ``2024-3-5``,
          ``2024/3/5``, ``2024.03.05``, ``20240305``, ``2024年3月5日``
``dmy``   day first: ``05/03/2024``, ``5.3.2024``, ``5-3-2024`` (5 March)
``mdy``   month first: ``03/05/2024``, ``3-5-2024`` (5 March)
========  =====================================================================

``05/03/2024`` is 5 March in one country and 3 May in another, so neither ``dmy``
nor ``mdy`` is ever assumed: a definition names the one its export uses, and may
not name both. Entries are tried in order; the first that reads the text as a
real calendar date wins.

A ``strptime`` format made only of ``%Y`` (or ``%y``), ``%m``, ``%d``, ``%%`` and
literal text is read without ``strptime``: the same regular expression that CPython's
``_strptime`` builds for it (:func:`_date_pattern`), then :class:`~datetime.date`; so
the same texts are read as the same dates (a property test compares the two), at a
tenth of the cost (``strptime`` takes a lock and checks the locale on every call). Any
other format goes to ``strptime``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from datetime import date, datetime
from typing import Final

__all__ = ["WRITINGS", "check_formats", "parse_date"]

_YMD: Final = (
    re.compile(r"(?P<y>[0-9]{4})(?P<s>[-/.])(?P<m>[0-9]{1,2})(?P=s)(?P<d>[0-9]{1,2})"),
    re.compile(r"(?P<y>[0-9]{4})(?P<m>[0-9]{2})(?P<d>[0-9]{2})"),
    re.compile(r"(?P<y>[0-9]{4})\s*年\s*(?P<m>[0-9]{1,2})\s*月\s*(?P<d>[0-9]{1,2})\s*日?"),
)
_DMY: Final = (re.compile(r"(?P<d>[0-9]{1,2})(?P<s>[-/.])(?P<m>[0-9]{1,2})(?P=s)(?P<y>[0-9]{4})"),)
_MDY: Final = (re.compile(r"(?P<m>[0-9]{1,2})(?P<s>[-/.])(?P<d>[0-9]{1,2})(?P=s)(?P<y>[0-9]{4})"),)

WRITINGS: Final = {"ymd": _YMD, "dmy": _DMY, "mdy": _MDY}
"""The named families of writings, each a list of patterns with groups y, m, d."""


def check_formats(formats: Sequence[str]) -> str | None:
    """Why a ``date_formats`` list cannot be used, or None if it can."""
    if not formats:
        return "date_formats must list at least one format"
    for entry in formats:
        if "%" not in entry and entry not in WRITINGS:
            return (
                f"date_formats: {entry!r} is neither a strptime format (with %) nor one of "
                f"{', '.join(WRITINGS)}"
            )
    if "dmy" in formats and "mdy" in formats:
        return (
            "date_formats: 'dmy' and 'mdy' together are ambiguous (05/03/2024); "
            "name the one the export uses"
        )
    return None


def _by_writing(text: str, name: str) -> date | None:
    for pattern in WRITINGS[name]:
        found = pattern.fullmatch(text)
        if found:
            try:
                return date(int(found["y"]), int(found["m"]), int(found["d"]))
            except ValueError:
                return None
    return None


# CPython's _strptime (TimeRE) patterns for the directives read here; what it escapes in
# a format's literal text, and how it matches whitespace there.
_DIRECTIVES: Final = {
    "d": r"(?P<d>3[0-1]|[1-2]\d|0[1-9]|[1-9]| [1-9])",
    "m": r"(?P<m>1[0-2]|0[1-9]|[1-9])",
    "y": r"(?P<y>\d\d)",
    "Y": r"(?P<Y>\d\d\d\d)",
    "%": "%",
}
_REGEX_CHARS: Final = re.compile(r"([\\.^$*+?\(\){}\[\]|])")
_WHITESPACE: Final = re.compile(r"\s+")


@functools.cache
def _date_pattern(entry: str) -> re.Pattern[str] | None:
    """The pattern ``strptime`` matches ``entry`` with, if ``entry`` has a year, and no
    directive but ``%Y``/``%y``, ``%m``, ``%d`` and ``%%``, each at most once; else None."""
    escaped = _WHITESPACE.sub(r"\\s+", _REGEX_CHARS.sub(r"\\\1", entry))
    pattern, rest, seen = "", escaped, set()
    while "%" in rest:
        at = rest.index("%") + 1
        if at == len(rest) or rest[at] not in _DIRECTIVES:
            return None
        directive = rest[at]
        if directive != "%":
            if directive in seen:
                return None
            seen.add(directive)
        pattern += rest[: at - 1] + _DIRECTIVES[directive]
        rest = rest[at + 1 :]
    if len(seen & {"Y", "y"}) != 1:
        return None
    return re.compile(pattern + rest, re.IGNORECASE)


def _by_pattern(text: str, pattern: re.Pattern[str]) -> date | None:
    # What _strptime does with a match: it must reach the end of the text (a match, not a
    # fullmatch: the first match found decides); %y is 2000-2068 or 1969-1999.
    found = pattern.match(text)
    if found is None or found.end() != len(text):
        return None
    groups = found.groupdict()
    if "Y" in groups:
        year = int(groups["Y"])
    else:
        year = int(groups["y"])
        year += 2000 if year <= 68 else 1900
    try:
        return date(year, int(groups.get("m") or 1), int(groups.get("d") or 1))
    except ValueError:
        return None


def parse_date(text: str, formats: Sequence[str]) -> date | None:
    """The date ``text`` is in the first of ``formats`` that reads it, else None."""
    for entry in formats:
        if entry in WRITINGS:
            found = _by_writing(text, entry)
            if found is not None:
                return found
            continue
        pattern = _date_pattern(entry)
        if pattern is not None:
            found = _by_pattern(text, pattern)
            if found is not None:
                return found
            continue
        try:
            return datetime.strptime(text, entry).date()
        except ValueError:
            continue
    return None
