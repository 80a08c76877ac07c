"""Every integration and e2e test file carries its tier's marker (tests/support/markers.py)."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support import markers


@dataclass
class _Item:
    """What markers.unmarked reads of a collected test: its file and its markers."""

    path: Path
    marks: set[str] = field(default_factory=set)

    def get_closest_marker(self, name: str) -> object | None:
        return name if name in self.marks else None


def _items() -> list[_Item]:
    tests = markers.TESTS
    return [
        _Item(tests / "integration" / "test_marked.py", {"integration"}),
        _Item(tests / "integration" / "test_unmarked.py"),
        _Item(tests / "integration" / "test_unmarked.py", {"slow"}),
        _Item(tests / "integration" / "test_e2e_marker_only.py", {"e2e"}),
        _Item(tests / "e2e" / "test_stack.py", {"e2e"}),
        _Item(tests / "e2e" / "test_stack_unmarked.py", {"integration"}),
        _Item(tests / "unit" / "test_fast.py"),
        _Item(Path("/elsewhere/test_outside.py")),
    ]


def test_unmarked_names_each_file_holding_a_test_without_its_tiers_marker() -> None:
    assert markers.unmarked(_items()) == [  # type: ignore[arg-type]
        "e2e/test_stack_unmarked.py",
        "integration/test_e2e_marker_only.py",
        "integration/test_unmarked.py",
    ]


def test_collection_stops_on_an_unmarked_test() -> None:
    with pytest.raises(pytest.UsageError, match=r"integration/test_unmarked\.py"):
        markers.pytest_collection_modifyitems(_items())  # type: ignore[arg-type]
    markers.pytest_collection_modifyitems(_items()[:1])  # type: ignore[arg-type]


def _module_marks(path: Path) -> str:
    """The source of a module's ``pytestmark = ...`` assignment, or ''."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets
        ):
            return ast.get_source_segment(path.read_text(encoding="utf-8"), node) or ""
    return ""


@pytest.mark.parametrize("tier", sorted(markers.TIER_MARKERS))
def test_every_test_file_of_a_tier_declares_its_marker_at_module_level(tier: str) -> None:
    files = sorted((markers.TESTS / tier).glob("test_*.py"))
    assert files

    unmarked = [
        f.name for f in files if f"pytest.mark.{markers.TIER_MARKERS[tier]}" not in _module_marks(f)
    ]

    assert unmarked == []
