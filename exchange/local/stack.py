"""The local stack: a Kafka broker, the registry builder and the gateway, as background processes.

``exchange up`` starts what is not running yet and waits until each answers;
``exchange down`` stops exactly the processes it started, by the pids recorded
under ``<data_dir>/run``; ``exchange status`` says what runs where. The gateway
is started by its import path (``gateway.asgi:app``), so this package never
imports the gateway.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from exchange.core.config import Settings
from exchange.core.db import make_engine, migrate
from exchange.core.errors import StackError
from exchange.local.broker import LocalKafka, _port_open, pid_alive, pid_runs, terminate_pid

Say = Callable[[str], None]
# What each component's command line contains; a recorded pid whose process
# lacks it is stale and is never signalled.
_MARKERS = {"registry-builder": "exchange.cli registry build", "gateway": "gateway.asgi:app"}
# The local builder's metrics endpoint (registry.metrics_port), unless a port is configured.
LOCAL_BUILDER_METRICS_PORT = 19100


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    pid: int | None
    running: bool
    address: str


class Stack:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.data_dir = settings.data_dir.resolve()
        self.run_dir = self.data_dir / "run"
        self.log_dir = self.data_dir / "logs"

    @property
    def local_kafka(self) -> bool:
        return self.settings.kafka.bootstrap_servers is None

    def kafka(self) -> LocalKafka:
        k = self.settings.kafka
        return LocalKafka(
            self.data_dir / "kafka",
            size=1,
            host=k.host,
            ports=[(k.port, k.controller_port)],
            heap=k.heap,
            jars_dir=k.jars_dir,
            start_timeout=k.start_timeout_s,
            partitions=k.partitions,
        )

    def _pid_file(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def _pid(self, name: str) -> int | None:
        if name == "kafka":
            return self.kafka().pids().get(1)
        try:
            pid = int(self._pid_file(name).read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if pid_runs(pid, _MARKERS[name]) else None

    def status(self) -> list[ComponentStatus]:
        k, g = self.settings.kafka, self.settings.gateway
        rows = []
        for name, address in (
            ("kafka", k.bootstrap if self.local_kafka else f"external {k.bootstrap}"),
            (
                "registry-builder",
                f"consumer of std.* on {k.bootstrap}; metrics on "
                f"{self.settings.registry.metrics_host}:{self.builder_metrics_port}",
            ),
            ("gateway", g.url),
        ):
            pid = self._pid(name)
            rows.append(ComponentStatus(name, pid, pid is not None and pid_alive(pid), address))
        return rows

    def _child_env(self, **settings: str) -> dict[str, str]:
        env = dict(os.environ)
        env["EXCHANGE_DATA_DIR"] = str(self.data_dir)
        env.setdefault("PYTHONUNBUFFERED", "1")
        env.update(settings)
        return env

    @property
    def metrics_token_file(self) -> Path:
        return self.data_dir / "metrics.token"

    def metrics_token(self) -> str:
        """The gateway's scrape credential: gateway.metrics_token, or else the one kept in
        ``<data_dir>/metrics.token`` (mode 0600), made on first use."""
        configured = self.settings.gateway.metrics_token
        if configured is not None:
            return configured.get_secret_value()
        path = self.metrics_token_file
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(32))
        return path.read_text().strip()

    @property
    def builder_metrics_port(self) -> int:
        port = self.settings.registry.metrics_port
        return LOCAL_BUILDER_METRICS_PORT if port is None else port

    def _spawn(
        self, name: str, argv: list[str], env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with (self.log_dir / f"{name}.log").open("ab") as log:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env if env is not None else self._child_env(),
                start_new_session=True,
            )
        self._pid_file(name).write_text(str(proc.pid))
        return proc

    def _running(self, name: str) -> bool:
        pid = self._pid(name)
        return pid is not None and pid_alive(pid)

    def up(self, say: Say) -> None:
        """Start every component that is not running and wait until each answers."""
        if self.local_kafka:
            if self._running("kafka"):
                say(f"kafka already running on {self.settings.kafka.bootstrap}")
            else:
                say(f"starting kafka (KRaft, Java 17) on {self.settings.kafka.bootstrap} ...")
                t0 = time.monotonic()
                self.kafka().start(detached=True)
                say(f"kafka ready in {time.monotonic() - t0:.1f}s")
        say(f"migrating the registry database {self.settings.safe_db_url}")
        engine = make_engine(self.settings.db_url)
        migrate(engine)
        engine.dispose()
        if self._running("registry-builder"):
            say("registry builder already running")
        else:
            port = self.builder_metrics_port
            if port and _port_open(self.settings.registry.metrics_host, port):
                raise StackError(
                    f"port {port} (the registry builder's metrics) is in use by another "
                    "program; set EXCHANGE_REGISTRY__METRICS_PORT"
                )
            builder = self._spawn(
                "registry-builder",
                [sys.executable, "-m", "exchange.cli", "registry", "build"],
                self._child_env(EXCHANGE_REGISTRY__METRICS_PORT=str(port)),
            )
            pid = builder.pid
            time.sleep(1.5)
            if builder.poll() is not None:
                raise StackError(self._exited_at_start("registry-builder"))
            host = self.settings.registry.metrics_host
            say(f"registry builder started (pid {pid}); metrics at http://{host}:{port}/metrics")
        g = self.settings.gateway
        if self._running("gateway"):
            say(f"gateway already running at {g.url}")
        else:
            if _port_open(g.host, g.port):
                raise StackError(
                    f"port {g.port} is in use by another program; set EXCHANGE_GATEWAY__PORT"
                )
            argv = [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "gateway.asgi:app",
                "--host",
                g.host,
                "--port",
                str(g.port),
                "--log-level",
                "warning",
                "--no-access-log",  # the gateway writes its own, without identifiers
            ]
            token = self.metrics_token()
            gateway = self._spawn(
                "gateway", argv, self._child_env(EXCHANGE_GATEWAY__METRICS_TOKEN=token)
            )
            self._wait_http(f"{g.url}/readyz", "gateway", gateway)
            say(f"gateway ready at {g.url} (pid {gateway.pid})")
            if g.metrics_token is None:
                say(
                    f"gateway metrics at {g.url}/metrics with the bearer token in "
                    f"{self.metrics_token_file}"
                )

    def _exited_at_start(self, name: str, lines: int = 12) -> str:
        """The error for a component that died while starting, with the end of its log."""
        log = self.log_dir / f"{name}.log"
        try:
            tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
        except OSError:
            tail = []
        shown = "".join(f"\n    | {line}" for line in tail)
        return f"{name} exited at start; see {log}{shown}"

    def _wait_http(
        self, url: str, name: str, proc: subprocess.Popen[bytes], timeout: float = 60.0
    ) -> None:
        # The child's own handle, not its pid file: until exec completes, the child's
        # command line is still this process's, so a check by command line would fail.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise StackError(self._exited_at_start(name))
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise StackError(f"{name} did not answer at {url} within {timeout:.0f}s")

    def down(self, say: Say) -> None:
        """Stop the gateway, the builder and the local broker (in that order), by pid."""
        for name in ("gateway", "registry-builder"):
            pid = self._pid(name)
            if pid is not None and pid_alive(pid):
                terminate_pid(pid, timeout=20)
                say(f"{name} stopped (pid {pid})")
            self._pid_file(name).unlink(missing_ok=True)
        if self.local_kafka:
            kafka = self.kafka()
            pid = kafka.pids().get(1)
            if pid is not None and pid_alive(pid):
                kafka.stop()
                say(f"kafka stopped (pid {pid})")
            else:
                kafka.stop()
