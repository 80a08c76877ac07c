"""Gateway person lookup under load, beside a bare FastAPI endpoint sending the same bytes.

Run from the project root (needs wrk: ``bash scripts/bench-setup.sh`` installs it)::

    .venv/bin/python -m bench.gateway_lookup [--persons N] [--duration S] [--connections C]

1. Builds a data directory in a temporary folder: a SQLite registry holding
   ``N`` persons, each published by two departments (household registry and
   social security: two records a person, linked to one entity), the real way:
   each department's connector (:func:`connectors.run_connector`: map,
   validate, encrypt the sensitive fields, blind-index, sign) produces through
   its own single-node Kafka broker (:class:`exchange.local.broker.LocalKafka`), and
   a :class:`exchange.registry.builder.RegistryBuilder` consumes the topics into the
   registry until it has applied all ``2N`` records. The broker is then stopped
   (a lookup does not use Kafka).
2. Creates a caseworker's API key and, through the access catalogue's API
   (:mod:`exchange.access.catalogue`), the departments, the purpose and a grant for
   the ``person`` dataset (:func:`grant_caseworker`). The gateway's rate limit
   is turned off (``EXCHANGE_GATEWAY__RATE_LIMIT_PER_MINUTE=0``): wrk's
   connections share one key.
3. Starts the real gateway with the command line ``exchange up`` uses
   (``python -m uvicorn --factory gateway.asgi:app --host 127.0.0.1 --port P
   --log-level warning``: one worker) and checks one lookup (200, both
   departments' records, decrypted values equal to the exports, identifier
   masked). That response's JSON becomes the body of the bare endpoint
   (:mod:`bench.bare_app`), served by uvicorn with the same options.
4. For each round, bare then gateway (the order alternates by round): wrk
   from a separate process, ``-t2 -c<C> -d<S> --latency --timeout 60s``, after
   a short warm-up, with a Lua script that sends
   ``GET /v1/persons/<id>?purpose=...&case_ref=...`` with the key in
   ``X-API-Key``, cycling through every published identifier (each thread from
   its own offset), so no response comes from one cached row. Any non-2xx
   response or socket error fails the run (exit status 1).
5. Checks that the audit log holds at least one entry for every lookup wrk
   counted, and prints requests/s, p50 and p99 of each side, the ratios
   against the aim (throughput ≥ 0.40 of the bare endpoint's, p99 ≤ 2.5 times
   its p99), the load average at start and end, and a markdown table row.

Progress goes to stderr, the report to stdout. Nothing is written into the
repository.
"""

from __future__ import annotations

import argparse
import base64
import csv
import json
import os
import random
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bench.serde import machine_info
from connectors import load_definition, run_connector
from connectors.pipeline import Keys
from exchange.core.config import PROJECT_ROOT, Settings
from exchange.core.db import make_engine, migrate, session_factory, transaction
from exchange.core.models import AuditEntry, SourceRecord
from exchange.identity.apikeys import create_key
from exchange.local.broker import LocalKafka, free_port
from exchange.local.demo import resident_number
from exchange.registry.builder import RegistryBuilder
from exchange.security.keystore import LocalKeyStore

DEFAULT_PERSONS = 10_000
DEFAULT_DURATION_S = 30
DEFAULT_CONNECTIONS = 50
WARMUP_S = 3
PURPOSE = "minimum-living-allowance-eligibility"
CASEWORKER_DEPARTMENT = "civil_affairs"
AIM_THROUGHPUT = 0.40
AIM_P99 = 2.5
BUILD_TIMEOUT_S = 1800.0
DIVISIONS = ("110105", "110108", "310104", "310115", "440106", "440305", "330106")
SURNAMES = ("王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴")
GIVEN = ("秀英", "伟", "芳", "娜", "敏", "静", "磊", "洋", "艳", "勇", "军", "杰")
DEPARTMENTS = ("household_registry", "social_security")
COLUMNS = ("local_id", "id_number", "surname", "given", "dob", "sex", "division", "phone")
DEFINITION = """\
[connector]
id = "bench-{department}"
version = "1"
department = "{department}"
standard = "person"

[source]
type = "csv"
path = "{department}.csv"
key = "local_id"

[fields.resident_id]
from = "id_number"

[fields.family_name]
from = "surname"

[fields.given_name]
from = "given"

[fields.full_name]
join = ["surname", "given"]

[fields.birth_date]
from = "dob"

[fields.sex]
from = "sex"
codes = {{ "1" = "MALE", "2" = "FEMALE" }}

[fields.residence_division_code]
from = "division"

[fields.phone]
from = "phone"
"""

