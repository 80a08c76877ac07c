"""``exchange demo``: the household registry publishes its residents; a caseworker looks one up.

Starts the local stack if needed, writes a small synthetic department export
(CSV, with a few rows a clerk must fix), runs the department's connector,
waits for the registry builder, sets up the access catalogue (deny by default:
a purpose and a grant for the civil affairs bureau's caseworkers: names, birth date and
division in full, so the identifier is shown only as a per-purpose token, the standard's
style for it, and the phone masked to its last 4 digits) and queries the gateway as a
caseworker for that purpose, printing the response, a refused request for another purpose,
and a command the reader can paste.
"""

from __future__ import annotations

import json
import random
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import httpx
from rich.console import Console
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from exchange.access import catalogue
from exchange.core.config import Settings
from exchange.core.db import transaction, utcnow
from exchange.core.errors import StackError
from exchange.core.models import Purpose, SourceRecord
from exchange.identity.apikeys import ORIGIN_DEMO, create_key
from exchange.local import examples
from exchange.local.stack import Stack
from schemas.validators import resident_id_check_character

DEPARTMENT = "household_registry"
CASEWORKERS = "civil_affairs"
PURPOSE = "minimum-living-allowance"
OTHER_PURPOSE = "tax-assessment"
# The grant shows the birth date and the division in full: together with any part of the
# identifier they would give it away (docs/security.md, "Masking styles and the disclosure
# rule"), so the identifier is granted masked only because the person standard masks it as a
# token (``tk_...``, the same for one person and one purpose), which shows none of it.
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


_SURNAMES = ["王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴"]
_GIVEN = ["秀英", "伟", "芳", "娜", "敏", "静", "磊", "洋", "艳", "勇", "军", "杰"]
_DIVISIONS = ["110105", "110108", "310104", "310115", "440106", "440305", "330106"]


def resident_number(division: str, born: date, serial: int, sex: str) -> str:
    """A valid 18-character number: division, birth date, serial (odd for men), check."""
    serial = serial * 2 + (1 if sex == "1" else 0)
    body = f"{division}{born:%Y%m%d}{serial % 1000:03d}"
    return body + resident_id_check_character(body)


