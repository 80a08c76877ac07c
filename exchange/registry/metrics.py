"""The registry builder's metrics, its batch log and its HTTP endpoint for operators.

:class:`BuilderMetrics` hooks into a :class:`~exchange.registry.builder.RegistryBuilder`
(``on_poll``) and, after each poll, adds what the poll applied to Prometheus counters
and logs it at INFO: once a batch, never once a record, so the builder's hot loop is
untouched (``docs/benchmarks.md``). The consumer lag of each partition assigned (its
end offset minus the builder's position) is refreshed after an idle poll and at most
every ``lag_interval_s`` while busy: both offsets are the consumer's own, no request
to the broker. The linkage review backlog is counted in the database when scraped
(at most every ``backlog_interval_s``).

:func:`serve` answers ``/metrics``, ``/healthz`` (the loop polls) and ``/readyz`` (it
polled recently and the database answers) on ``registry.metrics_host`` and
``registry.metrics_port``: a port of its own with no credential, on the loopback
interface by default. No label holds personal data: topics, partitions and reason codes.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, make_wsgi_app
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from exchange.core.errors import ConfigError, NotReadyError
from exchange.registry.builder import BuildStats, Partition, RegistryBuilder
from exchange.registry.review import awaiting_review_count

log = logging.getLogger(__name__)

LAG_INTERVAL_S = 5.0
BACKLOG_INTERVAL_S = 15.0
STALL_S = 120.0  # /healthz fails when the loop has not polled for this long
READY_S = 60.0  # /readyz needs a poll this recent


class _Gauges(Collector):
    """The gauges computed off the hot loop: lag per partition, the review backlog."""

    def __init__(self, metrics: BuilderMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[GaugeMetricFamily]:
        lag = GaugeMetricFamily(
            "exchange_registry_consumer_lag",
            "Records of each partition assigned to this builder not read yet (end offset "
            "minus position).",
            labels=["topic", "partition"],
        )
        for (topic, partition), behind in sorted(self._metrics.lag.items()):
            lag.add_metric([topic, str(partition)], behind)
        yield lag
        backlog = self._metrics.review_backlog()
        yield GaugeMetricFamily(
            "exchange_registry_review_backlog",
            "Compared pairs awaiting a reviewer's decision (exchange registry review list); "
            "NaN when the database cannot be read.",
            value=float("nan") if backlog is None else backlog,
        )


class BuilderMetrics:
    """Counts what ``builder`` applies, poll by poll (it sets ``builder.on_poll``)."""

    def __init__(
        self,
        builder: RegistryBuilder,
        sessions: sessionmaker[Session],
        *,
        lag_interval_s: float = LAG_INTERVAL_S,
        backlog_interval_s: float = BACKLOG_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.builder = builder
        self.sessions = sessions
        self.registry = CollectorRegistry()
        self._clock = clock
        self._lag_interval_s = lag_interval_s
        self._backlog_interval_s = backlog_interval_s
        self._seen = _snapshot(builder.stats)
        self.lag: dict[Partition, int] = {}  # replaced whole, read by the scraping thread
        self._lag_at = float("-inf")
        self._backlog: tuple[float, int | None] = (float("-inf"), None)
        self._backlog_lock = threading.Lock()
        self.started_at = clock()
        self.last_poll: float | None = None
        registry = self.registry
        self.applied = Counter(
            "exchange_registry_records_applied",
            "Records applied to the registry (new or changed).",
            registry=registry,
        )
        self.withdrawn = Counter(
            "exchange_registry_records_withdrawn",
            "Withdrawals (tombstones) applied.",
            registry=registry,
        )
        self.unchanged = Counter(
            "exchange_registry_records_unchanged",
            "Records read again with nothing changed (replays, resends).",
            registry=registry,
        )
        self.dead_lettered = Counter(
            "exchange_registry_records_dead_lettered",
            "Records sent to dlq.registry, by reason code.",
            ["reason"],
            registry=registry,
        )
        self.linked = Counter(
            "exchange_registry_records_linked",
            "Records whose linkage was computed (joined to an entity).",
            registry=registry,
        )
        self.manifests = Counter(
            "exchange_registry_manifests_verified",
            "Signed batch manifests verified.",
            registry=registry,
        )
        self.batches = Counter(
            "exchange_registry_batches",
            "Polls that read records and were applied in one transaction.",
            registry=registry,
        )
        self.last_poll_time = Gauge(
            "exchange_registry_last_poll_timestamp_seconds",
            "When the builder last polled Kafka (Unix time): a builder stuck shows here.",
            registry=registry,
        )
        registry.register(_Gauges(self))
        builder.on_poll = self.after_poll

    def after_poll(self, count: int, partitions: list[Partition]) -> None:
        """Count and log a poll of ``count`` messages from ``partitions`` (the builder's
        ``on_poll``)."""
        now = self._clock()
        self.last_poll = now
        self.last_poll_time.set_to_current_time()
        if count:
            self._count(count, partitions)
        if not count or now - self._lag_at >= self._lag_interval_s:
            self._lag_at = now
            self.refresh_lag()

    def _count(self, count: int, partitions: list[Partition]) -> None:
        stats = self.builder.stats
        before, self._seen = self._seen, _snapshot(stats)
        delta = {name: value - before.get(name, 0) for name, value in self._seen.items()}
        reasons = {
            code: n - before.get(f"reason:{code}", 0)
            for code, n in stats.dead_reasons.items()
            if n - before.get(f"reason:{code}", 0)
        }
        self.applied.inc(delta["applied"])
        self.withdrawn.inc(delta["withdrawn"])
        self.unchanged.inc(delta["unchanged"])
        self.linked.inc(delta["linked"])
        self.manifests.inc(delta["manifests"])
        for code, n in reasons.items():
            self.dead_lettered.labels(code).inc(n)
        self.batches.inc()
        where = ", ".join(f"{topic}[{partition}]" for topic, partition in sorted(partitions))
        log.info(
            "batch of %d messages from %s: applied %d, withdrawn %d, unchanged %d, "
            "dead-lettered %d%s, linked %d, manifests verified %d",
            count,
            where,
            delta["applied"],
            delta["withdrawn"],
            delta["unchanged"],
            delta["dead_lettered"],
            f" ({', '.join(f'{c} {n}' for c, n in sorted(reasons.items()))})" if reasons else "",
            delta["linked"],
            delta["manifests"],
            extra={
                "fields": {
                    "messages": count,
                    "partitions": [f"{t}[{p}]" for t, p in sorted(partitions)],
                    "applied": delta["applied"],
                    "withdrawn": delta["withdrawn"],
                    "unchanged": delta["unchanged"],
                    "dead_lettered": delta["dead_lettered"],
                    "dead_letter_reasons": reasons,
                    "linked": delta["linked"],
                    "manifests": delta["manifests"],
                }
            },
        )

    def refresh_lag(self) -> None:
        """Read the lag of every partition assigned now (the consumer's own offsets)."""
        positions = self.builder.positions()
        if positions is None:  # nothing assigned (yet, or to another member)
            self.lag = {}
            return
        lag: dict[Partition, int] = {}
        try:
            for tp, position in positions.items():
                high = self.builder.high_watermark(tp)
                lag[tp] = max(high - max(position, 0), 0)
        except Exception as exc:  # the broker is briefly away: keep the last figures
            log.warning("cannot read the consumer lag: %s", exc)
            return
        self.lag = lag

    def review_backlog(self) -> int | None:
        """Pairs awaiting review, counted at most every ``backlog_interval_s``; None if the
        database cannot be read."""
        with self._backlog_lock:
            at, value = self._backlog
            now = self._clock()
            if now - at < self._backlog_interval_s:
                return value
            try:
                with self.sessions() as session:
                    value = awaiting_review_count(session)
            except Exception as exc:
                log.warning("cannot count the review backlog: %s", exc)
                value = None
            self._backlog = (now, value)
            return value

    def health(self) -> list[str]:
        """What makes the builder unhealthy (its loop stalled); empty when healthy."""
        since = self.last_poll if self.last_poll is not None else self.started_at
        if self._clock() - since > STALL_S:
            return [f"polling: no poll for {self._clock() - since:.0f}s"]
        return []

    def readiness(self) -> list[str]:
        """What keeps the builder from being ready; empty when ready."""
        problems: list[str] = []
        if self.last_poll is None or self._clock() - self.last_poll > READY_S:
            problems.append("polling: the builder has not polled Kafka recently")
        try:
            with self.sessions() as session:
                session.execute(text("SELECT 1"))
        except Exception as exc:
            log.warning("not ready: database: %s", exc)
            problems.append("database: unavailable (details in the builder's log)")
        return problems


def _snapshot(stats: BuildStats) -> dict[str, int]:
    found = {
        "applied": stats.applied,
        "withdrawn": stats.withdrawn,
        "unchanged": stats.unchanged,
        "dead_lettered": stats.dead_lettered,
        "linked": stats.linked,
        "manifests": stats.manifests,
    }
    found.update({f"reason:{code}": n for code, n in stats.dead_reasons.items()})
    return found


# --- the HTTP endpoint --------------------------------------------------------------------

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes every few seconds are not worth a log line each."""


def _json(
    start_response: StartResponse, status: int, body: dict[str, Any], kind: str
) -> Iterable[bytes]:
    reasons = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}
    data = json.dumps(body).encode()
    start_response(
        f"{status} {reasons[status]}",
        [("Content-Type", kind), ("Content-Length", str(len(data)))],
    )
    return [data]


def _probe(start_response: StartResponse, problems: list[str]) -> Iterable[bytes]:
    if not problems:
        return _json(start_response, 200, {"status": "ok"}, "application/json")
    error = NotReadyError("not ready: " + "; ".join(problems))
    body = {
        "type": "about:blank",
        "title": "Not ready",
        "status": 503,
        "detail": error.message,
        "code": error.code,
    }
    return _json(start_response, 503, body, "application/problem+json")


def wsgi_app(metrics: BuilderMetrics) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    """The endpoint: ``/metrics``, ``/healthz``, ``/readyz``; 404 otherwise."""
    exposition = make_wsgi_app(metrics.registry)

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            return exposition(environ, start_response)  # type: ignore[no-any-return]
        if path == "/healthz":
            return _probe(start_response, metrics.health())
        if path == "/readyz":
            return _probe(start_response, metrics.readiness() + metrics.health())
        body = {"type": "about:blank", "title": "Not found", "status": 404, "code": "http_404"}
        return _json(start_response, 404, body, "application/problem+json")

    return app


class Endpoint:
    """The endpoint served by a daemon thread; :meth:`close` stops it."""

    def __init__(self, metrics: BuilderMetrics, host: str, port: int) -> None:
        self._server = make_server(
            host, port, wsgi_app(metrics), server_class=_Server, handler_class=_QuietHandler
        )
        self.host = host
        self.port = int(self._server.server_port)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="builder-metrics", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def serve(metrics: BuilderMetrics, host: str, port: int) -> Endpoint:
    """Serve ``metrics``' endpoint on ``host``:``port`` (0: a free port; see ``.port``);
    ConfigError if it cannot listen there."""
    try:
        endpoint = Endpoint(metrics, host, port)
    except OSError as exc:
        raise ConfigError(
            f"the builder's metrics endpoint cannot listen on {host}:{port} ({exc}); set "
            "registry.metrics_port (EXCHANGE_REGISTRY__METRICS_PORT) to a free port"
        ) from exc
    log.info("builder metrics at %s/metrics (also /healthz, /readyz)", endpoint.url)
    return endpoint
