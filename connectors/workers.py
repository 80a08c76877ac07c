"""Preparing a connector run's records in worker processes, so the run uses every core.

A record's own work (map, validate, hash, encrypt, blind-index, encode, digest; see
:class:`~connectors.pipeline.RecordPreparer`) costs far more than reading the row
and producing the record, and one Python process computes on one core. With
:class:`ParallelPreparation` a connector run (``connectors.publisher``) keeps
reading the source, checking keys (the set of keys seen), producing, settling and
checkpointing in its own process, exactly as before, and hands the preparing to
worker processes in chunks of :data:`CHUNK_ROWS` admitted rows. Chunks are
concluded (counted, sent or dead-lettered) strictly in source order, so the
checkpoint still means "every row up to here was acknowledged by Kafka".

``processes`` counts the processes that prepare, the run's own included: ``N``
starts ``N - 1`` workers, and the run's process prepares a chunk itself whenever
every worker already holds :data:`DEPTH` chunks (also while the workers start,
and for a source shorter than one chunk, for which no worker is started at all).

What a worker gets (the first message, a :class:`~connectors.pipeline.PreparerSpec`):
the definition, the registered wire schema and the linkage key; and with each
chunk, the data key of the chunk's period. It gets no master key, no signing key
(the run's process signs each batch's manifests, once a batch) and no database:
the run's process takes every key from its own keystore, so the keys are created
(on first use of a dataset and month) in one process only, never by two workers
racing, and rotation and destruction reach the workers exactly as they reach the
run (through its keystore's cache). A worker computes each record's digest (what
its batch's manifest lists), so the run's process only sends.

Workers are plain ``python -c`` child processes (fork and exec) talking over two
pipes each: not forked from the run's process, whose librdkafka threads a fork
would copy in an unknown state, and not multiprocessing's ``spawn``, which would
import the caller's ``__main__`` (the whole CLI, or the benchmark) into every
worker. A worker ignores SIGINT (Ctrl-C stops the run, which stops its workers)
and exits when the run's process goes away, however it goes (its pipe closes).
A worker that fails or dies makes the run raise :class:`WorkerError`; the run
stops, and resumes from its last checkpoint when started again.

Rule of this module, as of ``connectors.pipeline``: no plaintext of a sensitive
field is ever logged; the keys cross only the pipes to the run's own children.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from connectors.mapping import Problem
from connectors.pipeline import (
    Admitted,
    Keys,
    Prepared,
    PreparerSpec,
    RecordPipeline,
    RecordPreparer,
    Tally,
)
from exchange.core.errors import WorkerError
from exchange.security.keystore import DataKey, FieldCipher, KeyStore

log = logging.getLogger(__name__)

CHUNK_ROWS = 1_000  # rows a worker prepares at a time: big enough that messages cost little
DEPTH = 2  # chunks a worker holds at most: one it works on, one waiting
ANSWER_TIMEOUT = 300.0  # seconds a worker may take over one chunk before the run gives up

# What a worker prepares: (values, source id); what it gives back for each:
# (framed value, content hash, digest, flags), or the problems that stop the row.
Item = tuple[dict[str, str], str]
# (value, content hash, digest, flags, source change time) or why the row cannot go.
Outcome = tuple[bytes, str, bytes, tuple[str, ...], str | None] | list[Problem]


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def prepare_items(preparer: RecordPreparer, items: list[Item], period: str) -> list[Outcome]:
    """Prepare a chunk's rows; the same in a worker and in the run."""
    outcomes: list[Outcome] = []
    for values, source_id in items:
        result = preparer.prepare(values, source_id, period=period)
        if isinstance(result, Prepared):
            outcomes.append(
                (
                    result.value,
                    result.content_hash,
                    result.digest,
                    result.flags,
                    result.source_changed_at,
                )
            )
        else:
            outcomes.append(result)
    return outcomes


# --------------------------------------------------------------------------- the worker side


class _HandedKeys(KeyStore):
    """A worker's keystore: only the data keys the run's process handed it."""

    def __init__(self) -> None:
        self._keys: dict[tuple[str, str], DataKey] = {}

    def hand(self, dataset: str, period: str, key: DataKey) -> None:
        self._keys[(dataset, period)] = key

    def data_key(self, dataset: str, period: str) -> DataKey:
        try:
            return self._keys[(dataset, period)]
        except KeyError:
            raise WorkerError(f"no data key of {dataset} {period} was handed over") from None

    def _unavailable(self) -> WorkerError:
        return WorkerError("a connector worker has only the data keys it was handed")

    def data_key_by_id(self, key_id: str) -> bytes:
        raise self._unavailable()

    def rotate_data_keys(self, dataset: str | None = None) -> int:
        raise self._unavailable()

    def rotate_kek(self) -> int:
        raise self._unavailable()

    def destroy(self, dataset: str, period: str | None = None) -> int:
        raise self._unavailable()

    def signing_key(self, department: str) -> tuple[str, bytes]:
        raise self._unavailable()

    def rotate_signing_key(self, department: str) -> str:
        raise self._unavailable()

    def public_keys(self, department: str) -> dict[str, bytes]:
        raise self._unavailable()


