"""Whether a transaction ended between two PostgreSQL snapshots (the catch-up's shortcut)."""

from __future__ import annotations

import pytest

from exchange.registry.assignment import committed_between


@pytest.mark.parametrize(
    ("before", "after", "own", "ended"),
    [
        ("5:10:", "5:10:", None, False),  # nothing happened
        ("5:10:5,7", "5:10:5,7", None, False),  # the same two still running
        ("5:10:5,7", "7:10:7", None, True),  # 5 ended
        ("5:10:", "5:12:10,11", None, False),  # two begun since, both running
        ("5:10:", "5:12:10", None, True),  # 11 begun since and ended
        ("5:10:", "5:12:10", 11, False),  # ... but 11 is this transaction
        ("5:10:9", "5:10:", 9, False),  # this transaction left the list: not another's end
        ("5:10:9", "5:11:", 9, True),  # 10 begun since and ended
    ],
)
def test_a_transaction_ended_between_two_snapshots(
    before: str, after: str, own: int | None, ended: bool
) -> None:
    assert committed_between(before, after, own) is ended
