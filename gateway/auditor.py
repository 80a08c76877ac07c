"""The auditor API: search the audit log, answer "who looked at this person", export
evidence, and fetch signed tree heads and the proofs that go with them.

Only the ``auditor`` role may call these routes (checked by
:func:`gateway.access.authorize`), and every call, allowed or denied, is itself
audited (with the status answered) before the answer is sent: an auditor's search for
a person appears in that person's own history. Auditors see the log, never the shared records.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from exchange import audit
from exchange.audit import anomalies, heads, proofs, report, search
from exchange.audit.heads import TreeHead
from exchange.audit.verify import VerifyReport, check
from exchange.core.db import transaction, utcnow
from exchange.core.errors import PermissionDeniedError, TreeHeadNotFoundError, ValidationError
from exchange.core.models import AuditEntry
from exchange.identity.apikeys import Identity
from exchange.security import crypto
from gateway.access import authorize
from gateway.audited import pending, run_audited_read
from gateway.deps import AppState, StateDep, request_context
from gateway.params import SQL_INT_MAX
from gateway.query import person_subject
from schemas.validators import normalise_resident_id

router = APIRouter(prefix="/v1/audit", tags=["audit"])

AUDITORS = frozenset({"auditor"})
_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing, malformed, wrong, revoked or expired API key"},
    403: {"description": "The caller is not an auditor"},
    503: {"description": "The audit log could not be written; nothing was disclosed"},
}


class EntryView(BaseModel):
    """One audit entry, as an auditor sees it (data subjects as blind indexes)."""

    index: int = Field(description="0-based Merkle leaf index; seq - 1.")
    seq: int
    at: datetime
    request_id: str
    actor: str | None
    department: str | None
    role: str | None
    purpose: str | None
    case_ref: str | None
    action: str
    dataset: str | None
    subjects: list[str]
    fields: list[str]
    decision: str
    reason: str
    status: int
    key_id: str | None = Field(
        description="The API key id (or OIDC subject) presented, never its secret; "
        "null on entries written before it was recorded, or when no key was presented."
    )
    leaf_hash: str


class EntryPage(BaseModel):
    entries: list[EntryView]
    next_after: int | None = Field(
        description="Pass as `after` for the next page; null when this was the last."
    )


class PersonAccesses(BaseModel):
    """Who accessed a person's records, when, and for what purpose."""

    subject: str = Field(description="The person's blind index, as the log records it.")
    entries: list[EntryView]
    next_after: int | None


class TreeHeadView(BaseModel):
    """A signed tree head (RFC 6962 style): hashes and signature in hex."""

    tree_size: int
    root: str
    timestamp_ms: int
    key_id: str
    signature: str = Field(description="Ed25519 over the documented head message.")


class InclusionProofView(BaseModel):
    index: int
    leaf_hash: str
    entry: str = Field(description="The canonical encoding; leaf_hash = SHA-256(0x00 || entry).")
    path: list[str]
    head: TreeHeadView


class ConsistencyProofView(BaseModel):
    first: TreeHeadView
    second: TreeHeadView
    path: list[str]


class AnomalyView(BaseModel):
    kind: Literal["volume", "off_hours", "denial_burst", "no_case_ref", "auth_failures"]
    actor: str
    start: datetime
    end: datetime
    count: int
    detail: str
    seqs: list[int] = Field(description="Up to 20 of the entries behind the flag.")


class PublicKeyView(BaseModel):
    key_id: str
    public_key: str = Field(description="Raw Ed25519 public key, hex.")
    pem: str


def _entry(entry: AuditEntry) -> EntryView:
    return EntryView.model_validate(search.public(entry))


def _head(head: TreeHead) -> TreeHeadView:
    return TreeHeadView.model_validate(head.as_dict())


def _page(entries: list[AuditEntry], limit: int) -> tuple[list[EntryView], int | None]:
    return [_entry(e) for e in entries], (entries[-1].seq if len(entries) == limit else None)


Since = Annotated[datetime | None, Query(description="From this time (inclusive).")]
Until = Annotated[datetime | None, Query(description="Until this time (exclusive).")]
After = Annotated[int, Query(ge=0, le=SQL_INT_MAX, description="Return entries with seq > after.")]
Limit = Annotated[int, Query(ge=1, le=search.MAX_PAGE)]


def _filters(
    actor: str | None,
    subject: str | None,
    dataset: str | None,
    purpose: str | None,
    decision: Literal["allow", "deny"] | None,
    since: datetime | None,
    until: datetime | None,
    key_id: str | None = None,
) -> search.Filters:
    return search.Filters(actor, subject, dataset, purpose, decision, since, until, key_id)


