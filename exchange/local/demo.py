"""``exchange demo``: five departments break their silos for a caseworker's allowance review.

Journey 1 of the design (a minimum-living-allowance, 低保, review), told end to end:

1. start the local stack if needed;
2. register the five departments and write their exports (:mod:`exchange.local.population`:
   the same people, each department in its own shape, a few rows to reject);
3. run each department's connectors (``exchange connector run``: read, published,
   rejected and why);
4. wait for the registry builder, which links the records into entities;
5. set up access: :func:`grant_access` (deny by default; for now the central
   administrator's grants);
6. the caseworker's check through the gateway: the applicant's household view, each member's
   records across departments rendered as tables, each saying how it joined; then a refused
   request for a purpose no grant serves;
7. :func:`print_summary`: who is now known to several departments, what was rejected and
   why, who asked for what (from the audit log);
8. a command the reader can paste.
"""

from __future__ import annotations

import json
import os
import random
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from exchange.access import catalogue, resources
from exchange.core.config import Settings
from exchange.core.db import transaction, utcnow
from exchange.core.errors import StackError
from exchange.core.models import (
    CatalogueResource,
    ConnectorRun,
    Department,
    Purpose,
    SourceRecord,
)
from exchange.identity.apikeys import ORIGIN_DEMO, create_key
from exchange.identity.identities import create_department
from exchange.indicators import render
from exchange.indicators import report as indicators_report
from exchange.indicators.compute import compute
from exchange.indicators.figures import Indicators
from exchange.indicators.period import Period, Scope
from exchange.indicators.period import month as indicator_month
from exchange.local import examples, population
from exchange.local.population import resident_number
from exchange.local.stack import Stack

__all__ = ["GRANT_FIELDS", "grant_access", "print_summary", "resident_number", "run_demo"]

CASEWORKERS = "civil_affairs"
PURPOSE = "minimum-living-allowance"
OTHER_PURPOSE = "tax-assessment"
CASE_REF = "MZ-2026-0417"

# The person grant shows the birth date and the division in full: together with any part of
# the identifier they would give it away (docs/security.md, "Masking styles and the
# disclosure rule"), so the identifier is granted masked only because the person standard
# masks it as a token (``tk_...``, the same for one person and one purpose), which shows
# none of it.
GRANT_FIELDS = {
    "resident_id": "masked",
    "family_name": "full",
    "given_name": "full",
    "full_name": "full",
    "birth_date": "full",
    "sex": "full",
    "residence_division_code": "full",
    "phone": "masked",
}

# What the allowance review needs of each dataset (DESIGN.md, journey 1); identifiers are
# tokens (masked), never shown.
REVIEW_GRANTS: dict[str, dict[str, str]] = {
    "person": GRANT_FIELDS,
    "household_membership": {
        "resident_id": "masked",
        "household_id": "masked",
        "relationship_to_head": "full",
        "since": "full",
        "until": "full",
    },
    "social_insurance": {
        "resident_id": "masked",
        "employer_uscc": "full",
        "insurance_types": "full",
        "employment_status": "full",
        "contribution_base_fen": "full",
        "monthly_wage_fen": "full",
        "period_start": "full",
        "period_end": "full",
    },
    "health_insurance_enrolment": {
        "resident_id": "masked",
        "scheme": "full",
        "status": "full",
        "enrolled_on": "full",
        "ended_on": "full",
    },
    "benefit_payment": {
        "resident_id": "masked",
        "benefit_type": "full",
        "amount_fen": "full",
        "period_start": "full",
        "period_end": "full",
        "paid_on": "full",
        "case_reference": "full",
    },
    "organisation": {
        "uscc": "full",
        "legal_name": "full",
        "legal_form": "full",
        "registration_date": "full",
        "industry_code": "full",
        "status": "full",
    },
}


