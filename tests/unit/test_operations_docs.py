"""docs/operations.md's alert rules and scrape configuration name only metrics it lists."""

from __future__ import annotations

import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def _monitoring() -> str:
    text = DOCS.read_text(encoding="utf-8")
    return text[text.index("## Monitoring") : text.index("## Databases")]


def test_every_metric_an_alert_uses_is_listed() -> None:
    section = _monitoring()
    listed = set(re.findall(r"^\| `(exchange_[a-z_]+)` \|", section, re.M))
    assert len(listed) >= 15
    blocks = re.findall(r"```yaml\n(.*?)```", section, re.S)
    rules = next(b for b in blocks if "groups:" in b)
    used = set(re.findall(r"\b(exchange_[a-z_]+)", rules))
    assert used, rules
    assert used <= listed, used - listed
    for alert in ("Lag", "DeadLetters", "ReviewBacklog", "5xx", "AuditAppend", "NotReady"):
        assert re.search(rf"alert: Exchange\w*{alert}", rules), alert


def test_the_scrape_configuration_has_both_targets_and_the_credential() -> None:
    section = _monitoring()
    scrape = next(b for b in re.findall(r"```yaml\n(.*?)```", section, re.S) if "scrape" in b)
    assert "127.0.0.1:18080" in scrape  # the gateway (gateway.port)
    assert "127.0.0.1:19100" in scrape  # the builder under `exchange up`
    assert "type: Bearer" in scrape
