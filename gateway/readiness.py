"""``/readyz``: whether this gateway process can serve, beside ``/healthz`` (alive).

Ready when, checked on each call and cheaply (a few small reads, no write):

- **database**: it answers;
- **schema**: it is migrated to the revision this gateway ships (a gateway of a newer
  release against an older schema, or the reverse, is not ready);
- **key store**: the current key-encryption key unwraps under the master key;
- **audit log**: the audit writer takes entries (not stopped) and the log's tip row is
  there to extend.

Otherwise 503 with a problem body (``not_ready``) naming each check that failed. Like
``/healthz`` it takes no credential, discloses nothing and is not audited: a load
balancer asks every few seconds.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from sqlalchemy import select, text

from exchange.core.db import schema_heads, schema_revisions
from exchange.core.errors import NotReadyError
from exchange.core.models import AuditTip
from exchange.security.keystore import LocalKeyStore
from gateway.deps import AppState

log = logging.getLogger(__name__)


def _failed(what: str, exc: BaseException) -> str:
    """The check ``what`` failed with ``exc``: the details go to the log, never to the
    unauthenticated caller (a database error names hosts and ports)."""
    log.warning("not ready: %s: %s", what, exc)
    return f"{what}: unavailable (details in the gateway's log)"


def not_ready(state: AppState, heads: frozenset[str]) -> list[str]:
    """What is not ready in ``state`` (empty when ready); ``heads``: the schema's revisions."""
    problems: list[str] = []
    try:
        with state.sessions() as session:
            session.execute(text("SELECT 1"))
            found = schema_revisions(session)
            if found != heads:
                problems.append(
                    f"schema: the database is at {', '.join(sorted(found)) or 'no revision'}, "
                    f"this gateway needs {', '.join(sorted(heads))} (run `exchange up` or migrate)"
                )
            elif session.scalar(select(AuditTip.size).where(AuditTip.id == 1)) is None:
                problems.append("audit log: the log has no tip row to extend")
    except Exception as exc:
        return [_failed("database", exc)]
    if state.audit_writer.closed:
        problems.append("audit log: the audit writer is stopped (shutting down)")
    if isinstance(state.keystore, LocalKeyStore):
        try:
            state.keystore.check()
        except Exception as exc:
            problems.append(_failed("key store", exc))
    return problems


def install(app: FastAPI) -> None:
    """Serve ``GET /readyz``."""
    heads = schema_heads()

    @app.get("/readyz", tags=["operations"], summary="Readiness")
    def readyz(request: Request) -> dict[str, str]:
        """200 when this process can serve requests; 503 (``not_ready``) naming what is not
        ready: the database, its schema revision, the key store or the audit log."""
        state: AppState = request.app.state.exchange
        problems = not_ready(state, heads)
        if problems:
            raise NotReadyError("not ready: " + "; ".join(problems))
        return {"status": "ready"}
