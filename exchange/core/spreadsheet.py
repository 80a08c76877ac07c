"""CSV cells no spreadsheet evaluates (CSV injection, as OWASP describes it).

A text cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is taken
for a formula by Excel, LibreOffice and others; the exchange's CSV exports (the audit
log's, the indicators') hold text that users and producers choose (a case reference, a
claimed department), so such a cell is written with a leading ``'``.
"""

from __future__ import annotations

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell(text: str) -> str:
    """``text`` as a CSV cell no spreadsheet evaluates: a leading ``'`` if it could start
    a formula."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text
