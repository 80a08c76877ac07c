"""The example departments' connector definitions (``examples/``), as a test needs them.

A test names what differs from the example (its export file, its department, a
field mapped otherwise or left out) and gets the rest of the definition from
``examples/``; nobody writes the TOML out again. See ``exchange.local.examples``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from exchange.local.examples import CIVIL_AFFAIRS_BENEFITS, HOUSEHOLD_REGISTRY, definition_text

# The household example's fields whose columns (division, phone) a six-column person
# export (local_id, id_number, surname, given, dob, sex) does not have.
CONTACT_FIELDS = ("residence_division_code", "phone")


def example_toml(
    example: Path,
    *,
    connector_id: str | None = None,
    department: str | None = None,
    csv: str | None = None,
    encoding: str | None = None,
    key: str | None = None,
    source: Mapping[str, Any] | None = None,
    fields: Mapping[str, Mapping[str, Any]] | None = None,
    without: Iterable[str] = (),
) -> str:
    """An example's definition as TOML, with the changes named.

    ``csv``, ``encoding`` and ``key`` set the CSV source's ``path``, ``encoding`` and
    ``key``; ``source`` replaces the whole ``[source]`` section instead (a push or
    SQL source); ``fields`` replaces or adds field mappings; ``without`` leaves
    field mappings out.
    """
    connector = {"id": connector_id, "department": department}
    source_changes = {"path": csv, "encoding": encoding, "key": key}
    return definition_text(
        example,
        connector={k: v for k, v in connector.items() if v is not None},
        source=source,
        source_changes={k: v for k, v in source_changes.items() if v is not None},
        fields=fields,
        without=without,
    )


def household_toml(**changes: Any) -> str:
    """The household registry's residents definition (the demo's), with ``changes``."""
    return example_toml(HOUSEHOLD_REGISTRY, **changes)


def benefits_toml(**changes: Any) -> str:
    """The civil affairs bureau's benefit payments definition, with ``changes``."""
    return example_toml(CIVIL_AFFAIRS_BENEFITS, **changes)


def write_toml(folder: Path, text: str, name: str = "connector.toml") -> Path:
    """Write a definition's ``text`` to ``folder/name``; return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def household_definition(folder: Path, *, name: str = "connector.toml", **changes: Any) -> Path:
    """Write the household registry's definition with ``changes`` to ``folder/name``."""
    return write_toml(folder, household_toml(**changes), name)


def benefits_definition(folder: Path, *, name: str = "connector.toml", **changes: Any) -> Path:
    """Write the benefit payments definition with ``changes`` to ``folder/name``."""
    return write_toml(folder, benefits_toml(**changes), name)
