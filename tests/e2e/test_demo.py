"""The README's main job, end to end: `exchange demo` then `exchange down`.

Runs the real command line in a fresh directory with its own ports: a Kafka broker, the
registry builder and the gateway as separate processes, SQLite. Five departments publish
the same people; the caseworker's household view shows the applicant's household with
records from several departments; the summary's figures are checked against counts made
here, independently, from the registry database and the audit log.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from collections import Counter
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


def _figures(db: Path) -> tuple[int, int, int, dict[str, int], Counter[tuple[str, str, int]]]:
    """Counted straight from the registry database: person entities, those with records of
    2+ and 3+ departments, rows rejected by each connector's last run, audit entries."""
    with sqlite3.connect(db) as conn:
        spread = [
            n
            for (n,) in conn.execute(
                "SELECT COUNT(DISTINCT r.department) FROM source_records r "
                "JOIN entities e ON e.id = r.entity_id "
                "WHERE e.kind = 'person' AND NOT r.deleted GROUP BY r.entity_id"
            )
        ]
        rejected = dict(
            conn.execute(
                "SELECT connector_id, rejected FROM connector_runs WHERE rejected > 0"
            ).fetchall()
        )
        audit = Counter(
            (action, decision, status)
            for action, decision, status in conn.execute(
                "SELECT action, decision, status FROM audit_log"
            )
        )
    return (
        len(spread),
        sum(n >= 2 for n in spread),
        sum(n >= 3 for n in spread),
        rejected,
        audit,
    )


