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
    ├── ValidationError        a record does not meet its standard (carries reasons)
    ├── SourceError            a department source cannot be read
    ├── StackError             the local stack cannot be started or stopped
    ├── AuthenticationError    no, wrong, revoked or expired credentials
    ├── PermissionDeniedError  authenticated, but no grant allows it
    ├── NotFoundError          no such record or entity
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


class NotFoundError(ExchangeError):
    code = "not_found"


class AuditWriteError(ExchangeError):
    code = "audit_write_failed"
    retriable = True
