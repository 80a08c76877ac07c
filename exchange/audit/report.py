"""A citizen's access report: who accessed a person's records, when, from which department,
for which purpose, with the proof that each entry is in the signed audit log.

The entries are those naming the person's blind index (:mod:`exchange.audit.search`):
every request about the person and every answer that disclosed one of the person's
records. Each comes with its inclusion proof in the latest signed tree head (its
canonical encoding, leaf hash and audit path, :mod:`exchange.audit.proofs`), and the
head with its signature and the log's public key, so that anyone can check the report
without trusting who printed it (the check is printed at the end). An entry appended
after the latest head is listed as not yet covered by a signed head.

The report is a self-contained HTML page (no script, no external asset) laid out to
print; it never shows the person's identifier, only its last four characters.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from html import escape

from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.audit import heads, search
from exchange.audit.heads import TreeHead
from exchange.audit.log import canonical_time, content
from exchange.core.models import AuditEntry
from exchange.security import crypto, merkle

ACTIONS = {
    "person.lookup": "looked up the person",
    "person.search": "searched persons by name",
    "organisation.lookup": "looked up an organisation",
    "organisation.search": "searched organisations by name",
    "entity.view": "viewed the linked records",
    "audit.person": "an auditor read this access history",
    "audit.search": "an auditor searched the audit log",
    "audit.export": "an auditor exported the audit log",
}


@dataclass(frozen=True)
class ReportLine:
    """One access, with its inclusion proof (``path`` None: not yet in a signed head)."""

    entry: AuditEntry
    encoding: str
    path: list[str] | None


@dataclass(frozen=True)
class AccessReport:
    subject: str
    label: str
    lines: list[ReportLine]
    head: TreeHead | None
    public_keys: dict[str, bytes]
    generated_at: datetime


def build(session: Session, subject: str, *, label: str, generated_at: datetime) -> AccessReport:
    """The report of every entry naming ``subject`` (a blind index), in log order, with its
    proof in the latest signed head. ``label`` names the person on the page (never the
    whole identifier)."""
    entries = list(search.iter_entries(session, search.Filters(subject=subject)))
    head = heads.latest(session)
    leaves: list[bytes] = []
    if head is not None and any(e.seq <= head.tree_size for e in entries):
        leaves = [
            bytes.fromhex(h)
            for h in session.scalars(
                select(AuditEntry.leaf_hash)
                .where(AuditEntry.seq <= head.tree_size)
                .order_by(AuditEntry.seq)
            )
        ]
    lines = []
    for entry in entries:
        path = None
        if head is not None and entry.seq <= head.tree_size:
            path = [p.hex() for p in merkle.inclusion_proof(leaves, entry.seq - 1)]
        lines.append(ReportLine(entry, content(entry).decode(), path))
    return AccessReport(subject, label, lines, head, heads.public_keys(session), generated_at)


def _cell(value: object) -> str:
    return f"<td>{escape('' if value is None else str(value))}</td>"


def _rows(lines: Iterable[ReportLine]) -> str:
    out = []
    for line in lines:
        e = line.entry
        out.append(
            "<tr>"
            + _cell(canonical_time(e.at)[:19].replace("T", " ") + " UTC")
            + _cell(e.department or "-")
            + _cell(f"{e.actor or '-'} ({e.role or '-'})")
            + _cell(e.purpose or "-")
            + _cell(e.case_ref or "-")
            + _cell(ACTIONS.get(e.action, e.action))
            + _cell(f"{'answered' if e.decision == 'allow' else 'refused'} ({e.status})")
            + _cell(e.seq - 1)
            + "</tr>"
        )
    return "\n".join(out)


def _proofs(lines: Iterable[ReportLine]) -> str:
    out = []
    for line in lines:
        e = line.entry
        proof = (
            "<p>Not yet in a signed tree head: ask for the report again later.</p>"
            if line.path is None
            else "<p>Audit path:</p><ol>"
            + "".join(f"<li><code>{p}</code></li>" for p in line.path)
            + "</ol>"
        )
        out.append(
            f'<section class="proof"><h3>Entry {e.seq - 1}</h3>'
            f"<p>Leaf hash: <code>{escape(e.leaf_hash)}</code></p>"
            f"<p>Entry:</p><pre>{escape(line.encoding)}</pre>{proof}</section>"
        )
    return "\n".join(out)


_STYLE = """
body { font-family: sans-serif; font-size: 10pt; margin: 2em; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid #999; padding: 3px 5px; text-align: left; vertical-align: top; }
code, pre { font-size: 8pt; word-break: break-all; white-space: pre-wrap; }
section.proof { page-break-inside: avoid; border-top: 1px solid #ccc; }
@media print { h2.proofs { page-break-before: always; } }
"""


def render(report: AccessReport) -> str:
    """The report as a printable, self-contained HTML page."""
    head = report.head
    head_html = (
        "<p>The audit log has no signed tree head yet.</p>"
        if head is None
        else (
            "<table>"
            f"<tr><th>Tree size</th><td>{head.tree_size}</td></tr>"
            f"<tr><th>Root</th><td><code>{head.root}</code></td></tr>"
            f"<tr><th>Signed at (ms since epoch)</th><td>{head.timestamp_ms}</td></tr>"
            f"<tr><th>Key id</th><td><code>{escape(head.key_id)}</code></td></tr>"
            f"<tr><th>Signature (Ed25519)</th><td><code>{head.signature}</code></td></tr>"
            "</table>"
        )
    )
    keys = "".join(
        f"<p>Key <code>{escape(k)}</code>:</p><pre>{escape(crypto.public_key_pem(v))}</pre>"
        for k, v in sorted(report.public_keys.items())
    )
    count = len(report.lines)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Access report: {escape(report.label)}</title><style>{_STYLE}</style></head>
<body>
<h1>Who accessed the records of {escape(report.label)}</h1>
<p>Generated {escape(canonical_time(report.generated_at)[:19].replace("T", " "))} UTC from the
data exchange's audit log. {count} access{"" if count == 1 else "es"} recorded: every
request about this person and every answer that showed one of this person's records.
The person is named in the log by a keyed hash (blind index)
<code>{escape(report.subject)}</code>, never by the identity number.</p>
<table><thead><tr><th>When</th><th>Department</th><th>Who (role)</th><th>Purpose</th>
<th>Case</th><th>What</th><th>Outcome</th><th>Entry</th></tr></thead>
<tbody>
{_rows(report.lines)}
</tbody></table>
<h2>The signed tree head</h2>
{head_html}
{keys}
<h2 class="proofs">Inclusion proofs</h2>
<p>Each entry's leaf hash is SHA-256(0x00 || entry), with the entry's text as printed
(UTF-8). Folding the audit path into it (RFC 6962, interior nodes
SHA-256(0x01 || left || right)) gives the root of the signed head above, whose
signature over b"exchange.audit.tree-head.v1\\x00" || tree size (8 bytes, big-endian)
|| timestamp (8 bytes, big-endian) || root verifies under the public key: the entry
is in the log, unchanged, as the log's key signed it.</p>
{_proofs(report.lines)}
</body></html>
"""