def _failure() -> tuple[str, str]:
    """The exception being handled, for the run's process: ``Type: message`` and traceback."""
    kind, value, _ = sys.exc_info()
    name = kind.__name__ if kind is not None else "Exception"
    return "error", f"{name}: {value}\n{traceback.format_exc()}"


def serve(tasks_fd: int, results_fd: int) -> None:
    """A worker's main loop: read chunks from ``tasks_fd``, answer on ``results_fd``.

    One thread reads and one writes, so neither side ever waits on a full pipe while
    the other waits for it; the main thread prepares.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    tasks = Connection(tasks_fd, writable=False)
    results = Connection(results_fd, readable=False)
    inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
    outbox: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def read() -> None:
        try:
            while True:
                inbox.put(tasks.recv())
        except (EOFError, OSError):  # the run stopped us, or went away
            inbox.put(None)

    def write() -> None:
        while (message := outbox.get()) is not None:
            try:
                results.send(message)
            except OSError:  # the run's process is gone: nobody wants the rest
                os._exit(1)

    threading.Thread(target=read, name="tasks", daemon=True).start()
    writer = threading.Thread(target=write, name="results")
    writer.start()
    try:
        keystore = _HandedKeys()
        try:
            spec: PreparerSpec | None = inbox.get()
            if spec is None:
                return
            preparer = RecordPreparer(spec, FieldCipher(keystore))
        except Exception:
            outbox.put(_failure())
            return
        outbox.put(("ready", None))
        while (task := inbox.get()) is not None:
            period, data_key, items = task
            try:
                if data_key is not None:
                    keystore.hand(preparer.dataset, period, data_key)
                outbox.put(("done", prepare_items(preparer, items, period)))
            except Exception:
                outbox.put(_failure())
    finally:
        outbox.put(None)
        writer.join()


# Run by a worker process; argv: the run's sys.path (JSON), the two pipe ends.
_BOOT = (
    "import json, sys; sys.path[:] = json.loads(sys.argv[1]); "
    "from connectors.workers import serve; serve(int(sys.argv[2]), int(sys.argv[3]))"
)


# --------------------------------------------------------------------------- the run's side


class _Worker:
    """The run's handle on one worker process."""

    def __init__(self, number: int, spec: PreparerSpec) -> None:
        self.number = number
        self.ready = False
        self.holding = 0  # chunks sent and not yet answered
        tasks_r, tasks_w = os.pipe()
        results_r, results_w = os.pipe()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _BOOT, json.dumps(sys.path), str(tasks_r), str(results_w)],
                pass_fds=(tasks_r, results_w),
                stdin=subprocess.DEVNULL,
            )
        except OSError as exc:
            for fd in (tasks_r, tasks_w, results_r, results_w):
                os.close(fd)
            raise WorkerError(f"cannot start connector worker {number}: {exc}") from exc
        os.close(tasks_r)
        os.close(results_w)
        self.tasks = Connection(tasks_w, readable=False)
        self.results = Connection(results_r, writable=False)
        self.send(spec)

    @property
    def name(self) -> str:
        return f"connector worker {self.number} (pid {self.process.pid})"

    def send(self, message: object) -> None:
        try:
            self.tasks.send(message)
        except OSError as exc:
            raise self._died("taking work") from exc

    def _died(self, doing: str) -> WorkerError:
        try:
            code: int | None = self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = None
        how = "stopped answering" if code is None else f"exited with status {code}"
        return WorkerError(
            f"{self.name} {how} while {doing}; the run stopped (run it again to resume "
            "from its last checkpoint)"
        )

    def receive(self, doing: str, timeout: float = ANSWER_TIMEOUT) -> Any:
        """The worker's next answer (waiting up to ``timeout``); WorkerError if it failed."""
        if not self.results.poll(timeout):
            raise WorkerError(f"{self.name} did not answer in {timeout:.0f} s while {doing}")
        try:
            kind, body = self.results.recv()
        except (EOFError, OSError) as exc:
            raise self._died(doing) from exc
        if kind == "error":
            summary, _, details = str(body).partition("\n")
            log.error("%s failed while %s:\n%s", self.name, doing, details)
            raise WorkerError(f"{self.name} failed while {doing}: {summary}")
        return body

    def check_ready(self) -> bool:
        """True once the worker has built its preparer; raises if it could not."""
        if not self.ready and self.results.poll(0):
            self.receive("starting")
            self.ready = True
        return self.ready

    def stop(self, *, wait: float) -> None:
        """Ask the worker to finish (if ``wait``) and let go of it; kill it if it lingers."""
        if wait:
            with contextlib.suppress(OSError):  # it is gone already: nothing to ask
                self.tasks.send(None)
        self.results.close()
        self.tasks.close()
        try:
            self.process.wait(timeout=wait or 1)
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop; killing it", self.name)
            self.process.kill()
            self.process.wait()


