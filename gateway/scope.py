"""What one caller may see for one stated purpose, at the time of the request.

Built once per request from the caller's grants
(:func:`exchange.access.catalogue.grants_of`, through the gateway's cache
:mod:`exchange.access.catalogue_cache` on the request path); answers, dataset by
dataset and row by row, through :mod:`exchange.access.policy`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from exchange.access import catalogue, policy
from exchange.access.policy import Access, Denial, GrantRule, Mode
from exchange.core.errors import PermissionDeniedError
from exchange.identity.apikeys import Identity
from gateway.deps import AppState
from gateway.views import RecordRow, row_facts


@dataclass
class Scope:
    identity: Identity
    purpose: str
    at: datetime
    grants: list[GrantRule]
    _cache: dict[str, Access | Denial] = field(default_factory=dict)

    @classmethod
    def of(cls, session: Session, identity: Identity, purpose: str, at: datetime) -> Scope:
        grants = catalogue.grants_of(session, identity.department, identity.role)
        return cls(identity, purpose, at, grants)

    @classmethod
    def cached(
        cls, state: AppState, session: Session, identity: Identity, purpose: str, at: datetime
    ) -> Scope:
        """As :meth:`of`, from the gateway's catalogue cache (see
        :mod:`exchange.access.catalogue_cache` for how soon a change applies)."""
        return cls(
            identity,
            purpose,
            at,
            state.catalogue.grants_of(session, identity.department, identity.role),
        )

    def access(self, dataset: str) -> Access | Denial:
        found = self._cache.get(dataset)
        if found is None:
            found = self._cache[dataset] = policy.access(
                self.grants,
                department=self.identity.department,
                role=self.identity.role,
                dataset=dataset,
                purpose=self.purpose,
                at=self.at,
            )
        return found

    def require_any(self, datasets: Iterable[str]) -> None:
        """403 unless the caller has a grant for one of ``datasets`` (checked in order, up
        to the first that is granted)."""
        if not any(isinstance(self.access(d), Access) for d in datasets):
            raise PermissionDeniedError(
                f"no grant gives {self.identity.department}/{self.identity.role} any dataset "
                f"for the purpose {self.purpose!r}"
            )

    def require(self, dataset: str) -> Access:
        found = self.access(dataset)
        if isinstance(found, Denial):
            raise PermissionDeniedError(found.reason)
        return found

    def fields_for(self, row: RecordRow, joined: str | None = None) -> dict[str, Mode] | None:
        """The row's visible fields, or None if no grant admits it (``joined``: how the row
        joined the entity of the answer, see exchange.registry.joins)."""
        found = self.access(row.dataset)
        if isinstance(found, Denial):
            return None
        return found.fields_for(row_facts(row, joined))
