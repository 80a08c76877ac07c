"""The audit log: every gateway decision, in a Merkle tree with signed tree heads.

Modules: ``log`` (appending, the canonical encoding), ``heads`` (signed tree heads
and the Merkle frontier), ``verify`` (recomputing and checking everything),
``proofs`` (inclusion and consistency proofs), ``search`` (queries and export),
``anomalies`` (flags for auditors), ``mirror`` (the outbox to Kafka ``audit.access``),
``worker`` (the gateway's background signer and mirror), ``cli`` (``exchange audit``).

Rule of this package: an entry never holds plaintext personal data (data subjects
are blind indexes), and nothing here ever updates or deletes an entry.
"""

from exchange.audit.log import GENESIS, Decision, append, content
from exchange.audit.verify import VerifyReport, check, verify

__all__ = [
    "GENESIS",
    "Decision",
    "VerifyReport",
    "append",
    "check",
    "content",
    "verify",
]
