"""Reading a department's dead letters (``dlq.<department>.<dataset>``), opened with its keys."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from connectors.pipeline import dlq_topic, open_dead_letter
from tests.support.kafka import read_topic
from tests.support.keys import keys_for


def sealed_dead_letters(bootstrap: str, department: str, dataset: str = "person") -> list[Any]:
    """The department's dead letters as they are on the topic (values sealed)."""
    found = read_topic(bootstrap, dlq_topic(department, dataset), f"{department}:".encode())
    return [json.loads(m.value) for m in found]


def dead_letters(
    bootstrap: str, sessions: sessionmaker[Session], department: str, dataset: str = "person"
) -> list[dict[str, Any]]:
    """The department's dead letters with their sealed values opened (``raw``, ``values``,
    each reason's ``message``)."""
    cipher = keys_for(sessions).cipher
    return [
        open_dead_letter(cipher, e) for e in sealed_dead_letters(bootstrap, department, dataset)
    ]