WRK_MISSING = (
    "wrk is not installed; install it with `bash scripts/bench-setup.sh` "
    "(Debian's package: apt-get install -y wrk)"
)

LUA = """\
-- Generated by bench.gateway_lookup: cycle through every published identifier.
local ids = {%(ids)s}
local query = "?purpose=%(purpose)s&case_ref="
local counter = 0
local threads = 0

function setup(thread)
  thread:set("offset", threads * math.floor(#ids / 2))
  threads = threads + 1
end

function init(args)
  counter = tonumber(offset) or 0
  wrk.headers["X-API-Key"] = "%(key)s"
end

function request()
  counter = counter + 1
  local id = ids[(counter %% #ids) + 1]
  return wrk.format("GET", "/v1/persons/" .. id .. query .. "BENCH-" .. counter)
end
"""


class BenchmarkError(RuntimeError):
    """A check failed: the timings would mean nothing."""


def log(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# The data directory
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    resident_id: str
    surname: str
    given: str
    born: date
    sex: str
    division: str
    phone: str


def people(count: int, seed: int = 11) -> list[Person]:
    """``count`` distinct synthetic persons with valid resident identity numbers."""
    rng = random.Random(seed)
    found: dict[str, Person] = {}
    serial = 0
    while len(found) < count:
        serial += 1
        born = date(1940, 1, 1) + timedelta(days=rng.randrange(0, 365 * 80))
        sex = rng.choice("12")
        division = rng.choice(DIVISIONS)
        number = resident_number(division, born, serial % 500, sex)
        if number not in found:
            found[number] = Person(
                number,
                rng.choice(SURNAMES),
                rng.choice(GIVEN),
                born,
                sex,
                division,
                f"13{rng.randrange(0, 10**9):09d}",
            )
    return list(found.values())


def write_exports(folder: Path, persons: list[Person]) -> list[Path]:
    """One CSV export and connector definition per department, every person in each."""
    folder.mkdir(parents=True, exist_ok=True)
    definitions = []
    for d, department in enumerate(DEPARTMENTS):
        with (folder / f"{department}.csv").open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(COLUMNS)
            for i, p in enumerate(persons):
                writer.writerow(
                    [f"{department[:2].upper()}-{i}", p.resident_id, p.surname, p.given,
                     p.born.isoformat(), p.sex, p.division, p.phone if d == 0 else ""]
                )  # fmt: skip
        path = folder / f"{department}.toml"
        path.write_text(DEFINITION.format(department=department), encoding="utf-8")
        definitions.append(path)
    return definitions


def publish_and_build(base: Path, settings: Settings, definitions: list[Path], total: int) -> None:
    """Connector runs through a real broker, then the registry builder until ``total``."""
    engine = make_engine(settings.db_url)
    migrate(engine)
    sessions = session_factory(engine)
    keystore = LocalKeyStore(sessions, base64.b64decode(_secret(settings.master_key)))
    linkage_key = settings.linkage_key.get_secret_value().encode()
    keys = Keys(keystore, linkage_key)
    broker = LocalKafka(base / "kafka", size=1, heap="512m")
    log("starting a single-node Kafka broker (heap 512m) ...")
    try:
        broker.start()
        bootstrap = broker.bootstrap_servers
        from schemas import SchemaStore

        for path in definitions:
            started = time.perf_counter()
            report = run_connector(
                load_definition(path), bootstrap=bootstrap, store=SchemaStore(sessions), keys=keys
            )
            log(
                f"  {path.stem}: {report.published:,} published, {report.rejected:,} rejected "
                f"in {time.perf_counter() - started:,.1f} s"
            )
            if report.rejected:
                raise BenchmarkError(f"{path.stem}: rows rejected: {report.reasons}")
        log(f"building the registry ({total:,} records) ...")
        started = time.perf_counter()
        builder = RegistryBuilder(
            bootstrap,
            sessions,
            linkage_key=linkage_key,
            keystore=keystore,
            group_id=f"bench-gateway-{uuid.uuid4().hex[:8]}",
        )
        try:
            while builder.stats.seen < total:
                if time.perf_counter() - started > BUILD_TIMEOUT_S:
                    raise BenchmarkError(f"the builder applied {builder.stats.seen} of {total}")
                builder.poll_once(500)
        finally:
            builder.close()
        log(f"  built in {time.perf_counter() - started:,.1f} s")
        with sessions() as session:
            live = session.scalar(
                select(func.count())
                .select_from(SourceRecord)
                .where(SourceRecord.deleted.is_(False))
            )
        if live != total or builder.stats.dead_lettered:
            raise BenchmarkError(
                f"registry holds {live} live records of {total}; "
                f"{builder.stats.dead_lettered} dead-lettered"
            )
    finally:
        log("stopping the broker ...")
        broker.stop()
        engine.dispose()


def _secret(value: Any) -> str:
    return str(value.get_secret_value())


# --- ACCESS CATALOGUE STEP --------------------------------------------------
# The gateway denies by default: the caseworkers get their grant through the
# catalogue's own API (exchange.access.catalogue), as an administrator's would be.


def grant_caseworker(sessions: sessionmaker[Session]) -> str:
    """Give the caseworkers of ``civil_affairs`` every field of ``person`` for ``PURPOSE``.

    Returns what it did, for the report.
    """
    from exchange.access import catalogue
    from exchange.core import models
    from schemas.standards import load_standard

    fields = {f.name: "full" for f in load_standard("person").fields}
    fields["resident_id"] = "masked"
    with transaction(sessions) as session:
        for code in (CASEWORKER_DEPARTMENT, *DEPARTMENTS):
            if session.get(models.Department, code) is None:
                session.add(models.Department(code=code, name=code.replace("_", " ")))
        if session.get(models.Purpose, PURPOSE) is None:
            catalogue.add_purpose(session, PURPOSE, "Minimum living allowance review")
        grant = catalogue.add_grant(
            session,
            catalogue.GrantSpec(
                department=CASEWORKER_DEPARTMENT,
                role="caseworker",
                dataset="person",
                fields=fields,
                purposes=[PURPOSE],
                row_constraints={},
                note="bench.gateway_lookup",
            ),
            created_by="bench",
            at=datetime.now(UTC) - timedelta(minutes=1),
        )
    return (
        f"grant {grant.id} (exchange.access.catalogue.add_grant): "
        f"{CASEWORKER_DEPARTMENT}/caseworker, "
        f"person, {len(fields)} fields"
    )


def caseworker_key(sessions: sessionmaker[Session]) -> str:
    with transaction(sessions) as session:
        return create_key(
            session, actor="bench.caseworker", department=CASEWORKER_DEPARTMENT, role="caseworker"
        )


# --------------------------------------------------------------------------
# Servers
# --------------------------------------------------------------------------


def uvicorn_argv(factory: str, port: int, module: str = "uvicorn") -> list[str]:
    """The command line of ``exchange up`` (exchange/local/stack.py) for ``factory``."""
    return [sys.executable, "-m", module, "--factory", factory, "--host", "127.0.0.1",
            "--port", str(port), "--log-level", "warning"]  # fmt: skip


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    url: str
    log_path: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start_server(
    name: str, factory: str, env: dict[str, str], logs: Path, module: str = "uvicorn"
) -> Server:
    port = free_port()
    log_path = logs / f"{name}.log"
    with log_path.open("ab") as out:
        process = subprocess.Popen(
            uvicorn_argv(factory, port, module),
            cwd=PROJECT_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(name, process, f"http://127.0.0.1:{port}", log_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchmarkError(f"{name} exited at start:\n{log_path.read_text()[-2000:]}")
        try:
            httpx.get(f"{server.url}/v1/persons/x", timeout=2)
            return server
        except httpx.HTTPError:
            time.sleep(0.3)
    server.stop()
    raise BenchmarkError(f"{name} did not answer within 60 s")


def check_lookup(url: str, key: str, person: Person) -> bytes:
    """One lookup must return both departments' records with the published values."""
    response = httpx.get(
        f"{url}/v1/persons/{person.resident_id}",
        params={"purpose": PURPOSE, "case_ref": "BENCH-CHECK"},
        headers={"X-API-Key": key},
        timeout=30,
    )
    if response.status_code != 200:
        raise BenchmarkError(f"check lookup: {response.status_code} {response.text[:500]}")
    body = response.json()
    departments = sorted(r["department"] for r in body.get("records", []))
    if departments != sorted(DEPARTMENTS):
        raise BenchmarkError(f"check lookup: records from {departments}")
    for record in body["records"]:
        fields = record["fields"]
        if fields.get("full_name") != person.surname + person.given:
            raise BenchmarkError(f"check lookup: full_name {fields.get('full_name')!r}")
        if fields.get("resident_id") == person.resident_id or record.get("unreadable_fields"):
            raise BenchmarkError("check lookup: identifier not masked, or fields unreadable")
    phones = [r["fields"].get("phone") for r in body["records"]]
    if person.phone not in phones:
        raise BenchmarkError(f"check lookup: phone {phones} (published {person.phone})")
    return response.content


# --------------------------------------------------------------------------
# wrk
# --------------------------------------------------------------------------


@dataclass
class WrkResult:
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int
    raw: str = field(repr=False, default="")


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise BenchmarkError(f"unreadable wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(output: str) -> WrkResult:
    """Requests, requests/s, p50, p99, non-2xx and socket errors from wrk's report."""
    requests = re.search(r"(\d+) requests in", output)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.M)
    if not (requests and rps and p50 and p99):
        raise BenchmarkError(f"unreadable wrk output:\n{output}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return WrkResult(
        requests=int(requests.group(1)),
        rps=float(rps.group(1)),
        p50_ms=_ms(p50.group(1)),
        p99_ms=_ms(p99.group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(g) for g in errors.groups()) if errors else 0,
        raw=output,
    )


def run_wrk(url: str, script: Path, connections: int, duration: int) -> WrkResult:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise BenchmarkError(WRK_MISSING)
    argv = [wrk, "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "60s",
            "-s", str(script), url]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 120, check=False)
    if done.returncode != 0:
        raise BenchmarkError(f"wrk failed ({done.returncode}): {done.stderr}")
    return parse_wrk(done.stdout)


def start_py_spy(pid: int, output: Path, duration: int) -> subprocess.Popen[bytes]:
    """Sample ``pid`` with py-spy (``pip install py-spy``) for ``duration`` seconds into
    ``output`` as collapsed stacks, without pausing it (``--nonblocking``)."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        raise BenchmarkError("--py-spy needs py-spy: .venv/bin/pip install py-spy")
    argv = [spy, "record", "--pid", str(pid), "--duration", str(duration), "--rate", "200",
            "--format", "raw", "--nonblocking", "--idle", "--threads",
            "--output", str(output)]  # fmt: skip
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def write_lua(path: Path, ids: list[str], key: str) -> None:
    quoted = ",".join(f'"{i}"' for i in ids)
    path.write_text(LUA % {"ids": quoted, "purpose": PURPOSE, "key": key}, encoding="utf-8")
    path.chmod(0o600)


# --------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------


@dataclass
class Outcome:
    info: dict[str, str]
    persons: int
    body_bytes: int
    catalogue: str
    variant: str
    bare: list[WrkResult]
    gateway: list[WrkResult]
    audited: int
    load_start: tuple[float, float, float]
    load_end: tuple[float, float, float]
    finished: str

    def median(self, side: list[WrkResult], attr: str) -> float:
        return float(statistics.median(float(getattr(r, attr)) for r in side))

    @property
    def throughput_ratio(self) -> float:
        return self.median(self.gateway, "rps") / self.median(self.bare, "rps")

    @property
    def p99_ratio(self) -> float:
        return self.median(self.gateway, "p99_ms") / self.median(self.bare, "p99_ms")


def run(
    base: Path,
    persons: int,
    duration: int,
    connections: int,
    rounds: int,
    warmup: int,
    *,
    py_spy: Path | None = None,
) -> Outcome:
    if shutil.which("wrk") is None:
        raise BenchmarkError(WRK_MISSING)
    info = machine_info()
    load_start = os.getloadavg()
    data_dir = base / "data"
    data_dir.mkdir(parents=True)
    master_key = base64.b64encode(secrets.token_bytes(32)).decode()
    linkage_key = secrets.token_urlsafe(32)
    # The servers read only these settings (no EXCHANGE_CONFIG file: none in the project root).
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXCHANGE_")}
    env.update(
        {
            "EXCHANGE_DATA_DIR": str(data_dir),
            "EXCHANGE_MASTER_KEY": master_key,
            "EXCHANGE_LINKAGE_KEY": linkage_key,
            "PYTHONUNBUFFERED": "1",
            # wrk's 50 connections share one key: the per-identity limit would answer 429s.
            "EXCHANGE_GATEWAY__RATE_LIMIT_PER_MINUTE": "0",
        }
    )
    settings = Settings(
        data_dir=data_dir, master_key=SecretStr(master_key), linkage_key=SecretStr(linkage_key)
    )
    # For --keep-dir: what serving this registry again needs (test keys of a throwaway run).
    (base / "server-env.json").write_text(
        json.dumps({k: v for k, v in env.items() if k.startswith("EXCHANGE_")})
    )
    population = people(persons)
    definitions = write_exports(base / "exports", population)
    log(f"publishing {persons:,} persons from {len(DEPARTMENTS)} departments ...")
    publish_and_build(base, settings, definitions, persons * len(DEPARTMENTS))
    engine = make_engine(settings.db_url)
    sessions = session_factory(engine)
    catalogue = grant_caseworker(sessions)
    log(f"access catalogue: {catalogue}")
    key = caseworker_key(sessions)
    script = base / "lookup.lua"
    write_lua(script, [p.resident_id for p in population], key)
    logs = base / "logs"
    logs.mkdir()
    servers: list[Server] = []
    bare: list[WrkResult] = []
    gateway: list[WrkResult] = []
    try:
        log("starting the gateway (uvicorn, one worker) ...")
        real = start_server("gateway", "gateway.asgi:app", env, logs)
        servers.append(real)
        body = check_lookup(real.url, key, population[0])
        (base / "body.json").write_bytes(body)
        log(f"check lookup passed; response body {len(body):,} bytes")
        log("starting the bare endpoint (uvicorn, one worker) ...")
        bare_server = start_server(
            "bare", "bench.bare_app:app", {**env, "BENCH_BARE_BODY": str(base / "body.json")}, logs
        )
        servers.append(bare_server)
        bare_body = httpx.get(f"{bare_server.url}/v1/persons/x", timeout=10).content
        if len(bare_body) != len(body):
            raise BenchmarkError(f"bare body {len(bare_body)} bytes, gateway's {len(body)}")
        with sessions() as session:
            audited_before = session.scalar(select(func.count()).select_from(AuditEntry)) or 0
        for round_no in range(rounds):
            order = [("bare", bare_server, bare), ("gateway", real, gateway)]
            if round_no % 2:
                order.reverse()
            for name, server, results in order:
                if warmup:
                    run_wrk(server.url, script, connections, warmup)
                spy = None
                if py_spy is not None and name == "gateway":
                    spy = start_py_spy(server.process.pid, py_spy, duration)
                result = run_wrk(server.url, script, connections, duration)
                if spy is not None:
                    spy.wait(timeout=duration + 60)
                log(
                    f"  round {round_no + 1} {name}: {result.rps:,.0f} req/s, p50 "
                    f"{result.p50_ms:,.1f} ms, p99 {result.p99_ms:,.1f} ms, "
                    f"{result.non_2xx} non-2xx, {result.socket_errors} socket errors"
                )
                if result.non_2xx or result.socket_errors:
                    raise BenchmarkError(f"{name}: failed requests\n{result.raw}")
                # Fewer lookups than connections: the latencies are of the first requests
                # only (the rest were still queued when wrk stopped).
                if result.requests < connections and py_spy is None:
                    raise BenchmarkError(
                        f"{name}: only {result.requests} requests completed in {duration} s at "
                        f"{connections} connections; raise --duration so the latencies mean "
                        "something"
                    )
                results.append(result)
        with sessions() as session:
            audited = (
                session.scalar(select(func.count()).select_from(AuditEntry)) or 0
            ) - audited_before
        counted = sum(r.requests for r in gateway)
        if audited < counted:
            raise BenchmarkError(f"{audited} audit entries for {counted} gateway lookups")
    finally:
        for server in servers:
            server.stop()
        engine.dispose()
    return Outcome(
        info=info,
        persons=persons,
        body_bytes=len(body),
        catalogue=catalogue,
        variant="gateway as `exchange up` serves it"
        + ("; sampled by py-spy during its run" if py_spy else ""),
        bare=bare,
        gateway=gateway,
        audited=audited,
        load_start=load_start,
        load_end=os.getloadavg(),
        finished=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def report(outcome: Outcome, command: str, connections: int, duration: int) -> str:
    o = outcome
    load = " ".join(f"{x:.2f}" for x in o.load_start)
    load_end = " ".join(f"{x:.2f}" for x in o.load_end)
    g_rps, b_rps = o.median(o.gateway, "rps"), o.median(o.bare, "rps")
    lines = [
        f"Date: {o.info['date']} to {o.finished}. Command: `{command}`.",
        f"Machine: {o.info['cpu']} ({o.info['cores']}), {o.info['platform']}, "
        f"{o.info['python']}; load average {load} at start, {load_end} at end.",
        f"Registry: {o.persons:,} persons x {len(DEPARTMENTS)} departments on SQLite; "
        f"response body {o.body_bytes:,} bytes; {o.catalogue}; wrk -t2 -c{connections} "
        f"-d{duration}s, {len(o.gateway)} round(s), medians; {o.audited:,} audit entries "
        f"written during the gateway's runs; {o.variant}.",
        "",
        "| Side | Requests/s | p50 ms | p99 ms | Requests |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, side in (("bare FastAPI endpoint", o.bare), ("gateway lookup", o.gateway)):
        lines.append(
            f"| {name} | {o.median(side, 'rps'):,.1f} | {o.median(side, 'p50_ms'):,.1f} | "
            f"{o.median(side, 'p99_ms'):,.1f} | {sum(r.requests for r in side):,} |"
        )
    met_t = "met" if o.throughput_ratio >= AIM_THROUGHPUT else "missed"
    met_p = "met" if o.p99_ratio <= AIM_P99 else "missed"
    started = datetime.fromisoformat(o.info["date"]).astimezone(UTC)
    ended = datetime.fromisoformat(o.finished)
    b_p50, b_p99 = o.median(o.bare, "p50_ms"), o.median(o.bare, "p99_ms")
    g_p50, g_p99 = o.median(o.gateway, "p50_ms"), o.median(o.gateway, "p99_ms")
    rounds = f"{len(o.gateway)} round{'s, medians' if len(o.gateway) > 1 else ''}"
    lines += [
        "",
        "Row for the table in docs/benchmarks.md:",
        "",
        f"| {started:%H:%M}-{ended:%H:%M} | {o.variant} | `-d{duration}s`, {rounds} | "
        f"{o.load_start[0]:.2f}, {o.load_end[0]:.2f} | {b_rps:,.1f} | {b_p50:,.1f} / "
        f"{b_p99:,.1f} | {g_rps:,.1f} | {g_p50:,.0f} / {g_p99:,.0f} | "
        f"**{o.throughput_ratio:.3f}** | **{o.p99_ratio:.1f}** |",
    ]
    lines += [
        "",
        f"Throughput ratio gateway/bare: **{o.throughput_ratio:.3f}** ({g_rps:,.1f} / "
        f"{b_rps:,.1f}; aim >= {AIM_THROUGHPUT:.2f}: {met_t}). p99 ratio: "
        f"**{o.p99_ratio:.1f}** (aim <= {AIM_P99}: {met_p}).",
    ]
    return "\n".join(lines)


def _positive(text: str) -> int:
    value = int(text.replace("_", "").replace(",", ""))
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.gateway_lookup",
        description="Gateway person lookups (auth, policy, decryption, audit) under wrk, beside "
        "a bare FastAPI endpoint returning the same bytes, served the same way.",
    )
    parser.add_argument("--persons", type=_positive, default=DEFAULT_PERSONS)
    parser.add_argument("--duration", type=_positive, default=DEFAULT_DURATION_S, help="seconds")
    parser.add_argument("--connections", type=_positive, default=DEFAULT_CONNECTIONS)
    parser.add_argument("--rounds", type=_positive, default=1)
    parser.add_argument("--warmup", type=int, default=WARMUP_S, help="seconds before each run")
    parser.add_argument(
        "--py-spy",
        type=Path,
        default=None,
        help="also sample the gateway with py-spy during its measured run, into this file "
        "(collapsed stacks; the sampling slows the gateway, so those figures are not clean)",
    )
    parser.add_argument("--keep-dir", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print(f"error: {WRK_MISSING}", file=sys.stderr)
        return 2
    base = Path(tempfile.mkdtemp(prefix="bench-gateway-"))
    command = "python -m bench.gateway_lookup " + " ".join(argv or sys.argv[1:])
    try:
        outcome = run(base, args.persons, args.duration, args.connections, args.rounds,
                      args.warmup, py_spy=args.py_spy)  # fmt: skip
    except BenchmarkError as exc:
        print(f"CHECK FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        if args.keep_dir:
            log(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    print(report(outcome, command.strip(), args.connections, args.duration))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
