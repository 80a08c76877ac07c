"""The message ids the console shows: what the Chinese catalogues must translate.

Found the way gettext's tools find them: Babel's extractors over the console's Python
modules (``_()``, ``N_()``, ``gettext()``) and templates (``_()``, ``{% trans %}``).
"""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir

CONSOLE = Path(__file__).parent
KEYWORDS = {"_": None, "N_": None, "gettext": None, "ngettext": (1, 2)}
METHODS = [
    ("**/templates/**.html", "jinja2.ext:babel_extract"),
    ("**.py", "python"),
]
OPTIONS = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n", "trimmed": "true"}}


def used() -> set[str]:
    """Every message id in the console's code and templates."""
    found: set[str] = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        CONSOLE, METHODS, keywords=KEYWORDS, options_map=OPTIONS
    ):
        if isinstance(message, tuple):
            found.update(m for m in message if m)
        elif message:
            found.add(message)
    return found
