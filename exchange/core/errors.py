"""The exchange's one error tree.

Every error the exchange raises on purpose is a class below, each declaring a stable
``code`` of its own (the same on the command line, in HTTP problem bodies and in
dead-letter reasons; ``docs/errors.md`` says what the user sees and what to do) and
whether trying again, unchanged, may help (``retriable``). Nothing raises the root
itself. Library exceptions (kafka-python, fastavro, SQLAlchemy) are translated into
these where they enter, with ``raise ... from exc``.

Domain errors know nothing of HTTP: the gateway alone maps them to statuses
(``gateway/problems.py``) and to the Confluent ``error_code`` of the schema registry
API (``gateway/confluent.py``).

The tree (name, code, retriable; ``tests/unit/test_errors.py`` keeps this drawing, the
classes and ``docs/errors.md`` the same)::

    ExchangeError                           exchange_error
    ├── ConfigError                         config_error
    ├── DatabaseError                       database_error               retriable
    │   └── KeyConflictError                key_conflict                 retriable
    ├── BrokerError                         broker_error                 retriable
    │   └── BrokerStartError                broker_start_failed          retriable
    ├── StackError                          stack_error
    ├── RebuildError                        rebuild_refused
    ├── ModelFitError                       model_fit_failed
    ├── LinkageModelError                   linkage_model_invalid
    ├── LinkageFitError                     linkage_fit_failed
    ├── WireFormatError                     wire_format_error
    ├── SchemaNotFoundError                 schema_not_found
    ├── RegistryError                       registry_error
    │   ├── SubjectNotFoundError            subject_not_found
    │   ├── VersionNotFoundError            version_not_found
    │   ├── SchemaNotInSubjectError         schema_not_in_subject
    │   ├── SubjectSoftDeletedError         subject_soft_deleted
    │   ├── SubjectNotSoftDeletedError      subject_not_soft_deleted
    │   ├── VersionSoftDeletedError         version_soft_deleted
    │   ├── VersionNotSoftDeletedError      version_not_soft_deleted
    │   ├── ConfigNotFoundError             subject_config_not_found
    │   ├── ModeNotFoundError               subject_mode_not_found
    │   ├── IncompatibleSchemaError         incompatible_schema
    │   ├── InvalidSchemaError              invalid_schema
    │   ├── InvalidVersionError             invalid_version
    │   ├── InvalidCompatibilityLevelError  invalid_compatibility_level
    │   ├── InvalidModeError                invalid_mode
    │   ├── OperationNotPermittedError      operation_not_permitted
    │   └── ReferenceExistsError            reference_exists
    ├── ValidationError                     validation_failed
    │   └── DisclosureRuleError             disclosure_rule
    ├── SourceError                         source_error
    ├── WorkerError                         connector_worker_failed
    ├── UnverifiedRecordError               unverified_record
    ├── ProvenanceMismatchError             provenance_mismatch
    ├── UncoveredRecordError                not_in_manifest
    ├── DecryptionError                     decryption_failed
    ├── SignatureError                      bad_signature
    ├── KeyDestroyedError                   key_destroyed
    ├── KeyNotFoundError                    key_not_found
    ├── AuthenticationError                 unauthenticated
    │   ├── DevelopmentCredentialError      development_credential
    │   └── SessionExpiredError             session_expired
    ├── PermissionDeniedError               forbidden
    │   └── CsrfError                       csrf_refused
    ├── RateLimitedError                    rate_limited                 retriable
    │   └── AuthThrottledError              auth_throttled               retriable
    ├── NotFoundError                       not_found
    │   └── TreeHeadNotFoundError           tree_head_not_found
    ├── ConflictError                       conflict
    ├── AuditWriteError                     audit_write_failed           retriable
    ├── AuditLogError                       audit_log_error
    ├── ProofError                          bad_proof
    └── NotReadyError                       not_ready                    retriable
"""

from __future__ import annotations


class ExchangeError(Exception):
    """Root of every error the exchange raises on purpose; never raised itself."""

    code: str = "exchange_error"
    retriable: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- set-up and infrastructure ------------------------------------------------------------


class ConfigError(ExchangeError):
    """A setting, a connector definition or a command's argument cannot be used."""

    code = "config_error"


class DatabaseError(ExchangeError):
    """A database operation failed (``exchange.core.db.transaction`` translates
    SQLAlchemy's errors into it; the driver's text goes to the log)."""

    code = "database_error"
    retriable = True


class KeyConflictError(DatabaseError):
    """A key store write lost a race with another process; the key store retries it
    (``exchange.security.keystore``) and raises :class:`DatabaseError` if it keeps losing."""

    code = "key_conflict"


class BrokerError(ExchangeError):
    """The Kafka broker could not be reached or used."""

    code = "broker_error"
    retriable = True


class BrokerStartError(BrokerError):
    """The local broker did not come up."""

    code = "broker_start_failed"


class StackError(ExchangeError):
    """The local stack (builder, gateway) cannot be started or stopped."""

    code = "stack_error"


class RebuildError(ExchangeError):
    """A registry rebuild is refused (the registry builder still runs)."""

    code = "rebuild_refused"


