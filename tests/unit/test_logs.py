"""Log lines: text for a console, one JSON object a line with the request id for production."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from exchange.core import logs
from exchange.core.config import LogFormat, LogSettings, Settings


@pytest.fixture
def restored_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)


def _line(fmt: LogFormat, **extra: object) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.formatter(fmt))
    handler.addFilter(logs.RequestIdFilter())
    logger = logging.getLogger("tests.logs")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        logger.info("applied %d", 3, extra=extra or None)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


def test_a_json_line_has_time_level_logger_message_and_the_request_id() -> None:
    token = logs.request_id.set("abc123")
    try:
        line = json.loads(_line(LogFormat.JSON, fields={"route": "/v1/persons/lookup"}))
    finally:
        logs.request_id.reset(token)
    assert line["level"] == "INFO"
    assert line["logger"] == "tests.logs"
    assert line["message"] == "applied 3"
    assert line["request_id"] == "abc123"
    assert line["route"] == "/v1/persons/lookup"
    assert line["time"].endswith("+00:00")


def test_outside_a_request_a_json_line_has_no_request_id() -> None:
    line = json.loads(_line(LogFormat.JSON))
    assert "request_id" not in line


def test_a_text_line_is_readable_with_the_request_id_in_a_request() -> None:
    assert _line(LogFormat.TEXT).rstrip().endswith(" INFO tests.logs applied 3")
    token = logs.request_id.set("abc123")
    try:
        assert _line(LogFormat.TEXT).rstrip().endswith(" applied 3 [request abc123]")
    finally:
        logs.request_id.reset(token)


def test_configure_gives_the_root_and_uvicorn_one_format(
    restored_root: None, capsys: pytest.CaptureFixture[str]
) -> None:
    logs.configure(LogSettings(format=LogFormat.JSON, level="WARNING"))
    logging.getLogger("uvicorn.error").warning("from uvicorn")
    logging.getLogger("tests.logs_quiet").info("below the level: not written")
    [line] = capsys.readouterr().err.splitlines()
    assert json.loads(line)["logger"] == "uvicorn.error"


def test_log_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXCHANGE_LOG__FORMAT", "json")
    assert Settings().log.format is LogFormat.JSON
    monkeypatch.setenv("EXCHANGE_LOG__LEVEL", "LOUD")
    with pytest.raises(ValueError, match="level"):
        Settings()
