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

A field is made by at most one value transform besides ``codes``: ``split_name``
(one part of a full name), ``scale`` (a number times a factor) or a date field's
``date_formats``; see :mod:`connectors.mapping`. A field the standard marks
``"optional": "declared"`` (Person's ``resident_id``) must be mapped unless the
definition says ``optional = true`` for it.
"""

from __future__ import annotations

import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import ErrorDetails

from connectors.dates import check_formats
from exchange.core.errors import ConfigError, SchemaNotFoundError
from schemas import FieldSpec, Standard, load_standard
from schemas.standards import base_type

Transform = Literal["strip", "halfwidth", "upper", "lower", "collapse_spaces"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ConnectorInfo(_Strict):
    id: str = Field(min_length=1, max_length=100)
    version: str = "1"
    department: str = Field(min_length=1, max_length=100, pattern=r"^[a-z0-9_\-]+$")
    standard: str


class _SourceBase(_Strict):
    key: str = Field(min_length=1, description="column holding the department's record id")
    changed_at: str | None = Field(
        default=None,
        min_length=1,
        description="column holding when the department's system last changed the row "
        "(ISO 8601); sent, signed, as the record's source change time",
    )
    changed_at_zone: str = Field(
        default="UTC",
        description="IANA time zone of changed_at values that name none (e.g. Asia/Shanghai)",
    )

    @model_validator(mode="after")
    def _known_zone(self) -> _SourceBase:
        try:
            ZoneInfo(self.changed_at_zone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            zone = self.changed_at_zone
            raise ValueError(f"changed_at_zone: unknown time zone {zone!r}") from exc
        return self


class CsvSourceSpec(_SourceBase):
    """A CSV export; the first line is the header."""

    type: Literal["csv"] = "csv"
    path: Path
    encoding: str = "utf-8-sig"
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    quotechar: str = Field(default='"', min_length=1, max_length=1)


class JsonLinesSourceSpec(_SourceBase):
    """JSON Lines: one JSON object per line."""

    type: Literal["jsonl"]
    path: Path
    encoding: str = "utf-8"


class SqlSourceSpec(_SourceBase):
    """A table or query read through SQLAlchemy, optionally incrementally by a watermark."""

    type: Literal["sql"]
    url_env: str = Field(
        min_length=1,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="name of the environment variable holding the SQLAlchemy URL",
    )
    table: str | None = Field(default=None, min_length=1)
    query: str | None = Field(default=None, min_length=1)
    watermark: str | None = Field(default=None, min_length=1)
    batch_size: int = Field(default=5000, ge=1, le=1_000_000)

    @model_validator(mode="after")
    def _table_or_query(self) -> SqlSourceSpec:
        if self.table is not None and self.query is not None:
            raise ValueError("give 'table' or 'query', not both")
        if self.table is None and self.query is None:
            raise ValueError("give one of 'table' or 'query'")
        return self


class PushSourceSpec(_SourceBase):
    """Records are pushed to the exchange over HTTP; there is nothing to read locally."""

    type: Literal["push"]


SOURCE_TYPES = ("csv", "jsonl", "sql", "push")
FileSourceSpec = CsvSourceSpec | JsonLinesSourceSpec
SourceSpec = Annotated[
    CsvSourceSpec | JsonLinesSourceSpec | SqlSourceSpec | PushSourceSpec,
    Field(discriminator="type"),
]


NamePart = Literal["family", "given"]
DayOrder = Literal["dmy", "mdy"]


class FieldMapping(_Strict):
    source: str | None = Field(default=None, alias="from")
    join: list[str] | None = None
    separator: str = ""
    transform: list[Transform] = Field(default_factory=lambda: list[Transform](["strip"]))
    date_formats: list[str] | None = None
    codes: dict[str, str] | None = None
    default: str | None = None
    # The value may be empty, or (without from/join) the export has no such value at all.
    optional: bool = False
    # The family or the given name out of a full name (connectors.names).
    split_name: NamePart | None = None
    # Multiply a number by this (e.g. 100 for yuan to fen); exact, in decimal.
    scale: Decimal | None = None

    @model_validator(mode="after")
    def _one_origin(self) -> FieldMapping:
        if self.source is not None and self.join is not None:
            raise ValueError("give 'from' or 'join', not both")
        if self.source is None and self.join is None and self.default is None and not self.optional:
            raise ValueError(
                "give one of 'from' or 'join' (or only a 'default', or only "
                "'optional = true' if the export has no such value)"
            )
        if self.split_name is not None and self.scale is not None:
            raise ValueError("give 'split_name' or 'scale', not both")
        if self.scale is not None and (not self.scale.is_finite() or self.scale == 0):
            raise ValueError("'scale' must be a finite, non-zero number")
        if self.date_formats is not None:
            problem = check_formats(self.date_formats)
            if problem:
                raise ValueError(problem)
        return self

    @property
    def columns(self) -> list[str]:
        return [self.source] if self.source else list(self.join or [])


class ConnectorDefinition(_Strict):
    connector: ConnectorInfo
    source: SourceSpec
    fields: dict[str, FieldMapping]
    base_dir: Path = Path(".")

    @model_validator(mode="before")
    @classmethod
    def _csv_by_default(cls, data: Any) -> Any:
        # [source] without `type` is a CSV source, as before source types existed.
        source = data.get("source") if isinstance(data, dict) else None
        if isinstance(source, dict) and "type" not in source:
            data = {**data, "source": {**source, "type": "csv"}}
        return data

    @property
    def standard(self) -> Standard:
        return load_standard(self.connector.standard)

    @property
    def source_path(self) -> Path:
        """The file of a csv or jsonl source; a relative path is relative to the definition."""
        if not isinstance(self.source, FileSourceSpec):
            raise ConfigError(
                f"connector {self.connector.id}: a {self.source.type} source has no file path"
            )
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
        lines = [f"  {_describe_error(e)}" for e in exc.errors()]
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


def _describe_error(error: ErrorDetails) -> str:
    """``section.key: message``, without the source type pydantic puts in the location."""
    loc = list(error["loc"])
    if len(loc) >= 2 and loc[0] == "source" and loc[1] in SOURCE_TYPES:
        del loc[1]  # ("source", "sql", "url_env") -> source.url_env
    message = error["msg"]
    if loc == ["source"] and error["type"] == "union_tag_invalid":
        loc = ["source", "type"]
        known = ", ".join(repr(t) for t in SOURCE_TYPES)
        message = f"unknown source type {error['ctx']['tag']!r}; use one of {known}"
    return f"{'.'.join(str(p) for p in loc)}: {message}"


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
    problems += [
        f"fields.{spec.name}: {standard.name} requires it unless the definition declares it "
        f'optional; map it (from = "<column>"), or, if the export may lack it, add '
        f"optional = true to [fields.{spec.name}] (such records link only probabilistically)"
        for spec in standard.fields
        if spec.optional_declared and spec.name not in definition.fields
    ]
    for name, mapping in definition.fields.items():
        if name not in known:
            continue
        spec = standard.field(name)
        if mapping.optional and spec.required:
            problems.append(
                f"fields.{name}: optional = true, but {standard.name}.{name} is required "
                "(it has no default and is not nullable)"
            )
        problems += [f"fields.{name}: {p}" for p in _transform_fits(spec, mapping)]
    return problems


def _transform_fits(spec: FieldSpec, mapping: FieldMapping) -> list[str]:
    """Why a mapping's value transforms do not fit the field's type, if they do not."""
    base = base_type(spec.avro_type)
    problems: list[str] = []
    is_date = isinstance(base, dict) and base.get("logicalType") == "date"
    if mapping.scale is not None and base not in ("int", "long", "float", "double"):
        problems.append(f"scale applies to numbers, and {spec.name} is {base}")
    if mapping.split_name is not None and base != "string":
        problems.append(f"split_name gives text, and {spec.name} is {base}")
    if mapping.date_formats is not None and not is_date:
        problems.append(f"date_formats applies to dates, and {spec.name} is {base}")
    return problems