@router.get("/entries", response_model=EntryPage, summary="Search the audit log", responses=_ERRORS)
def list_entries(
    request: Request,
    state: StateDep,
    actor: str | None = None,
    subject: Annotated[str | None, Query(description="A data subject's blind index.")] = None,
    dataset: str | None = None,
    purpose: str | None = None,
    decision: Literal["allow", "deny"] | None = None,
    since: Since = None,
    until: Until = None,
    key_id: Annotated[
        str | None,
        Query(max_length=64, description="The API key id presented (refused ones too)."),
    ] = None,
    after: After = 0,
    limit: Limit = 100,
) -> EntryPage:
    filters = _filters(actor, subject, dataset, purpose, decision, since, until, key_id)
    authorize(
        state, request, action="audit.search", roles=AUDITORS, subjects=[subject] if subject else []
    )
    with transaction(state.sessions) as session:
        entries = search.search(session, filters, after=after, limit=limit)
    views, next_after = _page(entries, limit)
    return EntryPage(entries=views, next_after=next_after)


class PersonQuery(BaseModel):
    """Whose accesses to list: the identifier travels in the body, never in the URL."""

    resident_id: str = Field(
        min_length=1, max_length=64, description="The person's resident identity number."
    )


@router.post(
    "/subjects/person",
    response_model=PersonAccesses,
    summary="Who accessed this person's records, when, and for what purpose",
    description="The resident identity number is sent in the body, so that no URL (and no "
    "access log) holds it.",
    responses=_ERRORS,
)
def person_accesses_by_body(
    request: Request,
    state: StateDep,
    body: PersonQuery,
    since: Since = None,
    until: Until = None,
    after: After = 0,
    limit: Limit = 100,
) -> PersonAccesses:
    return person_accesses(request, state, body.resident_id, since, until, after, limit)


# The GET form, with the identifier in the path: development only (gateway.app).
development_router = APIRouter(prefix="/v1/audit", tags=["audit"], include_in_schema=False)


@development_router.get("/subjects/person/{resident_id}", deprecated=True)
def person_accesses(
    request: Request,
    state: StateDep,
    resident_id: Annotated[str, Path(min_length=1, max_length=64)],
    since: Since = None,
    until: Until = None,
    after: After = 0,
    limit: Limit = 100,
) -> PersonAccesses:
    subject = person_subject(state, resident_id)
    filters = search.Filters(subject=subject, since=since, until=until)
    authorize(state, request, action="audit.person", roles=AUDITORS, subjects=[subject])
    with transaction(state.sessions) as session:
        entries = search.search(session, filters, after=after, limit=limit)
    views, next_after = _page(entries, limit)
    return PersonAccesses(subject=subject, entries=views, next_after=next_after)


