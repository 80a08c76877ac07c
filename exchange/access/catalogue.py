"""The access catalogue: datasets, purposes and grants.

* Datasets are the shipped standards (``schemas/avro``): their fields, each
  field's sensitivity, whether it is an identifier, whether connectors encrypt
  it, and how it is masked.
* Purposes are the legal bases a request may state; a deactivated purpose
  stays on record (old audit entries name it) but no request may state it and
  no new grant may serve it.
* Grants say what a department's role may see of a dataset for which purposes
  (see :mod:`exchange.access.policy` for how they are applied). A grant is never
  edited or deleted: it is revoked, and a new one added.

Every function runs in the caller's transaction; the caller audits the change.
Invalid input raises :class:`~exchange.core.errors.ValidationError` naming each
problem (field, code, message).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache

from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.access import disclosure
from exchange.access.masking import MaskKind, MaskStyle, mask_kind, style_of
from exchange.access.policy import CONSTRAINTS, DEPARTMENT, DIVISION_PREFIX, GrantRule, Mode
from exchange.core.errors import (
    ConflictError,
    DisclosureRuleError,
    NotFoundError,
    SchemaNotFoundError,
    ValidationError,
)
from exchange.core.models import Grant, Purpose
from schemas.standards import Sensitivity, available, load_standard

# The users' roles (exchange.core.models.User).
ROLES = ("caseworker", "auditor", "publisher", "admin")
# Roles a grant may name. DESIGN.md, "Who uses it": a publisher must never read other
# departments' data through its publisher identity, an auditor never the records beyond
# what the log holds, and an administrator manages the catalogue without reading data.
GRANTEE_ROLES = ("caseworker",)
_CODE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,99}$")
_DIVISION_PREFIX = re.compile(r"^[0-9]{2,6}$")


@dataclass(frozen=True)
class DatasetField:
    name: str
    type: str
    sensitivity: Sensitivity
    identifier: bool
    encrypted: bool
    kind: MaskKind
    mask: MaskStyle  # the style the standard declares (exchange.access.masking)
    domain: str  # what a token of the field is keyed on: its validator, else dataset.field


@dataclass(frozen=True)
class Dataset:
    """A dataset of the catalogue: one standard and what grants may name of it."""

    name: str
    version: int
    topic: str
    fields: tuple[DatasetField, ...]
    division_field: str | None  # what the division_prefix constraint looks at

    def field(self, name: str) -> DatasetField | None:
        return next((f for f in self.fields if f.name == name), None)

    @property
    def mask_styles(self) -> dict[str, MaskStyle]:
        return {f.name: f.mask for f in self.fields}

    @property
    def token_domains(self) -> dict[str, str]:
        return {f.name: f.domain for f in self.fields}


def _type_name(avro_type: object) -> str:
    if isinstance(avro_type, list):
        return " | ".join(_type_name(t) for t in avro_type)
    if isinstance(avro_type, dict):
        return str(avro_type.get("logicalType") or avro_type.get("type"))
    return str(avro_type)


@cache
def dataset(name: str) -> Dataset:
    """The dataset of a shipped standard; ValidationError if there is none."""
    try:
        standard = load_standard(name)
    except SchemaNotFoundError as exc:
        raise ValidationError([("dataset", "dataset.unknown", exc.message)]) from exc
    fields = tuple(
        DatasetField(
            name=f.name,
            type=_type_name(f.avro_type),
            sensitivity=f.sensitivity,
            identifier=f.identifier,
            encrypted=f.sensitivity is Sensitivity.SENSITIVE,
            kind=mask_kind(f),
            mask=style_of(f),
            domain=standard.blind_index_domain(f),
        )
        for f in standard.fields
    )
    division = next((f.name for f in standard.fields if f.validator == "cn.division_code"), None)
    return Dataset(standard.dataset, standard.version, standard.topic, fields, division)


def available_datasets() -> list[str]:
    """Names of the datasets (the shipped standards, read once a process)."""
    return list(_available())


@cache
def _available() -> tuple[str, ...]:
    return tuple(available())


def datasets() -> list[Dataset]:
    return [dataset(name) for name in available()]


# ---- purposes ------------------------------------------------------------------------------


def add_purpose(session: Session, code: str, title: str, legal_basis: str | None = None) -> Purpose:
    problems = []
    if not _CODE.match(code):
        problems.append(
            (
                "code",
                "purpose.code_invalid",
                f"purpose code {code!r} must be 2-100 characters: lower-case letters, digits, "
                "'.', '_' or '-', starting with a letter or digit",
            )
        )
    if not title.strip():
        problems.append(("title", "purpose.title_missing", "a purpose needs a title"))
    if problems:
        raise ValidationError(problems)
    if session.get(Purpose, code) is not None:
        raise ConflictError(f"purpose {code!r} already exists")
    purpose = Purpose(code=code, title=title.strip(), legal_basis=legal_basis, active=True)
    session.add(purpose)
    session.flush()
    return purpose


def list_purposes(session: Session, *, include_inactive: bool = True) -> list[Purpose]:
    query = select(Purpose).order_by(Purpose.code)
    if not include_inactive:
        query = query.where(Purpose.active.is_(True))
    return list(session.scalars(query))


def deactivate_purpose(session: Session, code: str) -> Purpose:
    purpose = session.get(Purpose, code)
    if purpose is None:
        raise NotFoundError(f"no purpose {code!r}")
    purpose.active = False
    session.flush()
    return purpose


def active_purpose(session: Session, code: str | None) -> Purpose:
    """The purpose a request states; ValidationError if missing, unknown or inactive."""
    if code is None or not code.strip():
        raise ValidationError(
            [("purpose", "purpose.missing", "state the purpose (legal basis) of the request")]
        )
    purpose = session.get(Purpose, code.strip())
    if purpose is None:
        raise ValidationError(
            [("purpose", "purpose.unknown", f"{code!r} is not a purpose of the catalogue")]
        )
    if not purpose.active:
        raise ValidationError(
            [("purpose", "purpose.inactive", f"purpose {code!r} has been deactivated")]
        )
    return purpose


# ---- grants --------------------------------------------------------------------------------


@dataclass(frozen=True)
class GrantSpec:
    """What an administrator asks for; :func:`add_grant` checks it against the catalogue."""

    department: str
    role: str
    dataset: str
    fields: Mapping[str, str]
    purposes: Sequence[str]
    row_constraints: Mapping[str, str]
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    note: str | None = None


def _check(session: Session, spec: GrantSpec) -> list[tuple[str, str, str]]:
    problems: list[tuple[str, str, str]] = []
    if not spec.department.strip():
        problems.append(("department", "grant.department_missing", "name the department"))
    if spec.role not in ROLES:
        problems.append(
            ("role", "grant.role_unknown", f"role {spec.role!r} is not one of {', '.join(ROLES)}")
        )
    elif spec.role not in GRANTEE_ROLES:
        problems.append(
            (
                "role",
                "grant.role_not_grantee",
                f"role {spec.role!r} never reads records; grants are for "
                + ", ".join(GRANTEE_ROLES),
            )
        )
    try:
        ds: Dataset | None = dataset(spec.dataset)
    except ValidationError as exc:
        problems.extend(exc.reasons)
        ds = None
    if not spec.fields:
        problems.append(("fields", "grant.fields_missing", "a grant names at least one field"))
    for name, mode in spec.fields.items():
        if ds is not None and ds.field(name) is None:
            problems.append(
                (
                    f"fields.{name}",
                    "grant.field_unknown",
                    f"dataset {ds.name!r} has no field {name!r}; its fields: "
                    + ", ".join(f.name for f in ds.fields),
                )
            )
        if mode not in (Mode.FULL.value, Mode.MASKED.value):
            problems.append(
                (f"fields.{name}", "grant.mode_invalid", f"mode {mode!r}: use full or masked")
            )
    if not spec.purposes:
        problems.append(("purposes", "grant.purposes_missing", "a grant serves a purpose"))
    for code in spec.purposes:
        purpose = session.get(Purpose, code)
        if purpose is None:
            problems.append(("purposes", "grant.purpose_unknown", f"no purpose {code!r}"))
        elif not purpose.active:
            problems.append(
                ("purposes", "grant.purpose_inactive", f"purpose {code!r} is deactivated")
            )
    for name, value in spec.row_constraints.items():
        where = f"row_constraints.{name}"
        if name not in CONSTRAINTS:
            problems.append(
                (
                    where,
                    "grant.constraint_unknown",
                    f"unknown row constraint {name!r}; known: {', '.join(sorted(CONSTRAINTS))}",
                )
            )
        elif name == DIVISION_PREFIX:
            if not isinstance(value, str) or not _DIVISION_PREFIX.match(value):
                problems.append(
                    (where, "grant.constraint_invalid", "division_prefix is 2 to 6 digits")
                )
            elif ds is not None and ds.division_field is None:
                problems.append(
                    (
                        where,
                        "grant.constraint_invalid",
                        f"dataset {ds.name!r} has no division code field",
                    )
                )
        elif name == DEPARTMENT and (not isinstance(value, str) or not value.strip()):
            problems.append((where, "grant.constraint_invalid", "department is a department code"))
    if (
        spec.valid_from is not None
        and spec.valid_until is not None
        and spec.valid_until <= spec.valid_from
    ):
        problems.append(
            ("valid_until", "grant.validity_invalid", "valid_until must be after valid_from")
        )
    return problems


def _disclosure(session: Session, spec: GrantSpec) -> list[tuple[str, str, str]]:
    """The disclosure rule over ``spec`` and the role's unrevoked grants, purpose by purpose."""
    existing = grants_of(session, spec.department.strip(), spec.role)
    proposed = GrantRule(
        id=0,
        department=spec.department.strip(),
        role=spec.role,
        dataset=spec.dataset,
        fields={k: Mode(v) for k, v in spec.fields.items()},
        purposes=frozenset(spec.purposes),
        constraints={k: str(v) for k, v in spec.row_constraints.items()},
    )
    problems: list[tuple[str, str, str]] = []
    for purpose in sorted(set(spec.purposes)):
        together = [g for g in existing if purpose in g.purposes] + [proposed]
        for breach in disclosure.breaches(together):
            where = f"fields.{breach.field}" if breach.dataset == spec.dataset else breach.dataset
            problem = (where, breach.code, f"for {purpose!r}: {breach.message}")
            if problem not in problems:
                problems.append(problem)
    return problems


