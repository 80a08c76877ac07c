"""The caseworker's person page under load, beside the API's entity view, in the same run.

Issue 21: "the caseworker's person page under load costs at most 1.5 times the API lookup's
CPU, measured in the same run". Run from the project root::

    .venv/bin/python -m bench.console_person_page [--requests N] [--rounds R] [--clients C]

1. Runs ``exchange demo`` in a temporary directory, on ports of its own (its broker, builder
   and gateway; the registry the demo builds from five departments' exports, linked, with
   the civil affairs caseworker's grants made through sharing requests).
2. Starts a gateway of its own on that registry, with the command line ``exchange up``
   uses (``python -m uvicorn --factory gateway.asgi:app``, one worker, the rate limits
   off: every client shares one key), and measures that process's CPU from
   ``/proc/<pid>/stat`` (:mod:`bench.procstat`).
3. Signs in to the console once with the demo caseworker's key (the sign-in form), chooses
   the case (``minimum-living-allowance``, ``MZ-2026-0417``) and finds the applicant's
   entity with one API lookup.
4. For each round, the page then the API (the order alternates by round), ``C`` client
   threads share ``N`` requests: ``GET /ui/persons/{entity}`` with the session cookie
   (the purpose and case reference are the session's), and
   ``GET /v1/entities/{entity}?purpose=...&case_ref=...`` with the key in ``X-API-Key``.
   Both are the same work (:func:`gateway.query.entity_view`) and write one audit entry
   each; the page renders HTML (Jinja2) where the API serialises JSON. Any answer but 200
   fails the run.
5. Prints the gateway's CPU µs a request for each side (the median of the rounds), the
   ratio and the aim (≤ 1.5), the machine, and a markdown table row.

Progress goes to stderr, the report to stdout. Nothing is written into the repository.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.gateway_lookup import BenchmarkError, Server, log, start_server
from bench.procstat import tree_cpu_s
from bench.serde import machine_info
from exchange.core.config import DEV_DEMO_KEY, PROJECT_ROOT
from exchange.local import population
from exchange.local.broker import free_port

PURPOSE = "minimum-living-allowance"
CASE_REF = "MZ-2026-0417"
AIM = 1.5


def demo_env(root: Path) -> dict[str, str]:
    """The environment of a demo stack of its own in ``root`` (as the console's browser
    tests run it: tests/support/console.py)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXCHANGE_")}
    return env | {
        "EXCHANGE_DATA_DIR": str(root / "var"),
        "EXCHANGE_KAFKA__PORT": str(free_port()),
        "EXCHANGE_KAFKA__CONTROLLER_PORT": str(free_port()),
        "EXCHANGE_GATEWAY__PORT": str(free_port()),
        "EXCHANGE_REGISTRY__METRICS_PORT": str(free_port()),
        "COLUMNS": "200",
    }


def exchange(args: list[str], root: Path, env: dict[str, str], timeout: float = 600) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "exchange.cli", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise BenchmarkError(f"exchange {' '.join(args)} failed:\n{done.stdout}{done.stderr}")


def sign_in(url: str) -> httpx.Client:
    """A client signed in to the console with the demo caseworker's key, its case chosen."""
    client = httpx.Client(base_url=url, timeout=60, follow_redirects=True)
    client.get("/ui/sign-in")
    signed = client.post(
        "/ui/sign-in",
        data={
            "api_key": DEV_DEMO_KEY,
            "csrf_token": client.cookies.get("dx_signin") or "",
            "next": "/ui/",
        },
    )
    if signed.status_code != 200 or "dx_session" not in client.cookies:
        raise BenchmarkError(f"sign-in: {signed.status_code}")
    form = client.get("/ui/case")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    if token is None:
        raise BenchmarkError("case form: no CSRF token")
    chosen = client.post(
        "/ui/case",
        data={"purpose": PURPOSE, "case_ref": CASE_REF, "csrf_token": token.group(1)},
    )
    if chosen.status_code != 200:
        raise BenchmarkError(f"choosing the case: {chosen.status_code}")
    return client


def entity_of_applicant(url: str) -> str:
    answer = httpx.post(
        f"{url}/v1/persons/lookup",
        json={"resident_id": population.population().applicant.resident_id},
        params={"purpose": PURPOSE, "case_ref": CASE_REF},
        headers={"X-API-Key": DEV_DEMO_KEY},
        timeout=60,
    )
    if answer.status_code != 200 or not answer.json()["entity_ids"]:
        raise BenchmarkError(f"applicant lookup: {answer.status_code} {answer.text[:300]}")
    return str(answer.json()["entity_ids"][0])


@dataclass
class Side:
    name: str
    cpu_us: list[float] = field(default_factory=list)  # a request, per round
    wall_rps: list[float] = field(default_factory=list)
    size: int = 0  # bytes of one answer

    @property
    def median_us(self) -> float:
        return statistics.median(self.cpu_us)


