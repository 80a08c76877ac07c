"""The local stack's start-up errors and the test-port chooser (no processes started)."""

from __future__ import annotations

import socket
from pathlib import Path

from exchange.core.config import Settings
from exchange.local.broker import _ephemeral_range, free_port
from exchange.local.stack import Stack


def test_a_component_that_dies_at_start_is_reported_with_the_end_of_its_log(
    tmp_path: Path,
) -> None:
    stack = Stack(Settings(data_dir=tmp_path))
    stack.log_dir.mkdir(parents=True)
    lines = [f"line {i}" for i in range(30)]
    lines.append("sqlite3.OperationalError: database is locked")
    (stack.log_dir / "gateway.log").write_text("\n".join(lines) + "\n")

    message = stack._exited_at_start("gateway")

    assert message.startswith(f"gateway exited at start; see {stack.log_dir / 'gateway.log'}")
    assert "| sqlite3.OperationalError: database is locked" in message
    assert "| line 19" in message
    assert "line 18" not in message  # only the last 12 lines


def test_a_missing_log_still_gives_a_message(tmp_path: Path) -> None:
    message = Stack(Settings(data_dir=tmp_path))._exited_at_start("registry-builder")
    log = tmp_path / "logs" / "registry-builder.log"
    assert message == f"registry-builder exited at start; see {log}"


def test_free_ports_are_distinct_bindable_and_below_the_ephemeral_range() -> None:
    low, _ = _ephemeral_range()
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == len(ports)
    assert all(p < low for p in ports)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", ports[-1]))


def test_the_local_stack_keeps_a_private_metrics_token_and_a_builder_metrics_port(
    tmp_path: Path,
) -> None:
    stack = Stack(Settings(data_dir=tmp_path))
    token = stack.metrics_token()
    assert len(token) >= 32
    assert stack.metrics_token_file.stat().st_mode & 0o777 == 0o600
    assert Stack(Settings(data_dir=tmp_path)).metrics_token() == token  # kept, not remade
    assert stack.builder_metrics_port == 19100
    configured = Stack(
        Settings(
            data_dir=tmp_path / "other",
            gateway={"metrics_token": "configured-token"},
            registry={"metrics_port": 19200},
        )
    )
    assert configured.metrics_token() == "configured-token"
    assert not configured.metrics_token_file.exists()
    assert configured.builder_metrics_port == 19200
    env = configured._child_env(EXCHANGE_GATEWAY__METRICS_TOKEN="t")
    assert env["EXCHANGE_GATEWAY__METRICS_TOKEN"] == "t"