def write_dataset(folder: Path, people: int, seed: int = 7) -> tuple[Path, str]:
    """Write the connector definition (``examples/household_registry``'s) and a CSV of
    ``people`` residents and 3 rows to fix; return (definition path, a valid ID to query).

    With the default 8 people and seed, the CSV is ``examples/household_registry/residents.csv``.
    """
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    rows = ["local_id,id_number,surname,given,dob,sex,division,phone"]
    first_id = ""
    for i in range(people):
        born = date(1950, 1, 1) + timedelta(days=rng.randrange(0, 365 * 55))
        sex = rng.choice("12")
        division = rng.choice(_DIVISIONS)
        number = resident_number(division, born, i + 10, sex)
        first_id = first_id or number
        phone = f"13{rng.randrange(0, 10**9):09d}"
        dob = born.strftime(rng.choice(["%Y-%m-%d", "%Y/%m/%d", "%Y%m%d"]))
        rows.append(
            f"HR-{1000 + i},{number},{rng.choice(_SURNAMES)},{rng.choice(_GIVEN)},{dob},{sex},"
            f"{division},{phone}"
        )
    good = resident_number("110105", date(1980, 5, 17), 900, "1")
    wrong_check = good[:-1] + ("0" if good[-1] != "0" else "1")
    rows += [
        f"HR-9001,{wrong_check},孙,丽,1980-05-17,2,110105,13800000001",
        f"HR-9002,{resident_number('310104', date(1975, 3, 1), 901, '1')},钱,刚,1975-02-30,1,"
        "310104,",
        f"HR-9003,{resident_number('440106', date(1990, 7, 9), 902, '2')},周,梅,1990-07-09,X,"
        "440106,",
    ]
    (folder / "residents.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    definition = folder / "household_registry.toml"
    definition.write_text(examples.HOUSEHOLD_REGISTRY.read_text(encoding="utf-8"), encoding="utf-8")
    return definition, first_id


def setup_catalogue(session: Session) -> list[str]:
    """The demo's purposes and its one grant; does nothing that is already there."""
    said = []
    for code, title in (
        (PURPOSE, "Minimum living allowance (dibao) eligibility review"),
        (OTHER_PURPOSE, "Tax assessment"),
    ):
        if session.get(Purpose, code) is None:
            catalogue.add_purpose(session, code, title)
            said.append(f"purpose {code!r} added")
    for grant in catalogue.list_grants(session):
        if (
            grant.grantee_department == CASEWORKERS
            and grant.dataset == "person"
            and PURPOSE in grant.purposes
        ):
            said.append(catalogue.summary(grant) + " (already there)")
            return said
    grant = catalogue.add_grant(
        session,
        catalogue.GrantSpec(
            department=CASEWORKERS,
            role="caseworker",
            dataset="person",
            fields=GRANT_FIELDS,
            purposes=[PURPOSE],
            row_constraints={},
            note="demo: civil affairs caseworkers review minimum living allowance applications",
        ),
        created_by="demo",
        at=utcnow(),
    )
    said.append("added " + catalogue.summary(grant))
    return said


def run_demo(
    settings: Settings,
    console: Console,
    database: Callable[[], sessionmaker[Session]],
    *,
    people: int = 8,
) -> None:
    """Tell the demo's story on ``console``; ``database`` gives the sessions of the
    registry database once the stack is up (the caller opens and closes it)."""
    stack = Stack(settings)
    console.rule("[bold]1. start the local stack")
    stack.up(lambda m: console.print(f"[cyan]•[/] {m}"))

    console.rule("[bold]2. the household registry publishes its residents")
    definition, query_id = write_dataset(stack.data_dir / "demo", people)
    console.print(f"department export: {definition.parent / 'residents.csv'}")
    console.print(f"connector definition: {definition}")
    cmd = [sys.executable, "-m", "exchange.cli", "connector", "run", str(definition)]
    console.print(f"$ exchange connector run {shlex.quote(str(definition))}")
    result = subprocess.run(cmd, check=False)
    if result.returncode != 0:
        raise StackError("the connector run failed; see its output above")

    console.rule("[bold]3. the registry builder links the records into the registry")
    sessions = database()
    deadline = time.monotonic() + 90
    with console.status("waiting for the registry builder ..."):
        while True:
            with sessions() as session:
                count = (
                    session.scalar(
                        select(func.count()).where(SourceRecord.department == DEPARTMENT)
                    )
                    or 0
                )
            if count >= people:
                break
            builder = next(s for s in stack.status() if s.name == "registry-builder")
            if time.monotonic() > deadline or not builder.running:
                raise StackError(
                    f"the registry holds {count} of {people} records "
                    f"(builder {'running' if builder.running else 'stopped'}); "
                    f"see {stack.log_dir / 'registry-builder.log'}"
                )
            time.sleep(0.5)
    console.print(f"registry holds {count} person records from {DEPARTMENT}")

    console.rule("[bold]4. the access catalogue: a purpose and a grant (deny by default)")
    with transaction(sessions) as session:
        for line in setup_catalogue(session):
            console.print(line)

    console.rule("[bold]5. a caseworker looks up a resident, for a declared purpose")
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
    # The identifier travels in the body, never in the URL (proxies and access logs keep URLs).
    url = f"{settings.gateway.url}/v1/persons/lookup"
    body = {"resident_id": query_id}
    params = {"purpose": PURPOSE, "case_ref": "DEMO-2026-0001"}
    response = httpx.post(url, json=body, params=params, headers={"X-API-Key": key}, timeout=30)
    console.print(
        f"POST {url}?purpose={PURPOSE}&case_ref=DEMO-2026-0001 "
        f"{json.dumps(body)} -> {response.status_code}"
    )
    console.print_json(json.dumps(response.json(), ensure_ascii=False))
    if response.status_code != 200:
        raise StackError(f"the gateway answered {response.status_code}")
    refused = httpx.post(
        url, json=body, params={"purpose": OTHER_PURPOSE}, headers={"X-API-Key": key}, timeout=30
    )
    console.print(
        f"the same lookup for the purpose {OTHER_PURPOSE!r}, which no grant serves -> "
        f"{refused.status_code}: {refused.json().get('detail')}"
    )
    console.rule("[bold]try it yourself")
    console.print(
        f"curl -s -H 'X-API-Key: {key}' -H 'Content-Type: application/json' "
        f"-d '{json.dumps(body)}' '{url}?purpose={PURPOSE}&case_ref=DEMO-2026-0001'",
        markup=False,
        soft_wrap=True,
    )
    console.print("without a purpose the gateway refuses (400); without a key, 401; both audited.")
    console.print("verify the audit log (Merkle tree, signed heads): exchange audit verify")
    console.print("stop everything: exchange down")
