"""Running the suite on several pytest-xdist workers (``scripts/test.sh`` uses two).

Each worker is its own pytest session: it starts its own session broker and
PostgreSQL server (tests/conftest.py) in its own temporary directory, so workers
share no topic, consumer group or database, and ``--dist loadfile`` keeps each
test file on one worker (a module's fixtures, e.g. a 3-broker cluster, start
once). What the workers do share is the machine's ports: every worker chooses
free ports at random below the ephemeral range (``exchange.local.broker.free_port``),
and between choosing a port and a broker binding it another worker could choose
it too. Each worker therefore takes only the ports of its own stripe (port
modulo the number of workers).

Registered in tests/conftest.py; without ``-n`` it does nothing.
"""

from __future__ import annotations

import pytest

from exchange.local import broker


def pytest_configure(config: pytest.Config) -> None:
    workerinput = getattr(config, "workerinput", None)
    if workerinput is None:  # not an xdist worker
        return
    index = int(workerinput["workerid"].removeprefix("gw"))
    count = int(workerinput["workercount"])
    if count > 1:
        # free_port never hands out a port it has issued: the other stripes count as issued.
        broker._ISSUED_PORTS.update(p for p in range(1024, 65536) if p % count != index)