def add_grant(session: Session, spec: GrantSpec, *, created_by: str, at: datetime) -> Grant:
    """Check ``spec`` against the catalogue and store it; ValidationError lists every problem,
    DisclosureRuleError every way it would break the disclosure rule together with the
    role's other grants (:mod:`exchange.access.disclosure`)."""
    problems = _check(session, spec)
    if problems:
        raise ValidationError(problems)
    refused = _disclosure(session, spec)
    if refused:
        raise DisclosureRuleError(refused)
    valid_from = spec.valid_from or at
    if spec.valid_until is not None and spec.valid_until <= valid_from:
        raise ValidationError(
            [("valid_until", "grant.validity_invalid", "valid_until must be after valid_from")]
        )
    grant = Grant(
        grantee_department=spec.department.strip(),
        grantee_role=spec.role,
        dataset=spec.dataset,
        fields={k: str(v) for k, v in spec.fields.items()},
        purposes=sorted(set(spec.purposes)),
        row_constraints=dict(spec.row_constraints),
        valid_from=valid_from,
        valid_until=spec.valid_until,
        note=spec.note,
        created_at=at,
        created_by=created_by,
    )
    session.add(grant)
    session.flush()
    return grant


def list_grants(session: Session, *, include_revoked: bool = False) -> list[Grant]:
    query = select(Grant).order_by(Grant.id)
    if not include_revoked:
        query = query.where(Grant.revoked_at.is_(None))
    return list(session.scalars(query))


