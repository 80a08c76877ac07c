"""tests/support/nodeids.py: every collected test has a node id of its own.

pytest-xdist runs tests by node id; two tests sharing one were silently dropped
(44 of the 48 OpenAPI contract tests, whose schemathesis items all had one id).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

from tests.support.nodeids import shared

ROOT = Path(__file__).resolve().parents[2]


def _items(*nodeids: str) -> Any:
    return cast(Any, [SimpleNamespace(nodeid=n) for n in nodeids])


def test_shared_names_each_node_id_held_twice() -> None:
    assert shared(_items("a::t", "a::u", "a::t", "b::t")) == ["a::t"]
    assert shared(_items("a::t[1]", "a::t[2]")) == []


def test_the_contract_tests_collect_with_a_node_id_each() -> None:
    collected = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q",
         "tests/integration/test_openapi_contract.py"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=True,
    ).stdout.splitlines()  # fmt: skip
    ids = [line for line in collected if "::" in line]
    operations = [i for i in ids if "::test_operation_honours_its_documented_contract[" in i]
    assert len(operations) > 20  # one a documented operation of the gateway
    assert "test_operation_honours_its_documented_contract[POST /v1/persons/lookup]" in "\n".join(
        ids
    )
    assert len(set(ids)) == len(ids)