class ModelFitError(ExchangeError):
    """A linkage model cannot be fitted: no records, too few, or the estimator failed."""

    code = "model_fit_failed"


class LinkageModelError(ExchangeError):
    """A stored linkage model cannot be used: it does not fit the current comparators."""

    code = "linkage_model_invalid"


class LinkageFitError(ExchangeError, ValueError):
    """A linkage model cannot be fitted to the records given: too few records or pairs, or
    the fit degenerated (every candidate pair a match, or none; agreement no evidence)."""

    code = "linkage_fit_failed"


# --- standards, wire format and the schema registry ---------------------------------------


class WireFormatError(ExchangeError):
    """Bytes are not a Confluent-framed Avro record that can be read, or a record does not
    match its schema."""

    code = "wire_format_error"


class SchemaNotFoundError(ExchangeError):
    """An unknown schema id or standard."""

    code = "schema_not_found"


class RegistryError(ExchangeError):
    """A schema registry request cannot be done."""

    code = "registry_error"


class SubjectNotFoundError(RegistryError):
    """No such subject (or only soft-deleted versions of it)."""

    code = "subject_not_found"


class VersionNotFoundError(RegistryError):
    """The subject has no such version."""

    code = "version_not_found"


class SchemaNotInSubjectError(RegistryError):
    """The schema is not registered under the subject."""

    code = "schema_not_in_subject"


class SubjectSoftDeletedError(RegistryError):
    """A soft delete of a subject whose versions are all soft-deleted already."""

    code = "subject_soft_deleted"


class SubjectNotSoftDeletedError(RegistryError):
    """A permanent delete of a subject that was not soft-deleted first."""

    code = "subject_not_soft_deleted"


class VersionSoftDeletedError(RegistryError):
    """A soft delete of a version that is soft-deleted already."""

    code = "version_soft_deleted"


class VersionNotSoftDeletedError(RegistryError):
    """A permanent delete of a version that was not soft-deleted first."""

    code = "version_not_soft_deleted"


class ConfigNotFoundError(RegistryError):
    """The subject has no compatibility level of its own."""

    code = "subject_config_not_found"


class ModeNotFoundError(RegistryError):
    """The subject has no mode of its own (READWRITE, READONLY or IMPORT)."""

    code = "subject_mode_not_found"