def load(
    pid: int, requests: int, clients: int, make: Callable[[], httpx.Client], path: str
) -> tuple[float, float, int]:
    """``requests`` GETs of ``path`` from ``clients`` threads (each its own connection);
    the gateway's CPU µs a request, requests a second, and the size of an answer."""
    each = [requests // clients + (1 if i < requests % clients else 0) for i in range(clients)]
    sessions = [make() for _ in range(clients)]
    failures: list[str] = []
    sizes: list[int] = []

    def run(client: httpx.Client, count: int) -> None:
        for _ in range(count):
            answer = client.get(path)
            if answer.status_code != 200:
                failures.append(f"{path}: {answer.status_code} {answer.text[:200]}")
                return
        sizes.append(len(answer.content))

    for client in sessions:  # warm each connection
        client.get(path)
    threads = [
        threading.Thread(target=run, args=(c, n)) for c, n in zip(sessions, each, strict=True)
    ]
    before, started = tree_cpu_s(pid), time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed, cpu = time.perf_counter() - started, tree_cpu_s(pid) - before
    for client in sessions:
        client.close()
    if failures:
        raise BenchmarkError(failures[0])
    return cpu / requests * 1e6, requests / elapsed, max(sizes, default=0)


def run(requests: int, rounds: int, clients: int) -> tuple[Side, Side, dict[str, str]]:
    with tempfile.TemporaryDirectory(prefix="bench-console-") as folder:
        root = Path(folder)
        env = demo_env(root)
        log("running exchange demo (broker, builder, gateway, five departments) ...")
        try:
            exchange(["demo"], root, env)
            gateway_env = env | {
                "EXCHANGE_GATEWAY__RATE_LIMIT_PER_MINUTE": "0",
                "EXCHANGE_GATEWAY__REGISTRY_RATE_LIMIT_PER_MINUTE": "0",
            }
            gateway: Server = start_server("gateway", "gateway.asgi:app", gateway_env, root)
            try:
                return measure(gateway, requests, rounds, clients)
            finally:
                gateway.stop()
        finally:
            exchange(["down"], root, env, timeout=180)


def measure(
    gateway: Server, requests: int, rounds: int, clients: int
) -> tuple[Side, Side, dict[str, str]]:
    url, pid = gateway.url, gateway.process.pid
    entity = entity_of_applicant(url)
    signed = sign_in(url)
    cookies = dict(signed.cookies)
    signed.close()
    page = Side("console page")
    api = Side("API entity view")

    def page_client() -> httpx.Client:
        client = httpx.Client(base_url=url, timeout=60)
        for name, value in cookies.items():
            client.cookies.set(name, value, path="/ui")
        return client

    def api_client() -> httpx.Client:
        return httpx.Client(
            base_url=url,
            timeout=60,
            headers={"X-API-Key": DEV_DEMO_KEY},
            params={"purpose": PURPOSE, "case_ref": CASE_REF},
        )

    sides = [
        (page, page_client, f"/ui/persons/{entity}"),
        (api, api_client, f"/v1/entities/{entity}"),
    ]
    for number in range(rounds):
        for side, make, path in sides if number % 2 == 0 else sides[::-1]:
            cpu_us, rps, size = load(pid, requests, clients, make, path)
            side.cpu_us.append(cpu_us)
            side.wall_rps.append(rps)
            side.size = size
            log(f"round {number + 1}: {side.name}: {cpu_us:,.0f} µs CPU a request, {rps:,.0f}/s")
    return page, api, machine_info()


def report(page: Side, api: Side, info: dict[str, str], args: argparse.Namespace) -> str:
    ratio = page.median_us / api.median_us
    lines = [
        "",
        f"Console person page vs API entity view: {args.requests} requests a side a round, "
        f"{args.rounds} interleaved rounds, {args.clients} clients; the gateway's CPU "
        "(utime+stime of its process) a request, median of the rounds",
    ]
    lines += [f"  {key:<9} {value}" for key, value in info.items() if key != "fastavro"]
    lines.append("")
    header = f"{'side':<18}{'CPU µs/request':>16}{'rounds (µs)':>34}{'req/s':>8}{'bytes':>8}"
    lines += [header, "-" * len(header)]
    for side in (page, api):
        each = ", ".join(f"{v:,.0f}" for v in side.cpu_us)
        lines.append(
            f"{side.name:<18}{side.median_us:>16,.0f}{each:>34}"
            f"{statistics.median(side.wall_rps):>8,.0f}{side.size:>8,}"
        )
    verdict = "met" if ratio <= AIM else "NOT met"
    lines += [
        "",
        f"ratio page/API: {ratio:.2f} (aim ≤ {AIM}: {verdict})",
        "",
        "| date | machine | page µs CPU/req | API µs CPU/req | ratio | aim |",
        "|---|---|---|---|---|---|",
        f"| {info['date']} | {info['cpu']}, {info['cores']} | {page.median_us:,.0f} | "
        f"{api.median_us:,.0f} | {ratio:.2f} | ≤ {AIM} |",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--requests", type=int, default=500, help="requests a side a round")
    parser.add_argument("--rounds", type=int, default=4, help="interleaved rounds")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients")
    args = parser.parse_args(argv)
    os.chdir(PROJECT_ROOT)
    try:
        page, api, info = run(args.requests, args.rounds, args.clients)
    except BenchmarkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(report(page, api, info, args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
