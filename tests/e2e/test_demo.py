"""The README's main job, end to end: `exchange demo` then `exchange down`.

Runs the real command line in a fresh directory with its own ports: a Kafka
broker, the registry builder and the gateway as separate processes, SQLite.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from exchange.local.broker import free_port, pid_alive

pytestmark = pytest.mark.e2e


def _exchange(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 300):
    return subprocess.run(
        [sys.executable, "-m", "exchange.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_demo_serves_the_csv_person_and_down_leaves_nothing(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXCHANGE_")}
    gateway_port, builder_metrics_port = free_port(), free_port()
    env |= {
        "EXCHANGE_DATA_DIR": str(tmp_path / "var"),
        "EXCHANGE_KAFKA__PORT": str(free_port()),
        "EXCHANGE_KAFKA__CONTROLLER_PORT": str(free_port()),
        "EXCHANGE_GATEWAY__PORT": str(gateway_port),
        "EXCHANGE_REGISTRY__METRICS_PORT": str(builder_metrics_port),
        "COLUMNS": "200",
    }
    pids: list[int] = []
    try:
        demo = _exchange(["demo"], tmp_path, env)
        assert demo.returncode == 0, demo.stdout + demo.stderr
        out = demo.stdout
        assert "read 11 = published 8 + rejected 3 (reconciled)" in out
        assert "resident_id.check_character" in out
        assert "registry holds 8 person records" in out
        assert '"department": "household_registry"' in out
        assert "Traceback" not in out + demo.stderr

        # The query the README tells the reader to paste works against the running stack.
        [curl] = [line for line in out.splitlines() if line.startswith("curl ")]
        key = re.search(r"X-API-Key: (\S+)'", curl)
        url = re.search(r"'(http://\S+)'$", curl)
        body = re.search(r"-d '([^']+)'", curl)
        assert key
        assert url
        assert body
        # The identifier travels in the body, never in the URL (issue 17, finding 9).
        assert "resident_id" in body.group(1)
        assert "/v1/persons/lookup?" in url.group(1)
        response = httpx.post(
            url.group(1),
            content=body.group(1),
            headers={"X-API-Key": key.group(1), "Content-Type": "application/json"},
            timeout=30,
        )
        assert response.status_code == 200
        person = response.json()
        assert person["records"][0]["department"] == "household_registry"
        assert person["records"][0]["fields"]["full_name"]
        record = person["records"][0]["fields"]
        # Birth date and division are shown in full, so the identifier is a token (issue 17).
        assert record["resident_id"].startswith("tk_")
        assert record["birth_date"]
        assert "*" in record["phone"]
        assert "resident_id_bidx" not in record
        assert "tax-assessment" in out
        assert "-> 403" in out

        # An operator scrapes both processes locally: the gateway with the stack's token.
        gateway_metrics = f"http://127.0.0.1:{gateway_port}/metrics"
        assert httpx.get(gateway_metrics, timeout=10).status_code == 401
        token = (tmp_path / "var" / "metrics.token").read_text().strip()
        scraped = httpx.get(
            gateway_metrics, headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        assert scraped.status_code == 200
        assert 'route="/v1/persons/lookup"' in scraped.text
        builder = httpx.get(f"http://127.0.0.1:{builder_metrics_port}/metrics", timeout=10)
        applied = re.search(r"^exchange_registry_records_applied_total (\S+)$", builder.text, re.M)
        assert applied
        assert float(applied[1]) >= 8
        assert httpx.get(f"http://127.0.0.1:{gateway_port}/readyz", timeout=10).status_code == 200

        status = _exchange(["status"], tmp_path, env)
        pids = [int(p) for p in re.findall(r"running\s*│\s*(\d+)", status.stdout)]
        assert len(pids) == 3, status.stdout

        verify = _exchange(["audit", "verify"], tmp_path, env)
        assert verify.returncode == 0
        assert "intact" in verify.stdout
    finally:
        down = _exchange(["down"], tmp_path, env)
    assert down.returncode == 0, down.stdout + down.stderr
    assert not any(pid_alive(pid) for pid in pids)
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{gateway_port}/healthz", timeout=2)