@dataclass
class _Chunk:
    """Rows admitted in source order and prepared together."""

    first: int  # source position of the first row
    rows: list[tuple[int, Admitted]] = field(default_factory=list)
    period: str = ""
    items: list[Item] = field(default_factory=list)  # what is prepared: rows with values
    worker: _Worker | None = None
    outcomes: list[Outcome] | None = None

    @property
    def describe(self) -> str:
        return f"preparing rows {self.first}-{self.rows[-1][0]}"


class ParallelPreparation:
    """Prepares admitted rows in worker processes; concludes them in source order.

    :meth:`put` takes each admitted row (in source order) with its position;
    ``on_row(position, dead_letter)`` is called once each row was concluded (counted
    in ``tally`` and sent or dead-lettered through ``pipeline``), in the same order.
    :meth:`finish` concludes what is left; :meth:`close` stops the workers (always
    call it, e.g. in ``finally``).
    """

    def __init__(
        self,
        pipeline: RecordPipeline,
        keys: Keys,
        processes: int,
        tally: Tally,
        on_row: Callable[[int, dict[str, Any] | None], None],
    ) -> None:
        self.pipeline = pipeline
        self.keys = keys
        self.processes = processes
        self.tally = tally
        self.on_row = on_row
        self.workers: list[_Worker] = []
        self._started = False
        self._chunks: deque[_Chunk] = deque()
        self._filling: _Chunk | None = None
        self._limit = (processes - 1) * DEPTH + 2  # chunks in hand: bounds the run's memory

    def put(self, position: int, admitted: Admitted) -> None:
        chunk = self._filling
        if chunk is None:
            chunk = self._filling = _Chunk(position)
        chunk.rows.append((position, admitted))
        if admitted.values is not None:
            chunk.items.append((admitted.values, admitted.source_id))
        if len(chunk.rows) >= CHUNK_ROWS:
            self._filling = None
            if not self._started:
                self._start()
            self._dispatch(chunk)

    def finish(self) -> None:
        """Prepare and conclude every row put so far."""
        if self._filling is not None:
            # A source shorter than one chunk is prepared here: no worker was started for it.
            chunk, self._filling = self._filling, None
            self._dispatch(chunk)
        while self._chunks:
            self._conclude_first(wait=True)

    def close(self) -> None:
        """Stop the workers: gently after :meth:`finish`, at once after a failure."""
        done = not self._chunks and self._filling is None
        for worker in self.workers:
            worker.stop(wait=10.0 if done else 0.0)
        self.workers.clear()

    def _start(self) -> None:
        self._started = True
        for number in range(1, self.processes):
            self.workers.append(_Worker(number, self.pipeline.preparer.spec))
        log.info("started %d connector worker(s)", len(self.workers))

    def _free_worker(self) -> _Worker | None:
        free = [w for w in self.workers if w.check_ready() and w.holding < DEPTH]
        return min(free, key=lambda w: w.holding, default=None)

    def _dispatch(self, chunk: _Chunk) -> None:
        self._conclude_ready()
        chunk.period = self.pipeline.period()
        worker = self._free_worker()
        if worker is None:  # every worker is busy (or still starting): prepare it here
            chunk.outcomes = prepare_items(self.pipeline.preparer, chunk.items, chunk.period)
        else:
            data_key = None
            if self.pipeline.preparer.needs_data_key:
                # Taken (or created) here, once, through the run's keystore and its cache.
                data_key = self.keys.keystore.data_key(self.pipeline.dataset, chunk.period)
            worker.send((chunk.period, data_key, chunk.items))
            worker.holding += 1
            chunk.worker = worker
        self._chunks.append(chunk)
        while len(self._chunks) > self._limit:
            self._conclude_first(wait=True)
        self._conclude_ready()

    def _conclude_ready(self) -> None:
        """Conclude the chunks at the front that are ready, without waiting."""
        while self._chunks:
            first = self._chunks[0]
            if first.outcomes is None:
                assert first.worker is not None
                if not first.worker.results.poll(0):
                    return
            self._conclude_first(wait=False)

    def _conclude_first(self, *, wait: bool) -> None:
        chunk = self._chunks.popleft()
        outcomes = chunk.outcomes
        if outcomes is None:
            worker = chunk.worker
            assert worker is not None
            outcomes = worker.receive(chunk.describe, ANSWER_TIMEOUT if wait else 0)
            worker.holding -= 1
            if outcomes is None or len(outcomes) != len(chunk.items):
                raise WorkerError(f"{worker.name} gave a malformed answer {chunk.describe}")
        pipeline, tally, on_row = self.pipeline, self.tally, self.on_row
        answers = iter(outcomes)
        for position, admitted in chunk.rows:
            result: Prepared | list[Problem] | None = None
            if admitted.values is not None:
                outcome = next(answers)
                if isinstance(outcome, tuple):
                    value, content_hash, digest, flags, changed = outcome
                    result = Prepared(
                        admitted.source_id, value, content_hash, digest, flags, changed
                    )
                else:
                    result = outcome
            on_row(position, pipeline.conclude(admitted, result, tally))
