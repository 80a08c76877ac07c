"""The local Apache Kafka broker: format KRaft storage, run, wait, stop.

Runs the pinned Kafka release (``deploy/kafka/pom.xml``; jars fetched from Maven
Central by ``deploy/kafka/fetch.sh``) on the machine's Java 17, as one combined
broker+controller, or as a cluster of N such nodes on loopback for fault tests
(replication factor 3 and min.insync.replicas 2 when N >= 3).

Two ways to own the JVMs:
- attached (tests): the JVMs die with this Python process (PR_SET_PDEATHSIG) and
  :meth:`LocalKafka.stop` is registered with ``atexit``;
- detached (``exchange up``): the JVMs outlive the command; their pids are written
  beside their configs so ``exchange down`` can stop exactly them.
No process is ever found or killed by name.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import ctypes
import logging
import os
import random
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from exchange.core.errors import BrokerStartError, ConfigError

log = logging.getLogger(__name__)

DEPLOY_DIR = Path(__file__).resolve().parents[2] / "deploy" / "kafka"
MAIN_CLASS = "kafka.Kafka"
STORAGE_TOOL = "kafka.tools.StorageTool"
_PR_SET_PDEATHSIG = 1

_LOG4J2_XML = """<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="WARN">
  <Appenders>
    <RollingFile name="file" fileName="{log_dir}/server.log" filePattern="{log_dir}/server.log.%i">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
      <Policies><SizeBasedTriggeringPolicy size="20 MB"/></Policies>
      <DefaultRolloverStrategy max="2"/>
    </RollingFile>
  </Appenders>
  <Loggers>
    <Root level="INFO"><AppenderRef ref="file"/></Root>
    <Logger name="kafka.request.logger" level="WARN"/>
    <Logger name="org.apache.kafka.controller" level="WARN"/>
  </Loggers>
</Configuration>
"""


def kafka_version() -> str:
    """The Kafka version pinned in deploy/kafka/pom.xml."""
    text = (DEPLOY_DIR / "pom.xml").read_text(encoding="utf-8")
    start = text.index("<kafka.version>") + len("<kafka.version>")
    return text[start : text.index("</kafka.version>", start)]


def default_jars_dir() -> Path:
    cache = Path(
        os.environ.get("EXCHANGE_KAFKA_CACHE", DEPLOY_DIR.parent.parent / ".cache" / "kafka")
    )
    return cache / kafka_version() / "libs"


def ensure_jars(jars_dir: Path | None = None) -> Path:
    """Return the directory of broker jars, fetching them with Maven if missing."""
    target = jars_dir or default_jars_dir()
    if (target / ".complete").is_file():
        return target
    if jars_dir is not None:
        raise ConfigError(f"no Kafka jars in {jars_dir} (expected a .complete marker)")
    result = subprocess.run(
        ["bash", str(DEPLOY_DIR / "fetch.sh"), str(target.parent.parent)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0 or not (target / ".complete").is_file():
        raise BrokerStartError(
            "could not fetch the Kafka jars with deploy/kafka/fetch.sh:\n"
            + (result.stderr or result.stdout)[-2000:]
        )
    return target


_ISSUED_PORTS: set[int] = set()


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on, below the kernel's ephemeral range.

    Ports from ``bind(0)`` come from the ephemeral range, which every outgoing
    connection also draws its source port from: between choosing a listener's
    port and binding it, a Kafka client could take it. Choosing below that range
    (and never the same port twice in one process) removes that race.
    """
    low, _ = _ephemeral_range()
    ceiling = max(low - 1, 20_000)
    for _ in range(200):
        port = random.randint(max(10_000, ceiling - 12_000), ceiling)
        if port in _ISSUED_PORTS:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
        _ISSUED_PORTS.add(port)
        return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def _port_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); treat it as gone.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def pid_runs(pid: int, marker: str) -> bool:
    """Whether ``pid`` is alive and its command line contains ``marker``.

    Guards against stale pid files: after a reboot the number may belong to an
    unrelated process, which must never be signalled.
    """
    if not pid_alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    return marker in cmdline


