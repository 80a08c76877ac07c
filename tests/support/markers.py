"""Every test under tests/integration and tests/e2e carries its tier's marker.

``-m "not integration"`` and the like choose tiers by marker, so a test file
that forgot ``pytestmark = pytest.mark.integration`` would run in the wrong
lane. This plugin (registered in tests/conftest.py) stops the run at collection
instead, naming the files.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
# The folder under tests/ -> the marker each of its tests must carry.
TIER_MARKERS = {"integration": "integration", "e2e": "e2e"}


def unmarked(items: Iterable[pytest.Item]) -> list[str]:
    """The files (relative to tests/) holding a test without its folder's tier marker."""
    missing = set()
    for item in items:
        try:
            folder = item.path.resolve().relative_to(TESTS).parts[0]
        except ValueError:  # not under tests/
            continue
        marker = TIER_MARKERS.get(folder)
        if marker is not None and item.get_closest_marker(marker) is None:
            missing.add(item.path.resolve().relative_to(TESTS).as_posix())
    return sorted(missing)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    missing = unmarked(items)
    if missing:
        raise pytest.UsageError(
            "tests without their tier's marker (add pytestmark = pytest.mark.<tier> "
            "at the top of the file): " + ", ".join(missing)
        )
