"""The resource catalogue: each dataset's owner department and how it is shared.

Departments publish a catalogue of their datasets: an entry names the dataset's
owner department, a title and description, the fields (from the dataset's standard:
type, sensitivity, identifier, encrypted, masking style; plus the owner's note on
each), how often new data comes (``update_frequency``), the sharing type and a
contact. The sharing type decides what a sharing request for the dataset becomes
(:mod:`exchange.access.sharing`): ``unconditional`` (granted on request),
``conditional`` (the owner's data steward decides) or ``not_shared`` (cannot be
requested).

Who may change an entry: the central administrator (role ``admin``, or an operator
at the command line) registers a dataset with its owner and may change anything;
the owner's department administrator (``department_admin``) edits its own
department's entries but cannot register one or change its owner.

Every function runs in the caller's transaction; the caller audits the change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.access import catalogue
from exchange.core.errors import NotFoundError, PermissionDeniedError, ValidationError
from exchange.core.models import CatalogueResource, Department

FREQUENCIES = ("realtime", "daily", "weekly", "monthly", "quarterly", "yearly")
SHARING_TYPES = ("unconditional", "conditional", "not_shared")
UNCONDITIONAL, CONDITIONAL, NOT_SHARED = SHARING_TYPES
# Who may register datasets and change any entry: the central administrator, or an
# operator at the command line (exchange catalogue resource set).
CENTRAL = frozenset({"admin", "operator"})
DEPARTMENT_ADMIN = "department_admin"
_TEXT_MAX = {"title": 255, "contact": 255, "description": 10_000}
_NOTE_MAX = 2_000


@dataclass(frozen=True)
class Editor:
    """Who changes an entry: their name (for ``updated_by``), department and role."""

    actor: str
    department: str
    role: str


@dataclass(frozen=True)
class ResourceChange:
    """What a caller sets on an entry; None leaves a value as it is. ``field_notes`` adds or
    replaces a note per field (an empty text removes the field's note)."""

    owner: str | None = None
    title: str | None = None
    description: str | None = None
    frequency: str | None = None
    sharing: str | None = None
    contact: str | None = None
    field_notes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ResourceField:
    name: str
    type: str
    sensitivity: str
    identifier: bool
    encrypted: bool
    mask: str
    note: str


@dataclass(frozen=True)
class Resource:
    """An entry as the catalogue shows it: the stored row and the standard's fields."""

    dataset: str
    owner_department: str
    title: str
    description: str
    update_frequency: str
    sharing_type: str
    contact: str
    fields: tuple[ResourceField, ...]
    updated_at: datetime
    updated_by: str


def view(row: CatalogueResource) -> Resource:
    ds = catalogue.dataset(row.dataset)
    notes = row.field_notes or {}
    return Resource(
        dataset=row.dataset,
        owner_department=row.owner_department,
        title=row.title,
        description=row.description,
        update_frequency=row.update_frequency,
        sharing_type=row.sharing_type,
        contact=row.contact,
        fields=tuple(
            ResourceField(
                name=f.name,
                type=f.type,
                sensitivity=f.sensitivity.value,
                identifier=f.identifier,
                encrypted=f.encrypted,
                mask=str(f.mask),
                note=notes.get(f.name, ""),
            )
            for f in ds.fields
        ),
        updated_at=row.updated_at,
        updated_by=row.updated_by,
    )


def list_resources(session: Session) -> list[Resource]:
    """Every entry, by dataset name (the catalogue is public to the exchange's users)."""
    rows = session.scalars(select(CatalogueResource).order_by(CatalogueResource.dataset))
    return [view(r) for r in rows]


def get(session: Session, dataset: str) -> CatalogueResource:
    """The entry of ``dataset``; NotFoundError if the catalogue has none."""
    row = session.get(CatalogueResource, dataset)
    if row is None:
        raise NotFoundError(f"dataset {dataset!r} is not in the resource catalogue")
    return row


def _problems(
    session: Session, dataset: str, change: ResourceChange, existing: CatalogueResource | None
) -> list[tuple[str, str, str]]:
    problems: list[tuple[str, str, str]] = []
    try:
        ds: catalogue.Dataset | None = catalogue.dataset(dataset)
    except ValidationError as exc:
        return list(exc.reasons)
    if change.owner is not None and session.get(Department, change.owner) is None:
        problems.append(("owner", "resource.department_unknown", f"no department {change.owner!r}"))
    if existing is None:
        if change.owner is None:
            problems.append(
                ("owner", "resource.owner_missing", "a new entry names its owner department")
            )
        if not (change.title or "").strip():
            problems.append(("title", "resource.title_missing", "a new entry needs a title"))
        if change.frequency is None:
            problems.append(
                (
                    "frequency",
                    "resource.frequency_missing",
                    "a new entry says how often it is updated: " + ", ".join(FREQUENCIES),
                )
            )
        if change.sharing is None:
            problems.append(
                (
                    "sharing",
                    "resource.sharing_missing",
                    "a new entry says how it is shared: " + ", ".join(SHARING_TYPES),
                )
            )
    elif change.title is not None and not change.title.strip():
        problems.append(("title", "resource.title_missing", "the title cannot be empty"))
    if change.frequency is not None and change.frequency not in FREQUENCIES:
        problems.append(
            (
                "frequency",
                "resource.frequency_invalid",
                f"update frequency {change.frequency!r} is not one of {', '.join(FREQUENCIES)}",
            )
        )
    if change.sharing is not None and change.sharing not in SHARING_TYPES:
        problems.append(
            (
                "sharing",
                "resource.sharing_invalid",
                f"sharing type {change.sharing!r} is not one of {', '.join(SHARING_TYPES)}",
            )
        )
    for name, limit in _TEXT_MAX.items():
        value = getattr(change, name)
        if value is not None and len(value) > limit:
            problems.append((name, "resource.too_long", f"{name} is at most {limit} characters"))
    for name, note in change.field_notes.items():
        if ds is not None and ds.field(name) is None:
            problems.append(
                (
                    f"field_notes.{name}",
                    "resource.field_unknown",
                    f"dataset {dataset!r} has no field {name!r}; its fields: "
                    + ", ".join(f.name for f in ds.fields),
                )
            )
        elif len(note) > _NOTE_MAX:
            problems.append(
                (
                    f"field_notes.{name}",
                    "resource.too_long",
                    f"a field note is at most {_NOTE_MAX} characters",
                )
            )
    return problems


def set_resource(
    session: Session, editor: Editor, dataset: str, change: ResourceChange, *, at: datetime
) -> CatalogueResource:
    """Register ``dataset`` in the catalogue or change its entry, as ``editor`` may.

    PermissionDeniedError: a department administrator registering a dataset, editing
    another department's entry or changing an owner; any other role. ValidationError
    names every problem (an unknown dataset, department or field, a frequency or
    sharing type that is not one of the known ones, a missing title)."""
    existing = session.get(CatalogueResource, dataset)
    if editor.role not in CENTRAL:
        if editor.role != DEPARTMENT_ADMIN:
            raise PermissionDeniedError(
                f"role {editor.role!r} may not change the resource catalogue; a department "
                "administrator edits its own department's entries"
            )
        if existing is None:
            raise PermissionDeniedError(
                f"dataset {dataset!r} is not in the resource catalogue; the central "
                "administrator registers a dataset with its owner"
            )
        if existing.owner_department != editor.department:
            raise PermissionDeniedError(
                f"dataset {dataset!r} belongs to department {existing.owner_department!r}; "
                "a department administrator edits its own department's entries only"
            )
        if change.owner is not None and change.owner != existing.owner_department:
            raise PermissionDeniedError(
                "a department administrator cannot change a dataset's owner; ask the "
                "central administrator"
            )
    problems = _problems(session, dataset, change, existing)
    if problems:
        raise ValidationError(problems)
    row = existing
    if row is None:
        assert change.owner is not None
        assert change.title is not None
        assert change.frequency is not None
        assert change.sharing is not None
        row = CatalogueResource(
            dataset=dataset,
            owner_department=change.owner,
            title=change.title.strip(),
            description="",
            update_frequency=change.frequency,
            sharing_type=change.sharing,
            contact="",
            field_notes={},
            created_at=at,
        )
        session.add(row)
    if change.owner is not None:
        row.owner_department = change.owner
    if change.title is not None:
        row.title = change.title.strip()
    if change.description is not None:
        row.description = change.description
    if change.frequency is not None:
        row.update_frequency = change.frequency
    if change.sharing is not None:
        row.sharing_type = change.sharing
    if change.contact is not None:
        row.contact = change.contact
    if change.field_notes:
        notes = dict(row.field_notes or {})
        for name, note in change.field_notes.items():
            if note.strip():
                notes[name] = note
            else:
                notes.pop(name, None)
        row.field_notes = notes  # a new dict: JSON columns see only reassignment
    row.updated_at, row.updated_by = at, editor.actor
    session.flush()
    return row


def summary(row: CatalogueResource) -> str:
    """One line naming an entry, for the audit log (no personal data in an entry)."""
    return (
        f"resource {row.dataset}: owner {row.owner_department}, {row.sharing_type}, "
        f"updated {row.update_frequency}"
    )


__all__ = [
    "CONDITIONAL",
    "FREQUENCIES",
    "NOT_SHARED",
    "SHARING_TYPES",
    "UNCONDITIONAL",
    "Editor",
    "Resource",
    "ResourceChange",
    "ResourceField",
    "get",
    "list_resources",
    "set_resource",
    "summary",
    "view",
]
