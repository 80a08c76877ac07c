"""The gateway's audit worker: a background thread that signs tree heads and mirrors.

Each gateway process runs one (started and stopped by the application's lifespan).
Every second it signs a tree head if ``audit.head_interval_s`` passed since the last
one it saw and entries were appended, or if ``audit.head_every_entries`` were
appended; several processes doing so at once is harmless (a head per tree size).
Every ``audit.mirror_interval_s`` it publishes what is not yet mirrored to Kafka
(:mod:`exchange.audit.mirror`); while Kafka is unreachable it keeps trying, and the
log keeps growing in the database meanwhile. Nothing here is on a request's path:
a failure is logged and retried, never raised to a caller. On stop it signs a last
head, so a cleanly stopped gateway leaves its log covered.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

from exchange.audit import heads, mirror
from exchange.audit.log import size
from exchange.core.config import Settings
from exchange.core.errors import ExchangeError
from exchange.kafka.clients import ensure_topics
from exchange.kafka.producer import Producer
from exchange.security.keystore import KeyStore

log = logging.getLogger(__name__)

TICK_S = 1.0


def _reachable(bootstrap: str, timeout: float = 1.0) -> bool:
    """Whether the first bootstrap server accepts a TCP connection (cheap, before the
    producer's own, slower, connection attempt)."""
    host, _, port = bootstrap.split(",")[0].strip().rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


class AuditWorker:
    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        keystore: KeyStore,
        *,
        on_sign: Callable[[float, bool], None] | None = None,
    ) -> None:
        """``on_sign(seconds, ok)``, if given, is told of each head signed over new entries
        (and the time it took) and of each failed attempt (metrics)."""
        self._on_sign = on_sign
        self._settings = settings.audit
        self._bootstrap = settings.kafka.bootstrap
        self._sessions = sessions
        self._keystore = keystore
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="audit-worker", daemon=True)
        self._producer: Producer | None = None
        self._last_sign = time.monotonic()
        self._last_mirror = 0.0
        self._unreachable_said = False

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 15.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.wait(TICK_S):
            self._step()
        self._sign_quietly()
        if self._producer is not None:
            try:  # one last batch, with the final head if the mirror had caught up
                mirror.publish_once(self._sessions, self._producer, self._settings.mirror_topic)
            except Exception as exc:
                log.warning("audit mirror: last batch not sent (%s); sent on the next start", exc)
            self._producer.close(5)

    def _step(self) -> None:
        now = time.monotonic()
        interval = self._settings.head_interval_s
        if (interval and now - self._last_sign >= interval) or self._behind():
            self._sign_quietly()
            self._last_sign = now
        if self._settings.mirror and now - self._last_mirror >= self._settings.mirror_interval_s:
            self._last_mirror = now
            self._mirror_quietly()

    def _behind(self) -> bool:
        every = self._settings.head_every_entries
        if not every:
            return False
        try:
            with self._sessions() as session:
                latest = heads.latest(session)
                return size(session) - (latest.tree_size if latest else 0) >= every
        except Exception as exc:  # the database may be briefly unavailable: try again later
            log.warning("audit worker: cannot read the log's size: %s", exc)
            return False

    def _sign_quietly(self) -> None:
        started, started_ms = time.perf_counter(), int(time.time() * 1000)
        try:
            head = heads.sign(self._sessions, self._keystore)
        except Exception:
            log.exception("audit worker: signing a tree head failed; will retry")
            if self._on_sign is not None:
                self._on_sign(time.perf_counter() - started, False)
            return
        # A head stamped since we began is the one signed now (else the latest, unchanged).
        if self._on_sign is not None and head is not None and head.timestamp_ms >= started_ms:
            self._on_sign(time.perf_counter() - started, True)

    def _mirror_quietly(self) -> None:
        topic = self._settings.mirror_topic
        try:
            if self._producer is None:
                if not _reachable(self._bootstrap):
                    if not self._unreachable_said:
                        log.warning(
                            "audit mirror: Kafka at %s is unreachable; entries wait in the "
                            "database until it is back",
                            self._bootstrap,
                        )
                        self._unreachable_said = True
                    return
                self._unreachable_said = False
                ensure_topics(self._bootstrap, [topic], partitions=1)
                self._producer = Producer(
                    self._bootstrap, connect_timeout=5, client_id="exchange-audit-mirror"
                )
            mirror.publish_all(self._sessions, self._producer, topic, stop=self._stop.is_set)
        except ExchangeError as exc:
            log.warning("audit mirror: %s; will retry", exc.message)
        except Exception:
            log.exception("audit mirror failed; will retry")
