"""docs/console.md shows every page the screenshot script makes, in both languages, and
every image it names exists (made by scripts/console-screenshots.py, never by the tests)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "console-screenshots.py"
DOC = ROOT / "docs" / "console.md"


def test_every_screenshot_is_in_the_docs_and_on_disk() -> None:
    shots = re.findall(r'Shot\("([a-z-]+)"', SCRIPT.read_text(encoding="utf-8"))
    assert len(shots) >= 15
    text = DOC.read_text(encoding="utf-8")
    named = set(re.findall(r"\(console/([a-z-]+\.(?:zh|en)\.png)\)", text))
    expected = {f"{shot}.{language}.png" for shot in shots for language in ("zh", "en")}
    assert expected <= named
    missing = [name for name in named if not (DOC.parent / "console" / name).is_file()]
    assert missing == []