def test_the_demo_breaks_the_silos_for_a_household_and_down_leaves_nothing(
    tmp_path: Path,
) -> None:
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
        assert "Traceback" not in out + demo.stderr

        # Five departments publish; the rows they cannot map are rejected, with the reason.
        for line in (
            "household-registry-residents: read 19 = published 16 + rejected 3 (reconciled)",
            "household-registry-memberships: read 17 = published 16 + rejected 1 (reconciled)",
            "civil-affairs-benefit-payments: read 6 = published 5 + rejected 1 (reconciled)",
            "human-resources-insured-persons: read 13 = published 13 + rejected 0 (reconciled)",
            "human-resources-social-insurance: read 15 = published 14 + rejected 1 (reconciled)",
            "health-insurance-enrolments: read 16 = published 14 + rejected 2 (reconciled)",
            "market-regulation-businesses: read 5 = published 4 + rejected 1 (reconciled)",
        ):
            assert line in out
        for reason in (
            "resident_id.check_character",
            "'1975-02-30' is not a real date",
            "code '88' is not in the code table",
            "uscc.check_character",
            "uscc.length",
            "code '商业补充' is not in the code table",
        ):
            assert reason in out, reason

        # The household view: every member, their records across departments, how they joined.
        for member in ("张建国 · HEAD", "李秀兰 · SPOUSE", "张磊 · CHILD", "张静 · CHILD",
                       "王桂英 · PARENT"):  # fmt: skip
            assert member in out
        assert "浦东新区秀兰便利店" in out  # the wife's shop, from market regulation
        assert "MINIMUM_LIVING_ALLOWANCE" in out
        assert "UNEMPLOYED" in out
        assert "probabilistic (weight" in out  # the roster's row without an ID
        assert "31011519720314021X" not in out.split("try it yourself")[0]  # tokens only
        assert "'tax-assessment', which no grant serves -> 403" in out

        # The summary's figures equal counts made here from the registry and the audit log.
        people, several, three, rejected, audit = _figures(tmp_path / "var" / "registry.db")
        assert (
            f"people known to the registry: {people}; known to 2 or more departments: {several}"
        ) in out
        assert (people, several, three) == (16, 15, 12)
        assert f"Linkage: {several} of {people} people known to two or more departments" in out
        with sqlite3.connect(tmp_path / "var" / "registry.db") as conn:
            held = conn.execute(
                "SELECT department, COUNT(*) FROM source_records WHERE NOT deleted "
                "GROUP BY department ORDER BY department"
            ).fetchall()
            runs = conn.execute(
                "SELECT department, dataset, SUM(read), SUM(published), SUM(rejected) "
                "FROM connector_runs GROUP BY department, dataset"
            ).fetchall()
            applied = {
                (d, ds): n
                for d, ds, n in conn.execute(
                    "SELECT department, dataset, COUNT(*) FROM source_records "
                    "GROUP BY department, dataset"
                )
            }
            decided = conn.execute(
                "SELECT owner_department, dataset, COUNT(*), "
                "SUM(status = 'approved'), SUM(status = 'narrowed'), SUM(status = 'refused') "
                "FROM sharing_requests GROUP BY owner_department, dataset"
            ).fetchall()
        assert sum(rejected.values()) == 9
        # The indicators the demo prints equal counts made here from the registry's tables.
        cell = r"\s*│\s*"
        for department, dataset, read, published, rejects in runs:
            row = cell.join(
                map(re.escape, (department, dataset, "1", str(read), str(published), str(rejects)))
            )
            assert re.search(row, out), (department, dataset)
            tail = cell.join(["[^│]*", "0", "[^│]*", str(applied[(department, dataset)])])
            assert re.search(row + cell + tail + cell, out), (department, dataset, "applied")
        for owner, dataset, n, approved, narrowed, refused in decided:
            figures = (owner, dataset, n, approved, narrowed, refused, 0)
            assert re.search(cell.join(re.escape(str(f)) for f in figures), out), figures
        assert re.search(
            cell.join(["civil_affairs", "minimum-living-allowance", "[a-z_,]+", "1", "0"]), out
        )
        assert re.search(
            cell.join(["civil_affairs", "tax-assessment", "household_membership", "0", "1"]), out
        )
        report = tmp_path / "var" / "demo" / "indicators.html"
        assert "Sharing indicators" in report.read_text(encoding="utf-8")
        assert audit == {
            ("household.lookup", "allow", 200): 1,
            ("household.lookup", "deny", 403): 1,
            # Access is catalogue-driven: civil affairs asks for six datasets (organisation's
            # is granted on request) and once for tax assessment, which is refused; human
            # resources narrows its dataset; the other owners approve.
            ("sharing.request.submit", "allow", 201): 7,
            ("sharing.request.approve", "allow", 200): 4,
            ("sharing.request.narrow", "allow", 200): 1,
            ("sharing.request.refuse", "allow", 200): 1,
        }
        assert re.search(r"asks human_resources for social_insurance -> narrowed by", out)
        assert re.search(r"asks market_regulation for organisation -> approved by catalogue:", out)
        assert "person for tax-assessment -> refused: tax assessment is not a purpose" in out
        with sqlite3.connect(tmp_path / "var" / "registry.db") as conn:
            grants = conn.execute(
                "SELECT dataset, origin, fields FROM grants WHERE grantee_department = "
                "'civil_affairs' AND revoked_at IS NULL"
            ).fetchall()
        assert {origin for _, origin, _ in grants} == {"request"}
        [(narrowed,)] = [(json.loads(f),) for d, _, f in grants if d == "social_insurance"]
        assert "contribution_base_fen" not in narrowed
        assert "monthly_wage_fen" in narrowed

        # The request the reader is told to paste works against the running stack, and shows
        # a person whose records come from three or more departments.
        [curl] = [line for line in out.splitlines() if line.startswith("curl ")]
        key = re.search(r"X-API-Key: (\S+)'", curl)
        url = re.search(r"'(http://\S+)'$", curl)
        body = re.search(r"-d '([^']+)'", curl)
        assert key
        assert url
        assert body
        # The identifier travels in the body, never in the URL (issue 17, finding 9).
        assert "resident_id" in body.group(1)
        assert "/v1/households/lookup?" in url.group(1)
        response = httpx.post(
            url.group(1),
            content=body.group(1),
            headers={"X-API-Key": key.group(1), "Content-Type": "application/json"},
            timeout=30,
        )
        assert response.status_code == 200
        [household] = response.json()["households"]
        assert len(household["members"]) == 5
        head = household["members"][0]
        assert head["membership"]["fields"]["relationship_to_head"] == "HEAD"
        assert head["membership"]["fields"]["resident_id"].startswith("tk_")
        departments = {r["department"] for r in head["records"]}
        assert {"household_registry", "human_resources", "civil_affairs",
                "health_insurance"} <= departments  # fmt: skip
        [entity] = head["entity_ids"]
        assert {r["entity_id"] for r in head["records"]} == {entity}

        # The demo ends with the console's address and a key that signs in there.
        console = re.search(
            r"the web console: (http://\S+/ui/) \(sign in with the caseworker's key (\S+);", out
        )
        assert console, out[-2000:]
        assert console.group(1) == f"http://127.0.0.1:{gateway_port}/ui/"
        with httpx.Client(base_url=console.group(1), timeout=30) as browser:
            form = browser.get("sign-in")
            token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
            assert token
            signed = browser.post(
                "sign-in", data={"api_key": console.group(2), "csrf_token": token.group(1)}
            )
            assert signed.status_code == 303
            assert browser.get("").status_code == 200

        # An operator scrapes both processes locally: the gateway with the stack's token.
        gateway_metrics = f"http://127.0.0.1:{gateway_port}/metrics"
        assert httpx.get(gateway_metrics, timeout=10).status_code == 401
        token = (tmp_path / "var" / "metrics.token").read_text().strip()
        scraped = httpx.get(
            gateway_metrics, headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        assert scraped.status_code == 200
        assert 'route="/v1/households/lookup"' in scraped.text
        assert 'route="/v1/sharing/requests/{number}/approve"' in scraped.text
        builder = httpx.get(f"http://127.0.0.1:{builder_metrics_port}/metrics", timeout=10)
        applied = re.search(r"^exchange_registry_records_applied_total (\S+)$", builder.text, re.M)
        assert applied
        # Every record the registry holds was applied once by this builder.
        assert float(applied[1]) == sum(n for _, n in held)
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
