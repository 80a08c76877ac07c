"""The exchange's error hierarchy.

Every error a user can see derives from :class:`ExchangeError` and carries a
stable ``code`` (documented in ``docs/errors.md``) and whether retrying may help.
Library exceptions (kafka-python, fastavro, SQLAlchemy) are translated into these
where they enter, with ``raise ... from exc``. Domain errors know nothing of HTTP;
only the gateway maps them to responses.

    ExchangeError
    ├── ConfigError            bad or missing setting
    ├── BrokerError            the Kafka broker could not be started, reached or used (retriable)
    │   └── BrokerStartError   the local broker did not come up
    ├── WireFormatError        bytes are not a Confluent-framed Avro record we can read
    ├── SchemaNotFoundError    unknown schema id or standard
    ├── RegistryError          a schema registry request cannot be done (Confluent error_code)
    │   ├── SubjectNotFoundError, VersionNotFoundError, SchemaNotInSubjectError (404)
    │   ├── SubjectNotSoftDeletedError, VersionNotSoftDeletedError, ConfigNotFoundError (404)
    │   ├── IncompatibleSchemaError (409: names each field and rule broken)
    │   └── InvalidSchemaError, InvalidVersionError, InvalidCompatibilityLevelError (422)
    ├── ValidationError        a record does not meet its standard (carries reasons)
    ├── SourceError            a department source cannot be read
    ├── StackError             the local stack cannot be started or stopped
    ├── (exchange.security.crypto) DecryptionError, SignatureError; (exchange.security.keystore)
    │   KeyDestroyedError, KeyNotFoundError; (exchange.security.provenance) UnverifiedRecordError
    ├── AuthenticationError    no, wrong, revoked or expired credentials
    ├── PermissionDeniedError  authenticated, but no grant allows it
    ├── RateLimitedError       the caller's request budget is spent for now (retriable)
    ├── ConflictError          the object exists already, or its state forbids the change
    ├── NotFoundError          no such record or entity
    ├── ConflictError          the change conflicts with what is stored (a duplicate, a repeat)
    └── AuditWriteError        the audit log could not be appended (the request fails closed)
"""

from __future__ import annotations


class ExchangeError(Exception):
    """Root of every error the exchange raises on purpose."""

    code: str = "exchange_error"
    retriable: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(ExchangeError):
    code = "config_error"


class BrokerError(ExchangeError):
    code = "broker_error"
    retriable = True


class BrokerStartError(BrokerError):
    code = "broker_start_failed"


class WireFormatError(ExchangeError):
    code = "wire_format_error"


class SchemaNotFoundError(ExchangeError):
    code = "schema_not_found"


class RegistryError(ExchangeError):
    """A schema registry error; ``registry_code`` is Confluent's ``error_code``."""

    code = "registry_error"
    registry_code = 50001
    http_status = 500


class SubjectNotFoundError(RegistryError):
    code = "subject_not_found"
    registry_code = 40401
    http_status = 404


class VersionNotFoundError(RegistryError):
    code = "version_not_found"
    registry_code = 40402
    http_status = 404


class SchemaNotInSubjectError(RegistryError):
    code = "schema_not_found"
    registry_code = 40403
    http_status = 404


class SubjectNotSoftDeletedError(RegistryError):
    code = "subject_not_soft_deleted"
    registry_code = 40405
    http_status = 404


class VersionNotSoftDeletedError(RegistryError):
    code = "version_not_soft_deleted"
    registry_code = 40407
    http_status = 404


class ConfigNotFoundError(RegistryError):
    code = "subject_config_not_found"
    registry_code = 40408
    http_status = 404


class IncompatibleSchemaError(RegistryError):
    code = "incompatible_schema"
    registry_code = 409
    http_status = 409


class InvalidSchemaError(RegistryError):
    code = "invalid_schema"
    registry_code = 42201
    http_status = 422


class InvalidVersionError(RegistryError):
    code = "invalid_version"
    registry_code = 42202
    http_status = 422


class InvalidCompatibilityLevelError(RegistryError):
    code = "invalid_compatibility_level"
    registry_code = 42203
    http_status = 422


class ValidationError(ExchangeError):
    """A record failed validation; ``reasons`` lists (field, reason_code, message)."""

    code = "validation_failed"

    def __init__(self, reasons: list[tuple[str, str, str]]) -> None:
        self.reasons = reasons
        text = "; ".join(f"{field}: {message}" for field, _, message in reasons)
        super().__init__(text or "record is invalid")


class SourceError(ExchangeError):
    code = "source_error"


class StackError(ExchangeError):
    code = "stack_error"


class AuthenticationError(ExchangeError):
    code = "unauthenticated"


class PermissionDeniedError(ExchangeError):
    code = "forbidden"


class RateLimitedError(ExchangeError):
    """Too many requests from one identity; ``retry_after`` is in seconds."""

    code = "rate_limited"
    retriable = True

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ConflictError(ExchangeError):
    code = "conflict"


class NotFoundError(ExchangeError):
    code = "not_found"


class AuditWriteError(ExchangeError):
    code = "audit_write_failed"
    retriable = True

    def __init__(
        self, message: str = "the audit log could not be written; the request is refused"
    ) -> None:
        super().__init__(message)
