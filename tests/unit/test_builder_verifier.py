"""The builder's signature-verification processes do not outlive a builder killed outright."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# A stand-in builder: starts the verification pool the builder uses, runs one (empty)
# chunk so its worker exists, prints the worker's pid, then waits to be killed.
BUILDER = """
import sys, time
from exchange.registry.builder import _Verifier
verifier = _Verifier(1)
for _, _, refusals in verifier.start([]):
    refusals()
verifier._executor().submit(sum, []).result()
print(*verifier._executor()._processes, flush=True)
time.sleep(120)
"""


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return True
    return state in {"Z", "X"}  # exited; a zombie waits only for its new parent to reap it


def test_verification_processes_exit_when_their_builder_is_killed() -> None:
    builder = subprocess.Popen(
        [sys.executable, "-c", BUILDER], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert builder.stdout is not None
        workers = [int(pid) for pid in builder.stdout.readline().split()]
        assert workers, "the builder started no verification process"
        assert not any(_gone(pid) for pid in workers)
    finally:
        builder.send_signal(signal.SIGKILL)
        builder.wait(timeout=30)
        if builder.stdout is not None:
            builder.stdout.close()
    deadline = time.monotonic() + 30
    while not all(_gone(pid) for pid in workers):
        if time.monotonic() > deadline:
            for pid in workers:  # leave nothing behind, then fail
                if not _gone(pid):
                    os.kill(pid, signal.SIGKILL)
            raise AssertionError(f"verification processes {workers} outlived their builder")
        time.sleep(0.2)
