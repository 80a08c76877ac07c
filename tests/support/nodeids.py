"""Every collected test has a node id of its own, so that every worker's test runs.

pytest-xdist hands tests to its workers by node id. schemathesis 4 names each
operation's test ``test_x[GET /v1/entities/{entity_id}]``, but under pytest 9.2
every one of them gets the node id ``...::test_x``: with two workers, one of the
45 operations ran and the other 44 vanished from the run without a word (the
summary counted 1,504 of 1,549 collected tests). This plugin (registered in
tests/conftest.py) puts the name's parameters back into such a node id, and
stops the run at collection if two tests still share one.
"""

from __future__ import annotations

from collections import Counter

import pytest


def _own_node_id(item: pytest.Item) -> None:
    name = item.name
    if "[" not in name or item.nodeid.endswith(name):
        return
    nodeid = f"{item.nodeid.rpartition('::')[0]}::{name}"
    if hasattr(item, "_id"):  # pytest >= 9.2: a structured NodeId
        item._id = type(item._id).parse(nodeid)
    else:
        item._nodeid = nodeid


def shared(items: list[pytest.Item]) -> list[str]:
    """The node ids that more than one collected test has."""
    return sorted(n for n, count in Counter(i.nodeid for i in items).items() if count > 1)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        _own_node_id(item)
    twice = shared(items)
    if twice:
        raise pytest.UsageError(
            "tests sharing a node id (pytest-xdist would run only one of each): " + ", ".join(twice)
        )