def write_dataset(folder: Path, people: int, seed: int = 7) -> tuple[Path, str]:
    """Write the household registry's connector definition and a CSV of ``people`` random
    residents and 3 rows to fix; return (definition path, a valid ID to query). A small
    single-department export for tests; the demo writes :mod:`exchange.local.population`'s."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    rows = ["local_id,id_number,surname,given,dob,sex,division,phone"]
    first_id = ""
    for i in range(people):
        born = date(1950, 1, 1) + timedelta(days=rng.randrange(0, 365 * 55))
        sex = rng.choice("12")
        division = rng.choice(["110105", "310104", "310115", "330106"])
        number = resident_number(division, born, i + 10, sex)
        first_id = first_id or number
        dob = born.strftime(rng.choice(["%Y-%m-%d", "%Y/%m/%d", "%Y%m%d"]))
        rows.append(
            f"HR-{1000 + i},{number},{rng.choice('王李张刘')},{rng.choice(['伟', '芳'])},{dob},"
            f"{sex},{division},13{rng.randrange(0, 10**9):09d}"
        )
    good = resident_number("110105", date(1980, 5, 17), 900, "1")
    rows += [
        f"HR-9001,{good[:-1] + ('0' if good[-1] != '0' else '1')},孙,丽,1980-05-17,2,110105,",
        f"HR-9002,{resident_number('310104', date(1975, 3, 1), 901, '1')},钱,刚,1975-02-30,1,"
        "310104,",
        f"HR-9003,{resident_number('330106', date(1990, 7, 9), 902, '2')},周,梅,1990-07-09,X,"
        "330106,",
    ]
    (folder / "residents.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    definition = folder / "household_registry.toml"
    definition.write_text(examples.HOUSEHOLD_REGISTRY.read_text(encoding="utf-8"), encoding="utf-8")
    return definition, first_id


def register_departments(session: Session) -> list[str]:
    """The five departments of the demo, in the Department table; does nothing twice."""
    said = []
    for code, name in population.DEPARTMENTS.items():
        if session.get(Department, code) is None:
            create_department(session, code, name)
            said.append(f"department {code!r} registered: {name}")
        else:
            said.append(f"department {code!r} (already registered)")
    return said


# The resource catalogue of the demo: each dataset's owner, update frequency and sharing type.
RESOURCES: dict[str, tuple[str, str, str, str]] = {
    "person": (population.HOUSEHOLD_REGISTRY, "Residents", "daily", "conditional"),
    "household_membership": (
        population.HOUSEHOLD_REGISTRY, "Household members", "daily", "conditional",
    ),
    "benefit_payment": (
        population.CIVIL_AFFAIRS, "Minimum living allowance payments", "monthly", "conditional",
    ),
    "social_insurance": (
        population.HUMAN_RESOURCES, "Social insurance and employment", "monthly", "conditional",
    ),
    "health_insurance_enrolment": (
        population.HEALTH_INSURANCE, "Medical insurance enrolments", "weekly", "conditional",
    ),
    "organisation": (
        population.MARKET_REGULATION, "Registered businesses", "daily", "unconditional",
    ),
}  # fmt: skip
REQUESTER = "ca.admin"  # the civil affairs bureau's department administrator
LEGAL_BASIS = "Measures for the review and confirmation of the minimum living allowance, art. 12"
# What human resources' steward takes out of the request: the contribution base says
# nothing the wage does not, and a year is longer than a review needs.
NARROWED = "social_insurance"
NARROWED_DAYS = 180


def _steward(department: str) -> str:
    return f"{department}.steward"


def _keys(session: Session) -> dict[str, str]:
    """API keys of the demo's department administrator and the owners' data stewards."""
    keys = {
        REQUESTER: create_key(
            session,
            actor=REQUESTER,
            department=CASEWORKERS,
            role="department_admin",
            origin=ORIGIN_DEMO,
        )
    }
    for owner in {owner for owner, *_ in RESOURCES.values()}:
        keys[_steward(owner)] = create_key(
            session,
            actor=_steward(owner),
            department=owner,
            role="data_steward",
            origin=ORIGIN_DEMO,
        )
    return keys


def grant_access(settings: Settings, sessions: sessionmaker[Session]) -> list[str]:
    """The demo's access, catalogue-driven: the purposes; each dataset in the resource
    catalogue with its owner (the central administrator registers them, bootstrapping); the
    civil affairs bureau's department administrator requests what the allowance review needs
    through the API; each owner's data steward decides (human resources narrows its dataset,
    the household registry refuses a request for tax assessment, market regulation's
    dataset is granted on request). Does nothing that is already there."""
    said = []
    with transaction(sessions) as session:
        for code, title in (
            (PURPOSE, "Minimum living allowance (dibao) eligibility review"),
            (OTHER_PURPOSE, "Tax assessment"),
        ):
            if session.get(Purpose, code) is None:
                catalogue.add_purpose(session, code, title)
                said.append(f"purpose {code!r} added")
        central = resources.Editor("demo", "exchange_office", "admin")
        for dataset, (owner, title, frequency, sharing_type) in RESOURCES.items():
            if session.get(CatalogueResource, dataset) is None:
                resources.set_resource(
                    session,
                    central,
                    dataset,
                    resources.ResourceChange(
                        owner=owner,
                        title=title,
                        frequency=frequency,
                        sharing=sharing_type,
                        contact=f"data-office@{owner}.example.gov.cn",
                    ),
                    at=utcnow(),
                )
                said.append(f"catalogue: {dataset} owned by {owner}, {sharing_type}")
        held = {
            g.dataset
            for g in catalogue.list_grants(session)
            if g.grantee_department == CASEWORKERS and PURPOSE in g.purposes
        }
        keys = _keys(session)
    api = f"{settings.gateway.url}/v1/sharing/requests"

    def call(who: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = httpx.post(api + path, json=body, headers={"X-API-Key": keys[who]}, timeout=30)
        if answer.status_code not in (200, 201):
            raise StackError(
                f"{who}: POST {api + path} answered {answer.status_code}: "
                f"{answer.json().get('detail')}"
            )
        found: dict[str, Any] = answer.json()
        return found

    for dataset, fields in REVIEW_GRANTS.items():
        if dataset in held:
            said.append(f"{CASEWORKERS} already holds a grant on {dataset}")
            continue
        owner = RESOURCES[dataset][0]
        asked = call(
            REQUESTER,
            "",
            {
                "dataset": dataset,
                "fields": fields,
                "purposes": [PURPOSE],
                "legal_basis": LEGAL_BASIS,
                "justification": "household means test of allowance applications",
                "duration_days": 365,
            },
        )
        line = f"request {asked['id']}: {REQUESTER} asks {owner} for {dataset}"
        if asked["status"] == "submitted" and dataset == NARROWED:
            kept = {f: m for f, m in fields.items() if f != "contribution_base_fen"}
            asked = call(
                _steward(owner),
                f"/{asked['id']}/narrow",
                {
                    "fields": kept,
                    "days": NARROWED_DAYS,
                    "reason": "the contribution base is not needed; 180 days cover a review",
                },
            )
        elif asked["status"] == "submitted":
            asked = call(_steward(owner), f"/{asked['id']}/approve", {})
        said.append(
            f"{line} -> {asked['status']} by {asked['decided_by']} (grant {asked['grant_id']})"
        )
    if "person" not in held:
        other = call(
            REQUESTER,
            "",
            {
                "dataset": "person",
                "fields": {"full_name": "full"},
                "purposes": [OTHER_PURPOSE],
                "legal_basis": "none stated",
                "justification": "cross-checking declared income",
                "duration_days": 30,
            },
        )
        other = call(
            _steward(population.HOUSEHOLD_REGISTRY),
            f"/{other['id']}/refuse",
            {"reason": "tax assessment is not a purpose the household registry shares for"},
        )
        said.append(
            f"request {other['id']}: person for {OTHER_PURPOSE} -> {other['status']}: "
            f"{other['decision_reason']}"
        )
    return said


def print_summary(
    console: Console, session: Session, since: datetime, report: Path | None = None
) -> Indicators:
    """The demo's closing figures: the sharing indicators (:mod:`exchange.indicators`) of
    the demo's run, from ``since`` to now: people known to several departments, what was
    published and rejected and why, who asked for what, how fast owners decided. With
    ``report``, the month's HTML report is written there too."""
    now = utcnow()
    found = compute(session, Period(since, now + timedelta(seconds=1)), Scope(), now=now)
    link = found.linkage
    console.print(
        f"people known to the registry: {link.people}; known to 2 or more departments: "
        f"{link.known_to_two_or_more}"
    )
    wanted = ("Records published", "Linkage", "Data requests", "Sharing-request turnaround")
    for table in render.tables(found):
        if str(table.title).startswith(wanted):
            console.print(table)
    if report is not None:
        month = f"{now:%Y-%m}"
        report.write_text(
            indicators_report.html(
                compute(session, indicator_month(month), Scope(), now=now),
                title=f"Sharing indicators, {month}",
            ),
            encoding="utf-8",
        )
        console.print(f"this month's indicators report: {report}")
    return found


