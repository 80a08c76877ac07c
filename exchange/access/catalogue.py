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
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from exchange.access import disclosure
from exchange.access.masking import MaskKind, MaskStyle, mask_kind, style_of
from exchange.access.policy import (
    CONSTRAINTS,
    DEPARTMENT,
    DIVISION_PREFIX,
    LINKED_BY,
    LINKED_BY_VALUES,
    GrantRule,
    Mode,
)
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
ROLES = ("caseworker", "auditor", "publisher", "admin", "department_admin", "data_steward")
# Roles a grant may name. DESIGN.md, "Who uses it": a publisher must never read other
# departments' data through its publisher identity, an auditor never the records beyond
# what the log holds, and an administrator manages the catalogue without reading data. A
# department administrator (requests access for its department, edits its resource entries)
# and a data steward (decides on requests for its department's datasets) read no records:
# exchange.access.sharing.
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


# What a case reference (and a purpose) must never look like: a resident identity number
# (18 characters, or the old 15 digits, grouped or not) or a phone number (a mainland
# mobile, with or without +86, or a landline with its area code), checked on the
# NFKC form (full-width digits are digits). A case reference names a case, never a person.
_RESIDENT_ID_LIKE = re.compile(
    r"(?<![0-9])(?:[0-9]{6}[ -]?[0-9]{8}[ -]?[0-9]{3}[0-9Xx]|[0-9]{15})(?![0-9])"
)
_PHONE_LIKE = re.compile(
    r"(?<![0-9])(?:(?:\+?86[ -]?)?1[3-9][0-9][ -]?[0-9]{4}[ -]?[0-9]{4}"
    r"|0[0-9]{2,3}[ -]?[0-9]{7,8})(?![0-9])"
)
_LONG_NUMBER = re.compile(r"[0-9]{11,}")
CASE_REF_MAX = 200


def looks_personal(value: str) -> str | None:
    """What personal identifier ``value`` looks like or holds ("an identity number", "a
    phone number"), or None."""
    text = unicodedata.normalize("NFKC", value)
    if _RESIDENT_ID_LIKE.search(text):
        return "an identity number"
    if _PHONE_LIKE.search(text):
        return "a phone number"
    if _LONG_NUMBER.search(text):
        return "a long number (an identifier)"
    return None


def is_canonical_code(value: str | None) -> bool:
    """Whether ``value`` has the form of a purpose code (see :func:`add_purpose`) and holds
    nothing that looks like an identifier: the test a stated purpose passes before it is
    written in an audit entry."""
    return value is not None and bool(_CODE.fullmatch(value)) and looks_personal(value) is None


def case_ref_problem(value: str | None) -> tuple[str, str] | None:
    """The (reason code, message) for which a case reference is refused whatever the
    purpose, or None. The message never repeats the value."""
    if value is None:
        return None
    if value != value.strip() or any(unicodedata.category(c).startswith("C") for c in value):
        return (
            "case_ref.not_canonical",
            "the case reference has surrounding white space or control characters; "
            "send it exactly as the case file names it",
        )
    if not value:
        return None
    if len(value) > CASE_REF_MAX:
        return ("case_ref.too_long", f"a case reference is at most {CASE_REF_MAX} characters")
    what = looks_personal(value)
    if what is not None:
        return (
            "case_ref.personal_data",
            f"the case reference looks like or holds {what}; "
            "name the case, never the person (it is stored in the audit log)",
        )
    return None


def check_case_ref(purpose: Purpose | PurposeRule, value: str | None) -> None:
    """ValidationError if ``value`` is not a case reference a request stating ``purpose``
    may give: one that looks like an identity or phone number, none where the purpose
    requires one, or one that does not match the purpose's pattern."""
    problem = case_ref_problem(value)
    if problem is not None:
        raise ValidationError([("case_ref", *problem)])
    if not value:
        if purpose.case_ref_required:
            raise ValidationError(
                [
                    (
                        "case_ref",
                        "case_ref.required",
                        f"purpose {purpose.code!r} requires a case reference (case_ref)"
                        + (
                            f" matching {purpose.case_ref_pattern}"
                            if purpose.case_ref_pattern
                            else ""
                        ),
                    )
                ]
            )
        return
    if purpose.case_ref_pattern and re.fullmatch(purpose.case_ref_pattern, value) is None:
        raise ValidationError(
            [
                (
                    "case_ref",
                    "case_ref.pattern_mismatch",
                    f"the case reference does not match the pattern of purpose "
                    f"{purpose.code!r}: {purpose.case_ref_pattern}",
                )
            ]
        )


@dataclass(frozen=True)
class PurposeRule:
    """What a request stating a purpose must meet (the cached form of a Purpose row)."""

    code: str
    active: bool
    case_ref_required: bool
    case_ref_pattern: str | None


def _pattern_problems(pattern: str | None) -> list[tuple[str, str, str]]:
    if pattern is None:
        return []
    try:
        re.compile(pattern)
    except re.error as exc:
        return [
            (
                "case_ref_pattern",
                "purpose.case_ref_pattern_invalid",
                f"not a regular expression: {exc}",
            )
        ]
    if not pattern or len(pattern) > 200:
        return [
            (
                "case_ref_pattern",
                "purpose.case_ref_pattern_invalid",
                "a case reference pattern is 1-200 characters",
            )
        ]
    return []


