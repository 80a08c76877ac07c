"""The example departments shipped in ``examples/``, and their connector definitions with changes.

``examples/`` holds each example department's connector definition (and a sample
export) once: ``exchange demo`` copies the household registry's, and benchmarks
and tests load them from here instead of writing the TOML out again. A variant
(another export file, another department, a field mapped otherwise or left out)
is the example with changes, written back as TOML by :func:`dumps`.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from exchange.core.config import PROJECT_ROOT

EXAMPLES = PROJECT_ROOT / "examples"
HOUSEHOLD_REGISTRY = EXAMPLES / "household_registry" / "household_registry.toml"
"""The household registry's residents export mapped to the Person standard (the demo's)."""
HOUSEHOLD_RESIDENTS = EXAMPLES / "household_registry" / "residents.csv"
"""The residents export ``exchange demo`` writes (:mod:`exchange.local.population`)."""
HOUSEHOLD_MEMBERSHIP = EXAMPLES / "household_registry" / "household_membership.toml"
"""The household registry's household memberships mapped to HouseholdMembership."""
CIVIL_AFFAIRS_BENEFITS = EXAMPLES / "civil_affairs" / "benefit_payments.toml"
"""The civil affairs bureau's benefit payments mapped to the BenefitPayment standard."""
CIVIL_AFFAIRS_PAYMENTS = EXAMPLES / "civil_affairs" / "benefit_payments.csv"
"""A sample export of benefit payments to residents of the household registry's sample."""
HUMAN_RESOURCES_PERSONS = EXAMPLES / "human_resources" / "insured_persons.toml"
"""Human resources' roster of insured people mapped to Person (some without an ID)."""
HUMAN_RESOURCES_INSURANCE = EXAMPLES / "human_resources" / "social_insurance.toml"
"""Human resources' social insurance records mapped to SocialInsurance."""
HEALTH_INSURANCE_ENROLMENTS = EXAMPLES / "health_insurance" / "enrolments.toml"
"""The medical insurance bureau's enrolments (JSONL) mapped to HealthInsuranceEnrolment."""
MARKET_REGULATION_BUSINESSES = EXAMPLES / "market_regulation" / "businesses.toml"
"""The market regulation bureau's businesses (a GB18030 CSV) mapped to Organisation."""

# The sections of a connector definition, in the order they are written.
_SECTIONS = ("connector", "source", "fields")


def load(example: Path = HOUSEHOLD_REGISTRY) -> dict[str, Any]:
    """An example's connector definition as the TOML parser reads it."""
    return tomllib.loads(example.read_text(encoding="utf-8"))


def changed(
    definition: Mapping[str, Any],
    *,
    connector: Mapping[str, Any] | None = None,
    source: Mapping[str, Any] | None = None,
    source_changes: Mapping[str, Any] | None = None,
    fields: Mapping[str, Mapping[str, Any]] | None = None,
    without: Iterable[str] = (),
) -> dict[str, Any]:
    """A copy of ``definition`` with changes; ``definition`` itself is left as it is.

    ``connector`` and ``source_changes`` set keys of ``[connector]`` and ``[source]``;
    ``source`` replaces the whole ``[source]`` section (a push or SQL source keeps
    nothing of a CSV one); ``fields`` replaces or adds whole field mappings (a new
    one comes last); ``without`` leaves field mappings out (an export that lacks
    their columns).
    """
    result = {
        "connector": {**definition["connector"], **(connector or {})},
        "source": dict(source) if source is not None else dict(definition["source"]),
        "fields": {name: dict(mapping) for name, mapping in definition["fields"].items()},
    }
    result["source"].update(source_changes or {})
    for name, mapping in (fields or {}).items():
        result["fields"][name] = dict(mapping)
    for name in without:
        del result["fields"][name]
    return result


def dumps(definition: Mapping[str, Any]) -> str:
    """A connector definition as TOML: ``[connector]``, ``[source]``, then one table a field."""
    unknown = set(definition) - set(_SECTIONS)
    if unknown:
        raise ValueError(f"not a section of a connector definition: {sorted(unknown)}")
    tables: list[tuple[str, Mapping[str, Any]]] = []
    for section in ("connector", "source"):
        if section in definition:
            tables.append((section, definition[section]))
    for name, mapping in definition.get("fields", {}).items():
        tables.append((f"fields.{name}", mapping))
    return "\n".join(
        f"[{header}]\n" + "".join(f"{key} = {_value(value)}\n" for key, value in keys.items())
        for header, keys in tables
    )


def definition_text(example: Path = HOUSEHOLD_REGISTRY, **changes: Any) -> str:
    """An example's definition with :func:`changed`'s ``changes``, as TOML."""
    return dumps(changed(load(example), **changes))


def _value(value: object) -> str:
    # A TOML basic string is a JSON string (JSON's escapes are TOML's too).
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    if isinstance(value, dict):
        items = (f"{_value(str(key))} = {_value(item)}" for key, item in value.items())
        return "{ " + ", ".join(items) + " }"
    raise TypeError(f"cannot write {type(value).__name__} as TOML here")