@router.get(
    "/export",
    summary="Export matching entries as CSV or JSON Lines (streamed)",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/csv": {}, "application/x-ndjson": {}}},
        **_ERRORS,
    },
)
def export(
    request: Request,
    state: StateDep,
    format: Literal["csv", "jsonl"] = "jsonl",
    actor: str | None = None,
    subject: Annotated[str | None, Query(description="A data subject's blind index.")] = None,
    dataset: str | None = None,
    purpose: str | None = None,
    decision: Literal["allow", "deny"] | None = None,
    since: Since = None,
    until: Until = None,
) -> StreamingResponse:
    filters = _filters(actor, subject, dataset, purpose, decision, since, until)
    authorize(
        state, request, action="audit.export", roles=AUDITORS, subjects=[subject] if subject else []
    )
    media = "text/csv; charset=utf-8" if format == "csv" else "application/x-ndjson"
    name = f"audit-log.{format}"
    return StreamingResponse(
        _stream(state, filters, format),
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _stream(state: AppState, filters: search.Filters, fmt: str) -> Iterator[str]:
    with state.sessions() as session:
        yield from search.export(search.iter_entries(session, filters), fmt)


@router.get(
    "/heads/latest",
    response_model=TreeHeadView,
    summary="The latest signed tree head",
    responses={404: {"description": "No head has been signed yet"}, **_ERRORS},
)
def latest_head(request: Request, state: StateDep) -> TreeHeadView:
    authorize(state, request, action="audit.head", roles=AUDITORS)
    with transaction(state.sessions) as session:
        head = heads.latest(session)
    if head is None:
        raise TreeHeadNotFoundError("the audit log has no signed tree head yet")
    return _head(head)


@router.post(
    "/heads",
    response_model=TreeHeadView,
    summary="Sign a tree head over every entry now (the latest if nothing was added)",
    responses={404: {"description": "The log is empty"}, **_ERRORS},
)
def sign_head(request: Request, state: StateDep) -> TreeHeadView:
    authorize(state, request, action="audit.head.sign", roles=AUDITORS)
    head = heads.sign(state.sessions, state.keystore)
    if head is None:
        raise TreeHeadNotFoundError("the audit log is empty: there is nothing to sign")
    return _head(head)


@router.get(
    "/public-keys",
    response_model=list[PublicKeyView],
    summary="The audit log's public keys (current and retired), to pin",
    responses=_ERRORS,
)
def public_keys(request: Request, state: StateDep) -> list[PublicKeyView]:
    authorize(state, request, action="audit.public_key", roles=AUDITORS)
    with transaction(state.sessions) as session:
        keys = heads.public_keys(session)
    return [
        PublicKeyView(key_id=k, public_key=v.hex(), pem=crypto.public_key_pem(v))
        for k, v in keys.items()
    ]


@router.get(
    "/proofs/inclusion/{index}",
    response_model=InclusionProofView,
    summary="Prove that entry INDEX is in a signed tree head",
    responses={404: {"description": "No such entry or signed head"}, **_ERRORS},
)
def inclusion_proof(
    request: Request,
    state: StateDep,
    index: Annotated[int, Path(ge=0, le=SQL_INT_MAX, description="0-based entry index (seq - 1).")],
    tree_size: Annotated[
        int | None, Query(ge=1, description="A signed head's size; default: the latest.")
    ] = None,
) -> InclusionProofView:
    authorize(state, request, action="audit.proof", roles=AUDITORS)
    with transaction(state.sessions) as session:
        proof = proofs.inclusion(session, index, tree_size)
    return InclusionProofView(
        index=proof.index,
        leaf_hash=proof.leaf_hash,
        entry=proof.entry,
        path=proof.path,
        head=_head(proof.head),
    )


@router.get(
    "/proofs/consistency",
    response_model=ConsistencyProofView,
    summary="Prove that the signed head of size SECOND extends the one of size FIRST",
    responses={
        400: {"description": "FIRST is larger than SECOND"},
        404: {"description": "No signed head of that size"},
        **_ERRORS,
    },
)
def consistency_proof(
    request: Request,
    state: StateDep,
    first: Annotated[int, Query(ge=1, le=SQL_INT_MAX)],
    second: Annotated[int, Query(ge=1, le=SQL_INT_MAX)],
) -> ConsistencyProofView:
    authorize(state, request, action="audit.proof", roles=AUDITORS)
    with transaction(state.sessions) as session:
        proof = proofs.consistency(session, first, second)
    return ConsistencyProofView(
        first=_head(proof.first), second=_head(proof.second), path=proof.path
    )


@router.get(
    "/anomalies",
    response_model=list[AnomalyView],
    summary="Flags worth a look: volume, off-hours, denial bursts, no case reference",
    responses=_ERRORS,
)
def list_anomalies(
    request: Request,
    state: StateDep,
    since: Annotated[datetime | None, Query(description="Default: 30 days ago.")] = None,
    until: Annotated[datetime | None, Query(description="Default: now.")] = None,
) -> list[AnomalyView]:
    authorize(state, request, action="audit.anomalies", roles=AUDITORS)
    filters = search.Filters(since=since, until=until)  # makes naive times UTC
    with transaction(state.sessions) as session:
        found = anomalies.scan(
            session, state.settings.audit, since=filters.since, until=filters.until
        )
    return [AnomalyView.model_validate(a, from_attributes=True) for a in found]


# --- verification and the citizen's access report (the console's pages call the same work) --


def pinned_keys(pem: str | None) -> dict[str, bytes] | None:
    """The public key an auditor gives to check the heads against (``exchange audit
    public-key``'s output: a ``# key id: ...`` line and the PEM), or None to use the
    database's keys; ValidationError when it is not one."""
    if pem is None or not pem.strip():
        return None
    key_id = next(
        (
            line.split(":", 1)[1].strip()
            for line in pem.splitlines()
            if line.startswith("# key id:")
        ),
        None,
    )
    try:
        raw = crypto.public_key_from_pem(pem.strip())
    except (ValueError, UnicodeEncodeError):
        raw = None
    if raw is None or not key_id:
        raise ValidationError(
            [("public_key", "key.invalid", "not an Ed25519 public key with its key id line")]
        )
    return {key_id: raw}


def verify_log(session: Session, decision: audit.Decision, pem: str | None) -> VerifyReport:
    """Verify the whole log as ``exchange audit verify`` does (every entry's chain and leaf
    hash, the tree at every signed head, each head's signature), noting the outcome in
    ``decision``."""
    verified = check(session, public_keys=pinned_keys(pem))
    decision.reason = (
        f"verified the audit log: intact, {verified.size} entries, "
        f"{verified.heads_checked} signed heads"
        if verified.ok
        else f"verified the audit log: broken ({verified.problem})"
    )
    return verified


def person_report(
    state: AppState, session: Session, decision: audit.Decision, resident_id: str
) -> report.AccessReport:
    """A citizen's access report (``exchange audit report``): every entry naming the
    person's blind index, with its inclusion proof in the latest signed head. The person is
    named by the last four characters of the ID only."""
    if not resident_id.strip():
        raise ValidationError([("person", "person.missing", "enter the person's resident ID")])
    subject = person_subject(state, resident_id)
    decision.subjects = [subject]
    last4 = normalise_resident_id(resident_id)[-4:]
    built = report.build(session, subject, label=last4, generated_at=utcnow())
    decision.reason = f"citizen's access report: {len(built.lines)} accesses"
    return built


class VerifyBody(BaseModel):
    public_key: str | None = Field(
        default=None,
        max_length=4000,
        description="`exchange audit public-key`'s output (a `# key id:` line and the PEM): "
        "check the heads against this key instead of the keys the database holds.",
    )


class VerifyView(BaseModel):
    """The outcome of verifying the whole log."""

    intact: bool
    size: int = Field(description="Entries checked.")
    heads_checked: int
    latest_head: int | None = Field(description="The size of the latest signed head.")
    unsigned: int = Field(description="Entries after the latest signed head (chain only).")
    keys_from: str
    problem: str | None = Field(description="The first problem found, if any.")
    warnings: list[str]


@router.post(
    "/verify",
    response_model=VerifyView,
    summary="Verify the whole audit log (chain, tree at every signed head, signatures)",
    responses=_ERRORS,
)
def verify(request: Request, body: VerifyBody | None = None) -> Response:
    state, request_id = request_context(request)
    decision = pending(request_id, "audit.verify")

    def work(session: Session, identity: Identity) -> VerifyView:
        if identity.role not in AUDITORS:
            raise PermissionDeniedError(
                f"role {identity.role!r} may not audit.verify; allowed: auditor"
            )
        found = verify_log(session, decision, body.public_key if body else None)
        return VerifyView(
            intact=found.ok,
            size=found.size,
            heads_checked=found.heads_checked,
            latest_head=found.latest_head,
            unsigned=found.unsigned,
            keys_from=found.keys_from,
            problem=str(found.problem) if found.problem else None,
            warnings=found.warnings,
        )

    return run_audited_read(state, request, decision, work)


class ReportBody(BaseModel):
    resident_id: str = Field(
        min_length=1, max_length=64, description="The person's resident identity number."
    )


class ReportLineView(BaseModel):
    seq: int
    at: datetime
    actor: str | None
    department: str | None
    role: str | None
    action: str
    purpose: str | None
    case_ref: str | None
    decision: str
    status: int
    leaf: str = Field(description="The entry's canonical encoding, hashed into its leaf.")
    path: list[str] | None = Field(
        description="Its inclusion proof in `head` (hex), or null: not yet in a signed head."
    )


class AccessReportView(BaseModel):
    """Who accessed a person's records: every entry naming them, each with its proof."""

    person: str = Field(description="The last four characters of the resident ID.")
    subject: str = Field(description="The person's blind index.")
    generated_at: datetime
    head: TreeHeadView | None
    public_keys: dict[str, str] = Field(description="Key id -> PEM of the heads' keys.")
    lines: list[ReportLineView]


@router.post(
    "/reports/person",
    response_model=AccessReportView,
    summary="A citizen's access report: who accessed this person's records, with proofs",
    description="The resident identity number is sent in the body, so that no URL (and no "
    "access log) holds it.",
    responses=_ERRORS,
)
def person_report_route(request: Request, body: ReportBody) -> Response:
    state, request_id = request_context(request)
    decision = pending(request_id, "audit.report")

    def work(session: Session, identity: Identity) -> AccessReportView:
        if identity.role not in AUDITORS:
            raise PermissionDeniedError(
                f"role {identity.role!r} may not audit.report; allowed: auditor"
            )
        built = person_report(state, session, decision, body.resident_id)
        head = built.head
        return AccessReportView(
            person=built.label,
            subject=built.subject,
            generated_at=built.generated_at,
            head=TreeHeadView(**head.as_dict()) if head is not None else None,
            public_keys={k: crypto.public_key_pem(v) for k, v in built.public_keys.items()},
            lines=[
                ReportLineView(
                    seq=line.entry.seq,
                    at=line.entry.at,
                    actor=line.entry.actor,
                    department=line.entry.department,
                    role=line.entry.role,
                    action=line.entry.action,
                    purpose=line.entry.purpose,
                    case_ref=line.entry.case_ref,
                    decision=line.entry.decision,
                    status=line.entry.status,
                    leaf=line.encoding,
                    path=line.path,
                )
                for line in built.lines
            ],
        )

    return run_audited_read(state, request, decision, work)
