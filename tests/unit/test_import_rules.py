"""The import rules of the layout (``.importlinter``) hold, and a wrong arrow breaks them.

Each case copies the four packages to a temporary folder, adds one import that
points the wrong way, and runs ``lint-imports`` on the copy: the contract that
forbids that arrow must be reported broken.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("exchange", "schemas", "connectors", "gateway")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

CONTRACTS = {
    "layers": "exchange/ is layered",
    "top": "gateway, connectors > exchange's subsystems > schemas > exchange.core",
    "entry": "Nothing imports the command line or the local stack but the entry points",
    "crypto": "Only exchange.security.crypto touches cryptographic primitives",
}


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(tree / ".importlinter")],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / ".importlinter", tmp_path / ".importlinter")
    return tmp_path


def _broken(output: str) -> set[str]:
    return {key for key, name in CONTRACTS.items() if f"{name}" in output.split("Broken")[-1]}


def test_the_tree_keeps_every_contract(tree: Path) -> None:
    result = _lint(tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Contracts: {len(CONTRACTS)} kept, 0 broken." in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        # core is the bottom layer: it may not reach up to the audit log.
        ("exchange/core/config.py", "from exchange.audit import log", "layers"),
        # a sibling layer may not reach up: access below registry.
        ("exchange/access/policy.py", "from exchange.registry import records", "layers"),
        # schemas imports only exchange.core.
        ("schemas/standards.py", "from exchange.security import keystore", "top"),
        # the exchange never imports the gateway.
        ("exchange/audit/search.py", "from gateway import problems", "top"),
        # only the entry points import the command line and the local stack.
        ("gateway/views.py", "from exchange.local import broker", "entry"),
        ("exchange/registry/builder.py", "from exchange.cli import main", "entry"),
        # only exchange.security.crypto touches primitives.
        ("exchange/identity/apikeys.py", "import hmac", "crypto"),
        ("exchange/security/keystore.py", "from cryptography.fernet import Fernet", "crypto"),
        ("connectors/pipeline.py", "import nacl.signing", "crypto"),
    ],
)
def test_a_wrong_import_breaks_its_contract(
    tree: Path, module: str, line: str, contract: str
) -> None:
    path = tree / module
    path.write_text(path.read_text(encoding="utf-8") + f"\n{line}  # noqa\n", encoding="utf-8")
    result = _lint(tree)
    assert result.returncode == 1, result.stdout + result.stderr
    assert contract in _broken(result.stdout), result.stdout
