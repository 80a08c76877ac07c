"""Versioned linkage models in the registry database, and which version of each kind links.

A kind (``person``, ``organisation``) has numbered versions: 0 is the shipped model
(:func:`exchange.registry.linkage.default_model`, never stored), 1, 2, ... are models
stored here (:func:`add`), never changed once stored. Exactly one version of each
kind is *active*: the one in ``linkage_active_models``, or 0 when that table holds
no row for the kind. Everything that decides links (the registry builder, reviewers'
decisions and splits, the gateway's search) asks :func:`active_models`.

A stored active model that no longer fits the comparators (a level was added since
it was fitted) is not used: linkage falls back to the shipped model and logs a
warning, rather than stopping the builder; ``model show`` and ``model use`` say so
(:class:`LinkageModelError`).

Every function runs in the caller's transaction. Neither table is emptied by a
rebuild (:mod:`exchange.registry.rebuild` clears only the record tables).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from exchange.core.db import utcnow
from exchange.core.errors import LinkageModelError, NotFoundError, ValidationError
from exchange.core.models import ActiveLinkageModel, LinkageModel
from exchange.registry.linkage.model import Model, default_model

KINDS: Final = ("person", "organisation")
SHIPPED: Final = 0  # the version number of the shipped model
log = logging.getLogger(__name__)
# Parsed stored models by their JSON (not by row id: a process may open several
# databases), so the gateway and the builder parse each once. A handful at most.
_parsed: dict[str, Model] = {}


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """One version of a kind's model, as ``model list`` and ``model show`` present it.

    ``model`` is None when a stored model no longer fits the comparators (``problem``
    then says why)."""

    kind: str
    version: int
    model: Model | None
    description: str
    created_by: str | None  # None: the shipped model
    created_at: datetime | None
    active: bool
    problem: str | None = None

    @property
    def shipped(self) -> bool:
        return self.version == SHIPPED


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValidationError(
            [("kind", "model.kind_unknown", f"the kind must be one of {', '.join(KINDS)}")]
        )
    return kind


def _parse(row: LinkageModel) -> Model:
    """The stored model of ``row``; LinkageModelError if it does not fit the comparators."""
    found = _parsed.get(row.model)
    if found is None:
        try:
            found = Model.from_json(row.model)
        except (ValueError, KeyError, TypeError) as exc:
            raise LinkageModelError(
                f"{row.kind} model version {row.version} does not fit the current "
                f"comparators: {exc}"
            ) from exc
        _parsed[row.model] = found
    return found


def add(session: Session, model: Model, *, created_by: str, description: str = "") -> int:
    """Store ``model`` as the next version of its kind (not active); returns its number."""
    kind = check_kind(model.kind)
    # The versions of a kind are few: a unique constraint on (kind, version) refuses the
    # second of two concurrent fits, whose transaction then fails and can be run again.
    last = session.scalar(select(func.max(LinkageModel.version)).where(LinkageModel.kind == kind))
    version = int(last or 0) + 1
    session.add(
        LinkageModel(
            kind=kind,
            version=version,
            model=model.to_json(),
            description=description or model.source,
            created_by=created_by,
            created_at=utcnow(),
        )
    )
    session.flush()
    return version


def active_version(session: Session, kind: str) -> int:
    """The version of ``kind`` that links (0: the shipped model)."""
    found = session.get(ActiveLinkageModel, check_kind(kind))
    return SHIPPED if found is None else found.version


def active_versions(session: Session) -> dict[str, int]:
    """The active version of every kind: cheap, for a builder checking for a switch."""
    chosen = dict(
        session.execute(select(ActiveLinkageModel.kind, ActiveLinkageModel.version)).all()
    )
    return {kind: int(chosen.get(kind, SHIPPED)) for kind in KINDS}


def _row(session: Session, kind: str, version: int) -> LinkageModel | None:
    return session.scalar(
        select(LinkageModel).where(LinkageModel.kind == kind, LinkageModel.version == version)
    )


def model_of(session: Session, kind: str, version: int) -> Model:
    """The model of a version (0: shipped); NotFoundError or LinkageModelError."""
    check_kind(kind)
    if version == SHIPPED:
        return default_model(kind)
    row = _row(session, kind, version)
    if row is None:
        raise NotFoundError(f"no {kind} model version {version} (see `registry model list`)")
    return _parse(row)


def active_model(session: Session, kind: str) -> Model:
    """The model that links ``kind`` now (the shipped one if the active one cannot be used)."""
    version = active_version(session, kind)
    try:
        return model_of(session, kind, version)
    except (NotFoundError, LinkageModelError) as exc:
        log.warning("the active %s model cannot be used (%s); using the shipped one", kind, exc)
        return default_model(kind)


def active_models(session: Session) -> dict[str, Model]:
    """The model that links each kind, for ``EntityResolver(models)``."""
    return {kind: active_model(session, kind) for kind in KINDS}


def versions(session: Session, kind: str) -> list[ModelVersion]:
    """Every version of ``kind``, the shipped one (0) first."""
    active = active_version(session, kind)
    shipped = default_model(kind)
    found = [ModelVersion(kind, SHIPPED, shipped, "", None, None, active == SHIPPED)]
    rows = session.scalars(
        select(LinkageModel).where(LinkageModel.kind == kind).order_by(LinkageModel.version)
    )
    for row in rows:
        model: Model | None
        problem = None
        try:
            model = _parse(row)
        except LinkageModelError as exc:
            model, problem = None, exc.message
        found.append(
            ModelVersion(
                kind,
                row.version,
                model,
                row.description,
                row.created_by,
                row.created_at,
                row.version == active,
                problem,
            )
        )
    return found


def version_info(session: Session, kind: str, version: int | None = None) -> ModelVersion:
    """One version of ``kind`` (default: the active one); NotFoundError if there is none."""
    wanted = active_version(session, kind) if version is None else version
    for found in versions(session, kind):
        if found.version == wanted:
            return found
    raise NotFoundError(f"no {kind} model version {wanted} (see `registry model list`)")


def activate(session: Session, kind: str, version: int, *, by: str) -> int:
    """Make ``version`` the one that links ``kind``; returns the version active before.

    The version must exist and fit the comparators (NotFoundError, LinkageModelError).
    Relinking the registry's records is the caller's next step
    (:func:`exchange.registry.relink.relink`).
    """
    model_of(session, kind, version)  # exists and is usable
    # Read under a row lock (PostgreSQL) so two switches of one kind do not interleave.
    current = session.scalar(
        select(ActiveLinkageModel).where(ActiveLinkageModel.kind == kind).with_for_update()
    )
    before = SHIPPED if current is None else current.version
    if current is None:
        session.add(
            ActiveLinkageModel(kind=kind, version=version, activated_by=by, activated_at=utcnow())
        )
    else:
        current.version, current.activated_by, current.activated_at = version, by, utcnow()
    session.flush()
    return before


__all__ = [
    "KINDS",
    "SHIPPED",
    "ModelVersion",
    "activate",
    "active_model",
    "active_models",
    "active_version",
    "active_versions",
    "add",
    "check_kind",
    "model_of",
    "version_info",
    "versions",
]
