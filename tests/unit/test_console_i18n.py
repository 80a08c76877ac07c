"""The console's languages: every message it shows is translated into Chinese, every
catalogue parses, a translation keeps its placeholders, and dates and numbers follow the
language (issue 21, point 6)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from gateway.console import i18n, messages, publisher_reasons

PLACEHOLDER = re.compile(r"%\((\w+)\)s")
CATALOGUES = sorted((i18n.LOCALE_DIR / "zh").glob("*.po"))
DOCS = Path(__file__).resolve().parents[2] / "docs" / "connectors.md"


def test_every_message_the_console_shows_is_translated_into_chinese() -> None:
    missing = sorted(messages.used() - i18n.catalogue_ids("zh"))
    assert missing == [], "untranslated (scripts/console-messages.py lists them too)"


@pytest.mark.parametrize("path", CATALOGUES, ids=lambda p: p.name)
def test_each_catalogue_parses_and_keeps_its_placeholders(path: Path) -> None:
    with path.open("rb") as fp:
        catalogue = read_po(fp, locale="zh_Hans_CN")
    checked = 0
    for message in catalogue:
        if not message.id:
            continue
        msgid = message.id if isinstance(message.id, str) else message.id[0]
        text = message.string if isinstance(message.string, str) else message.string[0]
        assert text, f"{path.name}: {msgid!r} has no translation"
        assert set(PLACEHOLDER.findall(msgid)) == set(PLACEHOLDER.findall(text)), (
            f"{path.name}: {msgid!r}"
        )
        checked += 1
    assert checked > 0


def test_every_error_title_and_rejection_reason_reads_in_chinese() -> None:
    zh = i18n.gettext("zh")
    en = i18n.gettext("en")
    for code in i18n.ERROR_TITLES:
        assert i18n.error_title(code, zh) != i18n.error_title(code, en), code
    for code, text in publisher_reasons.REASON_TEXTS.items():
        assert publisher_reasons.reason(code, en) == text
        assert publisher_reasons.reason(code, zh) != text, code
    assert publisher_reasons.reason("no.such_code", zh) == "no.such_code"


def test_every_rejection_code_of_the_connectors_documentation_has_a_text() -> None:
    """docs/connectors.md lists each code a dead letter can carry, in its tables."""
    section = DOCS.read_text(encoding="utf-8").split("## Rejection reasons", 1)[1]
    section = section.split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([a-z_]+\.[a-z_]+)` \|", section, re.MULTILINE))
    assert len(documented) > 30
    assert documented - set(publisher_reasons.REASON_TEXTS) == set()


def test_dates_and_numbers_follow_the_language() -> None:
    zh, en = i18n.Formats("zh"), i18n.Formats("en")
    moment = datetime(2026, 3, 5, 1, 30, tzinfo=UTC)  # 09:30 in China
    assert zh.datetime(moment) != en.datetime(moment)
    assert "2026年3月5日" in zh.datetime(moment)
    assert "5 Mar 2026" in en.datetime(moment)
    assert "09:30" in zh.datetime(moment)
    assert "09:30" in en.datetime(moment)
    assert zh.date(moment) != en.date(moment)
    assert en.number(1234567.5, 1) == "1,234,567.5"
    assert zh.percent(0.256) == "25.6%"
    assert i18n.Formats("zh").number(1234567) == "1,234,567"


def test_a_message_id_has_one_translation_in_every_catalogue() -> None:
    """The catalogues are merged into one: an id translated differently in two files would
    be shown with whichever file was read last, on every page."""
    from babel.messages.pofile import read_po

    seen: dict[str, tuple[str, str]] = {}
    clashes = []
    for path in sorted((i18n.LOCALE_DIR / "zh").glob("*.po")):
        with path.open("rb") as fp:
            for message in read_po(fp):
                if not message.id or not message.string:
                    continue
                key = message.id if isinstance(message.id, str) else message.id[0]
                text = message.string if isinstance(message.string, str) else message.string[0]
                first = seen.setdefault(key, (path.name, text))
                if first[1] != text:
                    clashes.append((key, first, (path.name, text)))
    assert clashes == []
