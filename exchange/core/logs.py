"""The processes' log lines: text for a console, one JSON object a line for production.

:func:`configure` sets the root logger up from the ``log`` settings, once a process
(the gateway's factory, ``exchange registry build``). Every line says when, how
severe, which logger and what; in a gateway request it also carries the request's id
(:data:`request_id`, a context variable the gateway sets for each request, so the
lines its worker threads write carry it too). A JSON line also carries the fields a
caller passed in ``extra={"fields": {...}}`` (the gateway's access log, what the
builder applied): counts, codes and route templates, never personal data.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from exchange.core.config import LogFormat, LogSettings

# The id of the gateway request being served in this context (None outside a request).
request_id: ContextVar[str | None] = ContextVar("exchange_request_id", default=None)

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
# uvicorn's own loggers, which keep handlers of their own unless told otherwise.
_UVICORN = ("uvicorn", "uvicorn.error", "uvicorn.access")


class RequestIdFilter(logging.Filter):
    """Puts the request id of the current context on each record (``record.request_id``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, request_id when
    in a request, the record's ``fields`` and the exception's traceback, if any."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = getattr(record, "request_id", None) or request_id.get()
        if rid:
            line["request_id"] = rid
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update({k: v for k, v in fields.items() if k not in line})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """``time level logger message``, and `` [request <id>]`` within a request."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        rid = getattr(record, "request_id", None) or request_id.get()
        return f"{line} [request {rid}]" if rid else line


def formatter(fmt: LogFormat) -> logging.Formatter:
    """The formatter of ``fmt``."""
    return JsonFormatter() if fmt is LogFormat.JSON else TextFormatter()


def configure(settings: LogSettings) -> None:
    """Write the process's log lines to stderr in ``settings.format`` from ``settings.level``.

    Replaces the root logger's handlers (called again, it reconfigures); uvicorn's loggers
    then write through the root's, so every line has one format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(settings.format))
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.level)
    for name in _UVICORN:
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    logging.getLogger("kafka").setLevel(logging.WARNING)  # kafka-python's chatter