def revoke_grant(session: Session, grant_id: int, *, by: str, at: datetime) -> Grant:
    grant = session.get(Grant, grant_id)
    if grant is None:
        raise NotFoundError(f"no grant {grant_id}")
    if grant.revoked_at is not None:
        raise ConflictError(f"grant {grant_id} was already revoked by {grant.revoked_by}")
    grant.revoked_at, grant.revoked_by = at, by
    session.flush()
    return grant


def rule(grant: Grant) -> GrantRule:
    """The policy's view of a stored grant."""
    return GrantRule(
        id=grant.id,
        department=grant.grantee_department,
        role=grant.grantee_role,
        dataset=grant.dataset,
        fields={k: Mode(v) for k, v in grant.fields.items()},
        purposes=frozenset(grant.purposes),
        constraints={k: str(v) for k, v in (grant.row_constraints or {}).items()},
        valid_from=grant.valid_from,
        valid_until=grant.valid_until,
        revoked_at=grant.revoked_at,
    )


def grants_of(session: Session, department: str, role: str) -> list[GrantRule]:
    """Every unrevoked grant of a department's role (the policy checks time and purpose)."""
    rows = session.scalars(
        select(Grant).where(
            Grant.grantee_department == department,
            Grant.grantee_role == role,
            Grant.revoked_at.is_(None),
        )
    )
    return [rule(g) for g in rows]


def summary(grant: Grant) -> str:
    """One line naming a grant, for the audit log (no personal data in a grant)."""
    fields = ",".join(
        f"{k}:{v}" if v == Mode.MASKED.value else k for k, v in sorted(grant.fields.items())
    )
    text = (
        f"grant {grant.id}: {grant.grantee_department}/{grant.grantee_role} {grant.dataset} "
        f"[{fields}] for {','.join(grant.purposes)}"
    )
    if grant.row_constraints:
        text += " where " + ",".join(f"{k}={v}" for k, v in sorted(grant.row_constraints.items()))
    return text
