"""The console's languages: Chinese (the default) and English, from gettext catalogues.

Templates and code are written with English message ids (``_("Search")``); the Chinese
catalogue (``locale/zh/*.po``, one file per area of the console) translates them. English
needs no catalogue: a message id is its own English text. The catalogues are read with
Babel when the gateway starts (no compiled ``.mo`` file to keep in step).

Dates and numbers are formatted for the locale with Babel (``zh_Hans_CN``, ``en_GB``),
times in the console's time zone (``console.timezone``).

Errors: the gateway's and the connectors' messages are written in English where they are
raised; the console shows each error's translated title, by its stable code
(:func:`error_title`), above the message itself, and the reasons of dead letters and
rejected rows by their code (:func:`reason_text`).
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable
from datetime import UTC
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from babel import Locale, dates, numbers
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGES = ("zh", "en")
BABEL_LOCALES = {"zh": "zh_Hans_CN", "en": "en_GB"}
LANGUAGE_NAMES = {"zh": "中文", "en": "English"}
LANGUAGE_COOKIE = "dx_lang"
TIMEZONE = ZoneInfo("Asia/Shanghai")


def _catalogue_files(language: str) -> list[Path]:
    return sorted((LOCALE_DIR / language).glob("*.po"))


@cache
def translations(language: str) -> NullTranslations:
    """The merged catalogues of ``language`` (English: none, the ids are the text)."""
    files = _catalogue_files(language)
    if not files:
        return NullTranslations()
    merged: Translations | None = None
    for path in files:
        with path.open("rb") as fp:
            catalog = read_po(fp, locale=BABEL_LOCALES[language])
        buffer = io.BytesIO()
        write_mo(buffer, catalog)
        buffer.seek(0)
        loaded = Translations(buffer, domain="messages")
        if merged is None:
            merged = loaded
        else:
            merged.merge(loaded)
    assert merged is not None
    return merged


def catalogue_ids(language: str) -> set[str]:
    """Every message id the catalogues of ``language`` translate (non-empty), for the test
    that each message the console shows has its translation."""
    found: set[str] = set()
    for path in _catalogue_files(language):
        with path.open("rb") as fp:
            for message in read_po(fp):
                if message.id and message.string:
                    found.add(message.id if isinstance(message.id, str) else message.id[0])
    return found


def choose(requested: str | None, default: str) -> str:
    """The language to answer in: the one asked for if the console has it, else ``default``."""
    return requested if requested in LANGUAGES else default


def gettext(language: str) -> Callable[[str], str]:
    return translations(language).gettext


class Formats:
    """Dates, times and numbers for one language (the templates' filters)."""

    def __init__(self, language: str, tz: ZoneInfo = TIMEZONE) -> None:
        self.language = language
        self.locale = Locale.parse(BABEL_LOCALES[language])
        self.tz = tz

    def datetime(self, value: dt.datetime | None, format: str = "medium") -> str:
        if value is None:
            return ""
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return dates.format_datetime(value, format, tzinfo=self.tz, locale=self.locale)

    def date(self, value: dt.date | dt.datetime | None, format: str = "medium") -> str:
        if value is None:
            return ""
        if isinstance(value, dt.datetime):
            if value.tzinfo is None:
                value = value.replace(tzinfo=UTC)
            value = value.astimezone(self.tz).date()
        return dates.format_date(value, format, locale=self.locale)

    def number(self, value: float | int | None, digits: int | None = None) -> str:
        if value is None:
            return ""
        if digits is None:
            return numbers.format_decimal(value, locale=self.locale)
        pattern = "#,##0." + "0" * digits if digits else "#,##0"
        return numbers.format_decimal(value, format=pattern, locale=self.locale)

    def percent(self, value: float | None, digits: int = 1) -> str:
        if value is None:
            return ""
        pattern = "#,##0." + "0" * digits + "%" if digits else "#,##0%"
        return numbers.format_percent(value, format=pattern, locale=self.locale)

    def filters(self) -> dict[str, Callable[..., str]]:
        return {
            "datetime": self.datetime,
            "date": self.date,
            "number": self.number,
            "percent": self.percent,
        }


# Titles of the errors a console user can meet, by their stable code (docs/errors.md). The
# ids are English; the Chinese catalogue translates them. Marked with N_ so the extractor
# finds them.
def N_(message: str) -> str:
    return message


ERROR_TITLES: dict[str, str] = {
    "unauthenticated": N_("You are not signed in, or your credentials were refused"),
    "session_expired": N_("Your session has ended"),
    "development_credential": N_("This key was made for a demo and is refused here"),
    "forbidden": N_("Not allowed"),
    "csrf_refused": N_("The form was refused for your protection"),
    "validation_failed": N_("Some of what you entered cannot be used"),
    "not_found": N_("Nothing found that you may see"),
    "conflict": N_("This conflicts with the current state"),
    "rate_limited": N_("Too many requests: wait a moment and try again"),
    "auth_throttled": N_("Too many failed sign-ins from your address: wait a moment"),
    "disclosure_rule": N_("This grant would let one department see too much"),
    "audit_write_failed": N_("The audit log could not be written: nothing was disclosed"),
    "database_error": N_("The database is unavailable: try again shortly"),
    "internal_error": N_("Something went wrong on our side: nothing was disclosed"),
    "broker_error": N_("The message broker cannot be reached: try again shortly"),
    "decryption_failed": N_("A sealed value could not be opened with your department's keys"),
}


GENERIC_ERROR = N_("The request could not be done")

# The roles' names as shown (templates write ``_(identity.role)``).
ROLE_NAMES = (
    N_("caseworker"),
    N_("auditor"),
    N_("admin"),
    N_("publisher"),
    N_("department_admin"),
    N_("data_steward"),
)
SINGLE_SIGN_ON = N_("Single sign-on")  # console.oidc_label's default


def error_title(code: str, _: Callable[[str], str]) -> str:
    """The translated title of an error code (a generic one for a code not listed)."""
    return _(ERROR_TITLES.get(code, GENERIC_ERROR))


def reason_text(code: str, texts: dict[str, str], _: Callable[[str], str]) -> str:
    """The translated text of a reason code in ``texts`` (the code itself if unknown)."""
    found = texts.get(code)
    return _(found) if found is not None else code


__all__ = [
    "ERROR_TITLES",
    "LANGUAGES",
    "LANGUAGE_COOKIE",
    "N_",
    "Formats",
    "catalogue_ids",
    "choose",
    "error_title",
    "gettext",
    "reason_text",
    "translations",
]
