"""The auditor's pages on the log's integrity: its verification, its signed tree heads,
inclusion and consistency proofs (checked here and shown with every hash), and the
citizen's access report as a printable page.

Each is one audited request with the auditor API's action and work
(:mod:`gateway.auditor`): ``audit.head`` (the signed heads), ``audit.head.sign``,
``audit.proof`` (:mod:`exchange.audit.proofs`), ``audit.verify`` (``POST /v1/audit/verify``:
:func:`gateway.auditor.verify_log`, optionally against a pinned public key) and
``audit.report`` (``POST /v1/audit/reports/person``: :func:`gateway.auditor.person_report`,
the person's blind index among the entry's subjects). A proof is checked by the gateway and
every hash is shown, so an auditor who trusts no one can check it again elsewhere
(docs/gateway.md shows how).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.audit import heads, proofs
from exchange.audit.heads import TreeHead
from exchange.audit.verify import VerifyReport
from exchange.core.errors import ExchangeError, ProofError, TreeHeadNotFoundError, ValidationError
from exchange.core.models import AuditTreeHead, Department, Purpose
from exchange.identity.apikeys import Identity
from exchange.security import crypto, merkle
from gateway import auditor as auditor_api
from gateway.audited import end_reads
from gateway.auditor import AUDITORS
from gateway.console import web
from gateway.console.auditor_forms import field_errors, form_page, parse_int
from gateway.console.i18n import N_
from gateway.deps import AppState

router = APIRouter()

RECENT_HEADS = 20  # signed heads the integrity page lists (the first one as well)

# What each action of the log means, in plain words (the citizen's report and entry pages).
ACTIONS = {
    "person.lookup": N_("looked up the person"),
    "person.search": N_("searched persons by name and birth date"),
    "household.lookup": N_("looked up the person's household"),
    "organisation.lookup": N_("looked up an organisation"),
    "organisation.search": N_("searched organisations by name"),
    "entity.view": N_("viewed the linked records"),
    "audit.person": N_("an auditor read this person's access history"),
    "audit.search": N_("an auditor searched the audit log"),
    "audit.export": N_("an auditor exported entries of the audit log"),
    "audit.report": N_("an auditor made this access report"),
}


@dataclass(frozen=True)
class Check:
    """One thing checked about a proof, and whether it held."""

    label: str  # an English message id
    ok: bool
    detail: str = ""


@dataclass
class Checked:
    """A proof with what was checked about it."""

    proof: Any
    checks: list[Check] = field(default_factory=list)

    @property
    def verified(self) -> bool:
        return all(c.ok for c in self.checks)


def _recent_heads(session: Session) -> list[TreeHead]:
    """The latest signed heads, newest first, and the first head of the log at the end."""
    rows = list(
        session.scalars(
            select(AuditTreeHead).order_by(AuditTreeHead.tree_size.desc()).limit(RECENT_HEADS)
        )
    )
    first = session.scalar(select(AuditTreeHead).order_by(AuditTreeHead.tree_size).limit(1))
    if first is not None and all(r.tree_size != first.tree_size for r in rows):
        rows.append(first)
    return [TreeHead(r.tree_size, r.root, r.timestamp_ms, r.key_id, r.signature) for r in rows]


def signed_at(head: TreeHead) -> datetime:
    """When a head was signed (its ``timestamp_ms``), for the pages' date filter."""
    return datetime.fromtimestamp(head.timestamp_ms / 1000, UTC)


def _heads_context(session: Session) -> dict[str, Any]:
    recent = _recent_heads(session)
    keys = heads.public_keys(session)
    return {
        "heads": [{**h.as_dict(), "at": signed_at(h), "good": h.verify(keys)} for h in recent],
        "latest": recent[0] if recent else None,
        "oldest": recent[-1] if recent else None,
        "keys": sorted(keys),
    }


def _integrity(
    request: Request, extra: dict[str, Any] | None = None, *, status: int = 200
) -> Response:
    return web.render(request, "auditor/integrity.html", extra, status=status)


