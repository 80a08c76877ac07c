"""Connector definitions: one TOML file per connector, validated with clear errors.

A definition names the publishing department, the target standard, the source
and, for each field of the standard, where its value comes from::

    [connector]
    id = "household-registry-persons"
    version = "1"
    department = "household_registry"
    standard = "person"

    [source]
    type = "csv"
    path = "residents.csv"      # relative to the definition file
    encoding = "utf-8-sig"
    key = "local_id"            # the department's stable record id column

    [fields.resident_id]
    from = "id_number"
    transform = ["strip", "halfwidth", "upper"]

    [fields.full_name]
    join = ["surname", "given"]

    [fields.birth_date]
    from = "dob"
    date_formats = ["%Y-%m-%d", "%Y%m%d"]

    [fields.sex]
    from = "sex"
    codes = { "1" = "MALE", "2" = "FEMALE" }
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from exchange.errors import ConfigError, SchemaNotFoundError
from schemas import Standard, load_standard

Transform = Literal["strip", "halfwidth", "upper", "lower", "collapse_spaces"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ConnectorInfo(_Strict):
    id: str = Field(min_length=1, max_length=100)
    version: str = "1"
    department: str = Field(min_length=1, max_length=100, pattern=r"^[a-z0-9_\-]+$")
    standard: str


class SourceSpec(_Strict):
    type: Literal["csv"] = "csv"
    path: Path
    encoding: str = "utf-8-sig"
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    quotechar: str = Field(default='"', min_length=1, max_length=1)
    key: str = Field(min_length=1, description="column holding the department's record id")


class FieldMapping(_Strict):
    source: str | None = Field(default=None, alias="from")
    join: list[str] | None = None
    separator: str = ""
    transform: list[Transform] = Field(default_factory=lambda: list[Transform](["strip"]))
    date_formats: list[str] | None = None
    codes: dict[str, str] | None = None
    default: str | None = None

    @model_validator(mode="after")
    def _one_origin(self) -> FieldMapping:
        if self.source is not None and self.join is not None:
            raise ValueError("give 'from' or 'join', not both")
        if self.source is None and self.join is None and self.default is None:
            raise ValueError("give one of 'from' or 'join' (or only a 'default')")
        return self

    @property
    def columns(self) -> list[str]:
        return [self.source] if self.source else list(self.join or [])


class ConnectorDefinition(_Strict):
    connector: ConnectorInfo
    source: SourceSpec
    fields: dict[str, FieldMapping]
    base_dir: Path = Path(".")

    @property
    def standard(self) -> Standard:
        return load_standard(self.connector.standard)

    @property
    def source_path(self) -> Path:
        path = self.source.path
        return path if path.is_absolute() else self.base_dir / path


def load_definition(path: Path) -> ConnectorDefinition:
    """Read and check a definition; every problem is reported in one ConfigError."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read connector definition {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    raw["base_dir"] = path.resolve().parent
    try:
        definition = ConnectorDefinition.model_validate(raw)
    except ValidationError as exc:
        lines = [f"  {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise ConfigError(f"connector definition {path} is invalid:\n" + "\n".join(lines)) from exc
    try:
        problems = check_against_standard(definition)
    except SchemaNotFoundError as exc:
        raise ConfigError(f"connector definition {path}: {exc.message}") from exc
    if problems:
        raise ConfigError(
            f"connector definition {path} does not fit its standard:\n"
            + "\n".join(f"  {p}" for p in problems)
        )
    return definition


def check_against_standard(definition: ConnectorDefinition) -> list[str]:
    """Mapped fields the standard lacks, and required fields left unmapped."""
    standard = definition.standard
    known = {f.name for f in standard.fields}
    problems = [
        f"fields.{name}: the standard {standard.name} has no field {name!r} "
        f"(its fields: {', '.join(sorted(known))})"
        for name in definition.fields
        if name not in known
    ]
    problems += [
        f"fields.{spec.name}: required by {standard.name} but not mapped"
        for spec in standard.fields
        if spec.required and spec.name not in definition.fields
    ]
    return problems