def add_purpose(
    session: Session,
    code: str,
    title: str,
    legal_basis: str | None = None,
    *,
    case_ref_required: bool = False,
    case_ref_pattern: str | None = None,
) -> Purpose:
    problems = []
    if not _CODE.fullmatch(code) or looks_personal(code) is not None:
        problems.append(
            (
                "code",
                "purpose.code_invalid",
                f"purpose code {code!r} must be 2-100 characters: lower-case letters, digits, "
                "'.', '_' or '-', starting with a letter or digit, and not look like an "
                "identity or phone number",
            )
        )
    if not title.strip():
        problems.append(("title", "purpose.title_missing", "a purpose needs a title"))
    problems.extend(_pattern_problems(case_ref_pattern))
    if problems:
        raise ValidationError(problems)
    if session.get(Purpose, code) is not None:
        raise ConflictError(f"purpose {code!r} already exists")
    purpose = Purpose(
        code=code,
        title=title.strip(),
        legal_basis=legal_basis,
        active=True,
        case_ref_required=case_ref_required,
        case_ref_pattern=case_ref_pattern,
    )
    session.add(purpose)
    session.flush()
    return purpose


def set_case_ref_rule(
    session: Session, code: str, *, required: bool, pattern: str | None
) -> Purpose:
    """Say whether requests stating purpose ``code`` must give a case reference, and the
    pattern it must match (None: any that is not an identity or phone number)."""
    problems = _pattern_problems(pattern)
    if problems:
        raise ValidationError(problems)
    purpose = session.get(Purpose, code)
    if purpose is None:
        raise NotFoundError(f"no purpose {code!r}")
    purpose.case_ref_required = required
    purpose.case_ref_pattern = pattern
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


def purpose_refusal(stated: str | None, known: Mapping[str, bool]) -> ValidationError | None:
    """Why a request may not state ``stated`` as its purpose, or None if it may.

    ``known`` maps each purpose code of the catalogue to whether it is active. Only a
    code exactly as the catalogue holds it is accepted: a code with white space, a
    no-break or ideographic space, or a control character around or in it is refused,
    never tidied, so that every entry names its purpose exactly and an auditor's search
    by purpose finds every access made for it. The message names the stated value only
    if it is a code of the catalogue."""
    if stated is None or not stated.strip():
        return ValidationError(
            [("purpose", "purpose.missing", "state the purpose (legal basis) of the request")]
        )
    active = known.get(stated)
    if active is None:
        tidy = unicodedata.normalize("NFKC", stated).strip()
        if tidy in known or not _CODE.fullmatch(stated):
            return ValidationError(
                [
                    (
                        "purpose",
                        "purpose.not_canonical",
                        "the purpose is not exactly a code of the catalogue: a code has no "
                        "white space (nor no-break, ideographic or other spaces) or control "
                        "characters around or in it; send it exactly as listed",
                    )
                ]
            )
        return ValidationError(
            [("purpose", "purpose.unknown", "the purpose stated is not a code of the catalogue")]
        )
    if not active:
        return ValidationError(
            [("purpose", "purpose.inactive", f"purpose {stated!r} has been deactivated")]
        )
    return None


def active_purpose(session: Session, code: str | None) -> Purpose:
    """The purpose a request states; ValidationError if missing, not exactly a code,
    unknown or inactive."""
    found = session.get(Purpose, code) if code is not None else None
    refusal = purpose_refusal(code, {found.code: found.active} if found is not None else {})
    if refusal is not None:
        raise refusal
    assert found is not None
    return found


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
        elif name == LINKED_BY and value not in LINKED_BY_VALUES:
            problems.append(
                (where, "grant.constraint_invalid", "linked_by is identifier or reviewed")
            )
    if (
        spec.valid_from is not None
        and spec.valid_until is not None
        and spec.valid_until <= spec.valid_from
    ):
        problems.append(
            ("valid_until", "grant.validity_invalid", "valid_until must be after valid_from")
        )
    return problems


def grant_problems(session: Session, spec: GrantSpec) -> list[tuple[str, str, str]]:
    """Every way ``spec`` names something the catalogue does not hold (what :func:`add_grant`
    refuses with a ValidationError), without storing anything: a sharing request is checked
    with it when submitted (:mod:`exchange.access.sharing`)."""
    return _check(session, spec)


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


def _one_at_a_time(session: Session, department: str, role: str) -> None:
    """Wait for any other transaction making a grant for the same grantee: the disclosure
    rule is checked against the grants a transaction sees, and two made at once (two
    stewards approving, two gateway workers) would each miss the other's. On PostgreSQL a
    transaction-scoped advisory lock on the grantee; SQLite lets one writer at a time."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
            {"key": f"exchange.grant:{department}/{role}"},
        )


def add_grant(session: Session, spec: GrantSpec, *, created_by: str, at: datetime) -> Grant:
    """Check ``spec`` against the catalogue and store it; ValidationError lists every problem,
    DisclosureRuleError every way it would break the disclosure rule together with the
    role's other grants (:mod:`exchange.access.disclosure`)."""
    problems = _check(session, spec)
    if problems:
        raise ValidationError(problems)
    _one_at_a_time(session, spec.department.strip(), spec.role)
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