def terminate_pid(pid: int, timeout: float = 30.0) -> None:
    """SIGTERM a process we started, wait for it, SIGKILL it if it lingers."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        if not pid_alive(pid):
            return
        time.sleep(0.1)
    log.warning("pid %d did not stop in %.0fs; killing it", pid, timeout)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


@dataclass(frozen=True)
class KafkaNode:
    """One combined broker+controller of a local cluster."""

    node_id: int
    host: str
    port: int
    controller_port: int
    directory: Path

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.directory / "kafka.pid"

    @property
    def log_file(self) -> Path:
        return self.directory / "logs" / "server.log"

    @property
    def console_file(self) -> Path:
        return self.directory / "logs" / "console.log"


class LocalKafka:
    """A Kafka cluster of ``size`` KRaft nodes on loopback, owned by this process.

    >>> with LocalKafka(tmp_path, size=1) as kafka:
    ...     produce_to(kafka.bootstrap_servers)
    """

    def __init__(
        self,
        base_dir: Path,
        *,
        size: int = 1,
        host: str = "127.0.0.1",
        ports: list[tuple[int, int]] | None = None,
        heap: str = "512m",
        jars_dir: Path | None = None,
        start_timeout: float = 120.0,
        partitions: int = 3,
    ) -> None:
        if size < 1:
            raise ConfigError("a Kafka cluster needs at least one node")
        if ports is not None and len(ports) != size:
            raise ConfigError(f"{size} nodes need {size} (port, controller port) pairs")
        self.base_dir = base_dir
        self.size = size
        self.heap = heap
        self.jars_dir = jars_dir
        self.start_timeout = start_timeout
        self.partitions = partitions
        pairs = ports or [(free_port(host), free_port(host)) for _ in range(size)]
        self.nodes = [
            KafkaNode(i + 1, host, port, cport, base_dir / f"node-{i + 1}")
            for i, (port, cport) in enumerate(pairs)
        ]
        self._procs: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(node.address for node in self.nodes)

    @property
    def replication_factor(self) -> int:
        return 3 if self.size >= 3 else 1

    def properties(self, node: KafkaNode) -> str:
        rf = self.replication_factor
        min_isr = 2 if rf >= 3 else 1
        voters = ",".join(f"{n.node_id}@{n.host}:{n.controller_port}" for n in self.nodes)
        settings = {
            "process.roles": "broker,controller",
            "node.id": node.node_id,
            "controller.quorum.voters": voters,
            "listeners": f"PLAINTEXT://{node.host}:{node.port},CONTROLLER://{node.host}:{node.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{node.host}:{node.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": node.directory / "data",
            "num.partitions": self.partitions,
            "default.replication.factor": rf,
            "min.insync.replicas": min_isr,
            "offsets.topic.replication.factor": rf,
            "transaction.state.log.replication.factor": rf,
            "transaction.state.log.min.isr": min_isr,
            "share.coordinator.state.topic.replication.factor": rf,
            "share.coordinator.state.topic.min.isr": min_isr,
            "auto.create.topics.enable": "false",
            "group.initial.rebalance.delay.ms": 0,
            "num.network.threads": 2,
            "num.io.threads": 2,
            "log.retention.hours": -1,
        }
        return "".join(f"{key}={value}\n" for key, value in settings.items())

    def _java(self, *args: str) -> list[str]:
        classpath = str(ensure_jars(self.jars_dir) / "*")
        return ["java", "-cp", classpath, *args]

    def _prepare(self, node: KafkaNode, cluster_id: str) -> Path:
        config = node.directory / "server.properties"
        (node.directory / "logs").mkdir(parents=True, exist_ok=True)
        (node.directory / "log4j2.xml").write_text(
            _LOG4J2_XML.format(log_dir=node.directory / "logs"), encoding="utf-8"
        )
        config.write_text(self.properties(node), encoding="utf-8")
        if not (node.directory / "data" / "meta.properties").exists():
            result = subprocess.run(
                [
                    *self._java(
                        STORAGE_TOOL, "format", f"--cluster-id={cluster_id}", "-c", str(config)
                    )
                ],
                capture_output=True,
                text=True,
                check=False,
                env=self._env(node),
            )
            if result.returncode != 0:
                raise BrokerStartError(
                    f"formatting KRaft storage of node {node.node_id} failed:\n"
                    + (result.stderr or result.stdout)[-2000:]
                )
        return config

    def _env(self, node: KafkaNode) -> dict[str, str]:
        env = dict(os.environ)
        env["KAFKA_LOG4J_OPTS"] = ""
        return env

    def _cluster_id(self) -> str:
        id_file = self.base_dir / "cluster.id"
        if id_file.is_file():
            return id_file.read_text(encoding="utf-8").strip()
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        self.base_dir.mkdir(parents=True, exist_ok=True)
        id_file.write_text(cluster_id, encoding="utf-8")
        return cluster_id

    def start(self, *, detached: bool = False) -> None:
        """Format storage if new, start every node and wait until all answer."""
        cluster_id = self._cluster_id()
        for node in self.nodes:
            if _port_open(node.host, node.port) or _port_open(node.host, node.controller_port):
                raise BrokerStartError(
                    f"port {node.port} or {node.controller_port} on {node.host} is already in use; "
                    "is another broker running? (`exchange status`, or set EXCHANGE_KAFKA__PORT)"
                )
            self._spawn(node, self._prepare(node, cluster_id), detached=detached)
        if not detached:
            atexit.register(self.stop)
        self.wait_ready()

    def _spawn(self, node: KafkaNode, config: Path, *, detached: bool) -> None:
        jvm = [
            f"-Xmx{self.heap}",
            "-Xms128m",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={node.directory / 'log4j2.xml'}",
            f"-Dkafka.logs.dir={node.directory / 'logs'}",
        ]
        console = node.console_file.open("ab")
        try:
            proc = subprocess.Popen(
                [
                    "java",
                    *jvm,
                    "-cp",
                    str(ensure_jars(self.jars_dir) / "*"),
                    MAIN_CLASS,
                    str(config),
                ],
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                start_new_session=detached,
                preexec_fn=None if detached else _die_with_parent,
            )
        finally:
            console.close()
        self._procs[node.node_id] = proc
        node.pid_file.write_text(str(proc.pid), encoding="utf-8")
        log.info("kafka node %d started (pid %d) on %s", node.node_id, proc.pid, node.address)

    def wait_ready(self, nodes: list[KafkaNode] | None = None) -> None:
        """Wait until each node accepts clients and sees the whole cluster."""
        from kafka.admin import KafkaAdminClient

        pending = list(nodes or self.nodes)
        deadline = time.monotonic() + self.start_timeout
        while pending:
            node = pending[0]
            proc = self._procs.get(node.node_id)
            if proc is not None and proc.poll() is not None:
                raise BrokerStartError(
                    f"kafka node {node.node_id} exited with code {proc.returncode}:\n"
                    + self.log_tail(node)
                )
            if time.monotonic() > deadline:
                raise BrokerStartError(
                    f"kafka node {node.node_id} did not answer on {node.address} within "
                    f"{self.start_timeout:.0f}s:\n" + self.log_tail(node)
                )
            if _port_open(node.host, node.port):
                try:
                    admin = KafkaAdminClient(
                        bootstrap_servers=node.address, request_timeout_ms=5000
                    )
                    try:
                        brokers = admin.describe_cluster()["brokers"]
                    finally:
                        admin.close()
                    if len(brokers) >= self.size:
                        pending.pop(0)
                        continue
                except Exception as exc:  # not ready yet; the loop's deadline bounds this
                    log.debug("node %d not ready: %s", node.node_id, exc)
            time.sleep(0.5)

    def log_tail(self, node: KafkaNode, lines: int = 30) -> str:
        text = ""
        for path in (node.console_file, node.log_file):
            if path.is_file():
                text += "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) + "\n"
        return text or "(no broker log written)"

    def stop_node(self, node: KafkaNode, timeout: float = 30.0) -> None:
        """Stop one node (controlled shutdown on SIGTERM), e.g. for a fault test."""
        proc = self._procs.pop(node.node_id, None)
        pid = proc.pid if proc else self._node_pid(node)
        if pid is not None:
            terminate_pid(pid, timeout)
        if proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=1)
        node.pid_file.unlink(missing_ok=True)

    def start_node(self, node: KafkaNode) -> None:
        """Restart a node stopped with :meth:`stop_node` and wait until it answers."""
        self._spawn(node, self._prepare(node, self._cluster_id()), detached=False)
        self.wait_ready([node])

    def stop(self) -> None:
        """Stop every node of the cluster. Safe to call more than once.

        All nodes get SIGTERM at once: stopping them one by one would leave the
        last ones without a controller quorum, stalling their controlled shutdown.
        """
        for node in self.nodes:
            pid = self._procs[node.node_id].pid if node.node_id in self._procs else None
            pid = pid or self._node_pid(node)
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
        for node in self.nodes:
            self.stop_node(node, timeout=15.0)
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)

    def _node_pid(self, node: KafkaNode) -> int | None:
        """The recorded pid of a node, if that process is still this node's JVM."""
        pid = _read_pid(node.pid_file)
        if pid is None or not pid_runs(pid, str(node.directory / "server.properties")):
            return None
        return pid

    def pids(self) -> dict[int, int]:
        return {
            node.node_id: pid for node in self.nodes if (pid := self._node_pid(node)) is not None
        }

    def __enter__(self) -> LocalKafka:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __iter__(self) -> Iterator[KafkaNode]:
        return iter(self.nodes)


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return None