@router.get("/integrity")
async def integrity_page(request: Request) -> Response:
    """``GET /v1/audit/heads/latest``: the signed tree heads, with the forms to verify the
    log, sign a head and ask for proofs."""
    decision = web.decision_for(request, "audit.head")
    signed = request.query_params.get("signed", "")

    def work(session: Session, identity: Identity) -> dict[str, Any]:
        decision.reason = "the signed tree heads"
        return _heads_context(session)

    outcome = await web.read(request, decision, work, roles=AUDITORS)
    if isinstance(outcome, ExchangeError):
        return web.refusal(request, outcome)
    return _integrity(request, {**outcome, "signed": signed if signed.isdigit() else None})


@router.post("/verify")
async def verify_log(request: Request) -> Response:
    """Verify the whole log, as ``exchange audit verify`` does: every entry's chain and leaf
    hash, the tree at every signed head and each head's signature."""
    form = await web.read_form(request)
    pem = web.field(form, "public_key")
    decision = web.decision_for(request, "audit.verify")

    def work(session: Session, identity: Identity) -> dict[str, Any]:
        verified: VerifyReport = auditor_api.verify_log(session, decision, pem)
        return {"verified": verified, **_heads_context(session)}

    outcome = await web.read(request, decision, work, roles=AUDITORS)
    if isinstance(outcome, ExchangeError):
        if isinstance(outcome, ValidationError):
            errors = field_errors(outcome, web.gettext(request))
            return web.form_error(
                request, "auditor/integrity.html", {"errors": errors, "public_key": pem}, outcome
            )
        return web.refusal(request, outcome)
    return _integrity(request, {**outcome, "public_key": pem})


@router.post("/heads")
async def sign_head(request: Request) -> Response:
    """``POST /v1/audit/heads``: sign a head over every entry now."""
    state: AppState = request.app.state.exchange
    await web.read_form(request)
    decision = web.decision_for(request, "audit.head.sign")

    def work(session: Session, identity: Identity) -> TreeHead:
        end_reads(session)  # the signing commits in a transaction of its own
        head = heads.sign(state.sessions, state.keystore)
        if head is None:
            raise TreeHeadNotFoundError("the audit log is empty: there is nothing to sign")
        decision.reason = f"signed a tree head of size {head.tree_size}"
        return head

    outcome = await web.read(request, decision, work, roles=AUDITORS)
    if isinstance(outcome, ExchangeError):
        return web.refusal(request, outcome)
    decision.status = 303
    return web.see_other(f"{web.PREFIX}/audit/integrity?signed={outcome.tree_size}")


# --- proofs --------------------------------------------------------------------------------


def _signature_check(label: str, head: TreeHead, keys: dict[str, bytes]) -> Check:
    return Check(label, head.verify(keys), f"{head.key_id}")


def checked_inclusion(session: Session, index: int, tree_size: int | None) -> Checked:
    """The API's inclusion proof, and what the gateway checked of it: the leaf hash is the
    hash of the entry as printed, the audit path leads to the head's root, and the head is
    signed by the log's key."""
    proof = proofs.inclusion(session, index, tree_size)
    leaf = merkle.leaf_hash(proof.entry.encode())
    result = Checked(proof)
    result.checks.append(
        Check(N_("The leaf hash is SHA-256(0x00 || entry)"), leaf.hex() == proof.leaf_hash)
    )
    try:
        merkle.verify_inclusion(
            bytes.fromhex(proof.leaf_hash),
            proof.index,
            proof.head.tree_size,
            [bytes.fromhex(p) for p in proof.path],
            bytes.fromhex(proof.head.root),
        )
        result.checks.append(Check(N_("The audit path leads to the signed root"), True))
    except (ProofError, ValueError) as exc:
        result.checks.append(Check(N_("The audit path leads to the signed root"), False, str(exc)))
    keys = heads.public_keys(session)
    result.checks.append(
        _signature_check(N_("The tree head is signed by the audit log's key"), proof.head, keys)
    )
    return result


def checked_consistency(session: Session, first: int, second: int) -> Checked:
    """The API's consistency proof, and what the gateway checked of it: the path proves the
    second head's tree extends the first's, and both heads are signed by the log's key."""
    proof = proofs.consistency(session, first, second)
    result = Checked(proof)
    try:
        merkle.verify_consistency(
            proof.first.tree_size,
            proof.second.tree_size,
            bytes.fromhex(proof.first.root),
            bytes.fromhex(proof.second.root),
            [bytes.fromhex(p) for p in proof.path],
        )
        result.checks.append(Check(N_("The proof leads from the first root to the second"), True))
    except (ProofError, ValueError) as exc:
        result.checks.append(
            Check(N_("The proof leads from the first root to the second"), False, str(exc))
        )
    keys = heads.public_keys(session)
    result.checks.append(
        _signature_check(
            N_("The first tree head is signed by the audit log's key"), proof.first, keys
        )
    )
    result.checks.append(
        _signature_check(
            N_("The second tree head is signed by the audit log's key"), proof.second, keys
        )
    )
    return result