class IncompatibleSchemaError(RegistryError):
    """A new version breaks the subject's compatibility level; ``details`` names each field
    and rule broken, one line each."""

    code = "incompatible_schema"

    def __init__(self, message: str, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.details = list(details or [])


class InvalidSchemaError(RegistryError, ValueError):
    """Not a valid Avro schema (nor an Avro schema the registry accepts). Also a
    ``ValueError``, as :mod:`schemas.compatibility` promises its callers."""

    code = "invalid_schema"


class InvalidVersionError(RegistryError):
    """A version that is not a number >= 1 or ``latest``."""

    code = "invalid_version"


class InvalidCompatibilityLevelError(RegistryError):
    """A compatibility level that is not one of Confluent's seven."""

    code = "invalid_compatibility_level"


class InvalidModeError(RegistryError):
    """A mode that is not READWRITE, READONLY or IMPORT."""

    code = "invalid_mode"


class OperationNotPermittedError(RegistryError):
    """Refused by the registry's or the subject's mode: a write in READONLY, a registration
    without an explicit id in IMPORT (or with one outside it), an explicit id that already
    stands for a different schema, or IMPORT asked of a registry that holds schemas."""

    code = "operation_not_permitted"


class ReferenceExistsError(RegistryError):
    """A delete of a version that other schemas still reference."""

    code = "reference_exists"


# --- publishing ---------------------------------------------------------------------------


class ValidationError(ExchangeError):
    """A request or a value does not meet its rules; ``reasons`` lists
    (field, reason_code, message)."""

    code = "validation_failed"

    def __init__(self, reasons: list[tuple[str, str, str]]) -> None:
        self.reasons = reasons
        text = "; ".join(f"{field}: {message}" for field, _, message in reasons)
        super().__init__(text or "record is invalid")


class DisclosureRuleError(ValidationError):
    """A grant, with the role's other grants for the same purpose, would disclose too much:
    a masked identifier would leave fewer than 1,000,000 candidates for the original, or a
    masked name would show a part whole (:mod:`exchange.access.disclosure`); ``reasons``
    names each field and why."""

    code = "disclosure_rule"


class SourceError(ExchangeError):
    """A department source cannot be read."""

    code = "source_error"


class WorkerError(ExchangeError):
    """A worker process preparing a connector run's records failed or died
    (``connectors.workers``)."""

    code = "connector_worker_failed"


class UnverifiedRecordError(ExchangeError):
    """A record is unsigned, lacks provenance, or names a key its department does not have."""

    code = "unverified_record"


class ProvenanceMismatchError(ExchangeError):
    """A record's provenance headers do not fit the record: a withdrawal whose content hash
    is not ``withdrawn``, or a dataset that does not match its topic or its schema."""

    code = "provenance_mismatch"


class UncoveredRecordError(ExchangeError):
    """A record of a signed batch that no valid manifest of its batch covers: altered after
    signing, published outside a transaction, or its batch's manifest never followed."""

    code = "not_in_manifest"


# --- keys, encryption and signatures ------------------------------------------------------


class DecryptionError(ExchangeError):
    """A token did not open: always the same message, the cause is only logged."""

    code = "decryption_failed"
    MESSAGE = "cannot decrypt: wrong key, tampered data, or data bound to another record"

    def __init__(self) -> None:
        super().__init__(self.MESSAGE)


class SignatureError(ExchangeError):
    """A signature did not verify: always the same message, the cause is only logged."""

    code = "bad_signature"
    MESSAGE = "signature does not verify"

    def __init__(self) -> None:
        super().__init__(self.MESSAGE)


class KeyDestroyedError(ExchangeError):
    """The data key was crypto-shredded: what it encrypted can never be read again."""

    code = "key_destroyed"


class KeyNotFoundError(ExchangeError):
    """No key has this id."""

    code = "key_not_found"


# --- access -------------------------------------------------------------------------------


class AuthenticationError(ExchangeError):
    """No, wrong, revoked or expired credentials, or those of a disabled user."""

    code = "unauthenticated"


class DevelopmentCredentialError(AuthenticationError):
    """In production: a key the demo or a development-mode exchange created (or the demo's
    public key itself), which production refuses."""

    code = "development_credential"


class SessionExpiredError(AuthenticationError):
    """A web console session that was idle too long, outlived its absolute lifetime, was
    signed out, or whose credential (key, user) is no longer valid: sign in again.
    ``key_id``: the id of the credential the session was made from, when the session is
    known (for the refusal's audit entry, as a refused API key's id is recorded)."""

    code = "session_expired"

    def __init__(self, message: str, *, key_id: str | None = None) -> None:
        super().__init__(message)
        self.key_id = key_id


class PermissionDeniedError(ExchangeError):
    """Authenticated, but no grant or role allows it."""

    code = "forbidden"


class CsrfError(PermissionDeniedError):
    """A web console form sent without its session's CSRF token, with another one, or from
    another site (its ``Origin``): refused before anything is done."""

    code = "csrf_refused"


class RateLimitedError(ExchangeError):
    """Too many requests from one identity; ``retry_after`` is in seconds."""

    code = "rate_limited"
    retriable = True

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AuthThrottledError(RateLimitedError):
    """Too many failed authentications from one client address: refused before the
    credentials are checked, counted in a metric and not audited one by one."""

    code = "auth_throttled"


class NotFoundError(ExchangeError):
    """No such record, entity or object (or none the caller may see).

    ``refused``: the object exists but the caller tried to act on something it may not see
    (answered exactly as if it did not exist, audited as a denial)."""

    code = "not_found"
    refused = False


class TreeHeadNotFoundError(NotFoundError):
    """No signed tree head has the asked size (or the log has none yet)."""

    code = "tree_head_not_found"


class ConflictError(ExchangeError):
    """The object exists already, or its state forbids the change."""

    code = "conflict"


# --- the audit log ------------------------------------------------------------------------


class AuditWriteError(ExchangeError):
    """The audit entry could not be written: the request fails closed."""

    code = "audit_write_failed"
    retriable = True

    def __init__(
        self, message: str = "the audit log could not be written; the request is refused"
    ) -> None:
        super().__init__(message)


class AuditLogError(ExchangeError):
    """The audit log's storage is not in a state an append can extend (e.g. no tip row)."""

    code = "audit_log_error"


class ProofError(ExchangeError):
    """A Merkle proof does not verify, or asks about entries the tree does not have."""

    code = "bad_proof"


# --- operations ---------------------------------------------------------------------------


class NotReadyError(ExchangeError):
    """A process cannot serve yet (``/readyz``): what is not ready is in the message."""

    code = "not_ready"
    retriable = True


__all__ = [
    "AuditLogError",
    "AuditWriteError",
    "AuthThrottledError",
    "AuthenticationError",
    "BrokerError",
    "BrokerStartError",
    "ConfigError",
    "ConfigNotFoundError",
    "ConflictError",
    "DatabaseError",
    "DecryptionError",
    "DevelopmentCredentialError",
    "ExchangeError",
    "IncompatibleSchemaError",
    "InvalidCompatibilityLevelError",
    "InvalidSchemaError",
    "InvalidVersionError",
    "KeyConflictError",
    "KeyDestroyedError",
    "KeyNotFoundError",
    "NotFoundError",
    "NotReadyError",
    "PermissionDeniedError",
    "ProofError",
    "ProvenanceMismatchError",
    "RateLimitedError",
    "RebuildError",
    "RegistryError",
    "SchemaNotFoundError",
    "SchemaNotInSubjectError",
    "SignatureError",
    "SourceError",
    "StackError",
    "SubjectNotFoundError",
    "SubjectNotSoftDeletedError",
    "SubjectSoftDeletedError",
    "TreeHeadNotFoundError",
    "UnverifiedRecordError",
    "ValidationError",
    "VersionNotFoundError",
    "VersionNotSoftDeletedError",
    "VersionSoftDeletedError",
    "WireFormatError",
    "WorkerError",
]
