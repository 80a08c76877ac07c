"""Request ids: fresh, well-formed, and drawn from the operating system in blocks."""

from __future__ import annotations

import os
import re
import uuid

import pytest

from gateway.requestid import RequestIds

UUID4_HEX = re.compile(r"[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}")


def test_ids_are_distinct_uuid4s_across_blocks() -> None:
    ids = RequestIds()
    drawn = [ids.next() for _ in range(3 * RequestIds.PER_BLOCK + 7)]
    assert len(set(drawn)) == len(drawn)
    for one in drawn:
        assert UUID4_HEX.fullmatch(one), one
        assert uuid.UUID(hex=one).version == 4


def test_the_kernel_is_asked_once_a_block_not_once_an_id(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = os.urandom

    def counting(n: int) -> bytes:
        calls.append(n)
        return real(n)

    monkeypatch.setattr(os, "urandom", counting)
    ids = RequestIds()
    for _ in range(2 * RequestIds.PER_BLOCK + 1):
        ids.next()
    assert calls == [16 * RequestIds.PER_BLOCK] * 3