async def _proof_page(request: Request, kind: str, work_of: Any, asked: dict[str, str]) -> Response:
    decision = web.decision_for(request, "audit.proof")

    def work(session: Session, identity: Identity) -> Checked:
        result: Checked = work_of(session)
        verdict = "verified" if result.verified else "FAILED"
        proof = result.proof
        what = (
            f"entry {proof.index} in the head of size {proof.head.tree_size}"
            if kind == "inclusion"
            else f"heads of size {proof.first.tree_size} and {proof.second.tree_size}"
        )
        decision.reason = f"{kind} proof of {what}: {verdict}"
        return result

    outcome = await web.read(request, decision, work, roles=AUDITORS)
    context = {"kind": kind, "asked": asked, "errors": {}}
    if isinstance(outcome, ExchangeError):
        if isinstance(outcome, ValidationError):
            errors = field_errors(outcome, web.gettext(request))
            return web.form_error(
                request, "auditor/proof.html", {**context, "errors": errors}, outcome
            )
        return web.refusal(request, outcome)
    return web.render(request, "auditor/proof.html", {**context, "result": outcome})


@router.get("/proofs/inclusion")
async def inclusion_page(request: Request) -> Response:
    """``GET /v1/audit/proofs/inclusion/{index}?tree_size=``, checked and shown."""
    asked = {
        "index": request.query_params.get("index", "").strip(),
        "tree_size": request.query_params.get("tree_size", "").strip(),
    }

    def work(session: Session) -> Checked:
        index = parse_int(asked["index"], "index")
        size = asked["tree_size"]
        tree_size = parse_int(size, "tree_size", minimum=1, code="size.invalid") if size else None
        return checked_inclusion(session, index, tree_size)

    return await _proof_page(request, "inclusion", work, asked)


@router.get("/proofs/consistency")
async def consistency_page(request: Request) -> Response:
    """``GET /v1/audit/proofs/consistency?first=&second=``, checked and shown."""
    asked = {
        "first": request.query_params.get("first", "").strip(),
        "second": request.query_params.get("second", "").strip(),
    }

    def work(session: Session) -> Checked:
        first = parse_int(asked["first"], "first", minimum=1, code="size.invalid")
        second = parse_int(asked["second"], "second", minimum=1, code="size.invalid")
        return checked_consistency(session, first, second)

    return await _proof_page(request, "consistency", work, asked)


# --- the citizen's access report -----------------------------------------------------------


@router.get("/report")
async def report_form(request: Request) -> Response:
    return await form_page(request, "auditor/report.html", "the citizen's access report")


@router.post("/report")
async def report_page(request: Request) -> Response:
    """A citizen's access report (``exchange audit report``): every entry naming the
    person's blind index, in plain words, with its inclusion proof in the latest signed
    head; a page to print. The resident ID is never shown, only its last four characters."""
    state: AppState = request.app.state.exchange
    form = await web.read_form(request)
    person = web.field(form, "person")
    decision = web.decision_for(request, "audit.report")
    context: dict[str, Any] = {"errors": {}}

    def work(session: Session, identity: Identity) -> dict[str, Any]:
        built = auditor_api.person_report(state, session, decision, person)
        departments = {d.code: d.name for d in session.scalars(select(Department))}
        purposes = {p.code: p.title for p in session.scalars(select(Purpose))}
        return {"report": built, "departments": departments, "purposes": purposes}

    outcome = await web.read(request, decision, work, roles=AUDITORS)
    if isinstance(outcome, ExchangeError):
        if isinstance(outcome, ValidationError):
            errors = field_errors(outcome, web.gettext(request))
            return web.form_error(request, "auditor/report.html", {"errors": errors}, outcome)
        return web.refusal(request, outcome)
    return web.render(
        request,
        "auditor/report.html",
        {**context, **outcome, "actions": ACTIONS, "pem": crypto.public_key_pem},
    )


__all__ = ["ACTIONS", "checked_consistency", "checked_inclusion", "router"]