# ---- the caseworker's view, as tables ----------------------------------------------------------


def _joined(record: dict[str, Any]) -> str:
    joined = record.get("joined")
    if not joined:
        return "-"
    if joined["how"] == "probabilistic":
        return f"probabilistic (weight {joined['weight']:.1f} bits, p={joined['probability']:.3f})"
    if joined["how"] == "reviewer":
        return f"reviewer ({joined.get('decided_by')})"
    return str(joined["how"])


def _value(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return "-" if value is None else str(value)


def _fields(record: dict[str, Any]) -> str:
    return "\n".join(f"{k}: {_value(v)}" for k, v in record["fields"].items())


def print_household(console: Console, body: dict[str, Any]) -> None:
    """The household view, a table a member: each record, its fields and how it joined."""
    for number, household in enumerate(body["households"], start=1):
        console.print(f"[bold]household {number}[/]: {len(household['members'])} members")
        for member in household["members"]:
            membership = member["membership"]["fields"]
            names = [
                r["fields"]["full_name"]
                for r in member["records"]
                if r["dataset"] == "person" and r["fields"].get("full_name")
            ]
            title = (
                f"{names[0] if names else '(no visible person record)'} · "
                f"{membership.get('relationship_to_head', '?')} · "
                f"member since {membership.get('since', '?')}"
            )
            table = Table("department", "dataset", "record", "fields", "joined", title=title)
            for record in [*member["records"], *member["businesses"]]:
                table.add_row(
                    record["department"],
                    record["dataset"],
                    record["source_id"],
                    _fields(record),
                    _joined(record),
                )
            if not member["records"] and not member["businesses"]:
                table.add_row("-", "-", "-", "no record the caseworker may see", "-")
            console.print(table)


# ---- the story ---------------------------------------------------------------------------------


def _publish(console: Console, definitions: dict[str, list[Path]]) -> None:
    """Run every connector (each its own ``exchange connector run``, all at once), then print
    each one's output in turn."""
    env = {**os.environ, "COLUMNS": os.environ.get("COLUMNS", "160")}
    started = [
        (
            department,
            path,
            subprocess.Popen(
                [sys.executable, "-m", "exchange.cli", "connector", "run", str(path)],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                env=env,
            ),
        )
        for department, paths in definitions.items()
        for path in paths
    ]
    failed = []
    for department, path, process in started:
        output, _ = process.communicate()
        console.print(f"[bold]{population.DEPARTMENTS[department]}[/] ({department})")
        console.print(f"$ exchange connector run {shlex.quote(str(path))}")
        # The connector's own report: its progress bar line and the Kafka client's retry notices
        # are left out.
        lines = [
            line
            for line in output.splitlines()
            if "publishing " not in line and "[thrd:" not in line  # librdkafka's retries
        ]
        console.print("\n".join(lines), markup=False, highlight=False, soft_wrap=True)
        if process.returncode != 0:
            failed.append(path.name)
    if failed:
        raise StackError(f"connector runs failed: {', '.join(failed)}; see their output above")


def _published(session: Session, departments: list[str]) -> int:
    runs: dict[str, ConnectorRun] = {}
    for run in session.scalars(
        select(ConnectorRun)
        .where(ConnectorRun.department.in_(departments))
        .order_by(ConnectorRun.started_at)
    ):
        runs[run.connector_id] = run
    return sum(r.read - r.rejected for r in runs.values())


def _wait_for_builder(
    console: Console, stack: Stack, sessions: sessionmaker[Session], departments: list[str]
) -> int:
    deadline = time.monotonic() + 90
    with console.status("waiting for the registry builder ..."):
        while True:
            with sessions() as session:
                expected = _published(session, departments)
                count = (
                    session.scalar(
                        select(func.count()).where(SourceRecord.department.in_(departments))
                    )
                    or 0
                )
            if count >= expected:
                return count
            builder = next(s for s in stack.status() if s.name == "registry-builder")
            if time.monotonic() > deadline or not builder.running:
                raise StackError(
                    f"the registry holds {count} of {expected} records "
                    f"(builder {'running' if builder.running else 'stopped'}); "
                    f"see {stack.log_dir / 'registry-builder.log'}"
                )
            time.sleep(0.5)


def run_demo(
    settings: Settings,
    console: Console,
    database: Callable[[], sessionmaker[Session]],
) -> None:
    """Tell the demo's story on ``console``; ``database`` gives the sessions of the
    registry database once the stack is up (the caller opens and closes it)."""
    began, run_began = time.monotonic(), utcnow()
    stack = Stack(settings)
    console.rule("[bold]1. start the local stack")
    stack.up(lambda m: console.print(f"[cyan]•[/] {m}"))
    sessions = database()

    console.rule("[bold]2. five departments, their own exports of the same people")
    with transaction(sessions) as session:
        for line in register_departments(session):
            console.print(line)
    folder = stack.data_dir / "demo"
    definitions = population.write_exports(folder)
    console.print(f"exports and connector definitions written to {folder}")

    console.rule("[bold]3. each department publishes (rows it cannot map are rejected, with why)")
    _publish(console, definitions)

    console.rule("[bold]4. the registry builder links the records into entities")
    count = _wait_for_builder(console, stack, sessions, list(definitions))
    console.print(f"registry holds {count} records from {len(definitions)} departments")

    console.rule(
        "[bold]5. access: the catalogue, requests, the owners' decisions (deny by default)"
    )
    for line in grant_access(settings, sessions):
        console.print(line)

    console.rule("[bold]6. the caseworker's check: the applicant's household, through the API")
    key = settings.demo_api_key.get_secret_value() if settings.demo_api_key else None
    with transaction(sessions) as session:
        key = create_key(
            session,
            actor="demo.caseworker",
            department=CASEWORKERS,
            role="caseworker",
            plaintext=key,
            origin=ORIGIN_DEMO,
        )
    applicant = population.population().applicant
    # The identifier travels in the body, never in the URL (proxies and access logs keep URLs).
    url = f"{settings.gateway.url}/v1/households/lookup"
    body = {"resident_id": applicant.resident_id}
    params = {"purpose": PURPOSE, "case_ref": CASE_REF}
    response = httpx.post(url, json=body, params=params, headers={"X-API-Key": key}, timeout=30)
    console.print(
        f'POST {url}?purpose={PURPOSE}&case_ref={CASE_REF} {{"resident_id": ...}} -> '
        f"{response.status_code}"
    )
    if response.status_code != 200:
        console.print_json(json.dumps(response.json(), ensure_ascii=False))
        raise StackError(f"the gateway answered {response.status_code}")
    print_household(console, response.json())
    refused = httpx.post(
        url,
        json=body,
        params={"purpose": OTHER_PURPOSE},
        headers={"X-API-Key": key},
        timeout=30,
    )
    console.print(
        f"the same request for the purpose {OTHER_PURPOSE!r}, which no grant serves -> "
        f"{refused.status_code}: {refused.json().get('detail')}"
    )

    console.rule("[bold]7. the summary: silos broken, rows rejected, requests served")
    with sessions() as session:
        print_summary(console, session, run_began, stack.data_dir / "demo" / "indicators.html")
    console.print("all the figures, for any period: exchange indicators --help")

    console.rule("[bold]try it yourself")
    console.print(
        f"curl -s -H 'X-API-Key: {key}' -H 'Content-Type: application/json' "
        f"-d '{json.dumps(body)}' '{url}?purpose={PURPOSE}&case_ref={CASE_REF}'",
        markup=False,
        soft_wrap=True,
    )
    console.print("without a purpose the gateway refuses (400); without a key, 401; both audited.")
    console.print(
        f"the web console: {settings.gateway.url}/ui/ (sign in with the caseworker's key {key}; "
        f"purpose {PURPOSE}, case {CASE_REF}; search for {applicant.name} or the applicant's "
        "ID)",
        markup=False,
        soft_wrap=True,
    )
    console.print("verify the audit log (Merkle tree, signed heads): exchange audit verify")
    console.print("stop everything: exchange down")
    console.print(f"demo done in {time.monotonic() - began:.0f} s")
