"""A department export with every kind of row a connector run must sort out.

``write_export`` writes a household-registry CSV in the demo's columns and the
demo's connector definition for it (``examples/``, read as UTF-8): mostly valid
rows, and at fixed places a wrong ID check character, an impossible date, an
unknown sex code, a duplicate key, an empty key, a row with a missing cell and a
row with bytes that are not UTF-8.
Rows are spread so that every 1,000-row chunk of a parallel run holds some of each.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from exchange.local.demo import resident_number
from tests.support.examples import household_definition

_DIVISIONS = ["110105", "110108", "310104", "310115", "440106", "440305", "330106"]
_SURNAMES = ["王", "李", "张", "刘", "陈"]
_GIVEN = ["秀英", "伟", "芳", "娜", "敏"]


@dataclass(frozen=True)
class Export:
    definition: Path
    rows: int
    valid: frozenset[str]  # source ids of the rows that must be published
    invalid: int  # rows that must be dead-lettered


def write_definition(folder: Path, *, connector_id: str, department: str) -> Path:
    """A definition for the export in ``folder`` (several may share one export)."""
    return household_definition(
        folder,
        name=f"{connector_id}.toml",
        connector_id=connector_id,
        department=department,
        encoding="utf-8",
    )


def write_export(
    folder: Path, rows: int, *, connector_id: str = "workers-test", department: str = "dept_w"
) -> Export:
    rng = random.Random(rows)
    folder.mkdir(parents=True, exist_ok=True)
    valid: set[str] = set()
    invalid = 0
    with (folder / "residents.csv").open("wb") as handle:
        handle.write(b"local_id,id_number,surname,given,dob,sex,division,phone\n")
        for i in range(rows):
            source_id = f"HR-{100000 + i}"
            born = date(1950, 1, 1) + timedelta(days=rng.randrange(0, 365 * 55))
            sex = rng.choice("12")
            division = rng.choice(_DIVISIONS)
            number = resident_number(division, born, i, sex)
            dob = born.strftime(rng.choice(["%Y-%m-%d", "%Y/%m/%d", "%Y%m%d"]))
            cells = [source_id, number, rng.choice(_SURNAMES), rng.choice(_GIVEN), dob, sex]
            cells += [division, f"13{rng.randrange(0, 10**9):09d}"]
            kind = i % 97
            if kind == 11:
                cells[1] = number[:-1] + ("0" if number[-1] != "0" else "1")
            elif kind == 23:
                cells[4] = f"{born.year}-02-30"
            elif kind == 37:
                cells[5] = "X"
            elif kind == 41:
                cells[0] = f"HR-{100000 + i - 1}"  # the previous row's key: key.duplicate
            elif kind == 53:
                cells[0] = ""  # key.missing
            elif kind == 67:
                cells = cells[:-1]  # columns.count
            line = ",".join(cells).encode()
            if kind == 79:  # a surname in another encoding: encoding.invalid_bytes
                line = line.replace(cells[2].encode(), b"\xcd\xf5", 1)
            if kind in (11, 23, 37, 41, 53, 67, 79):
                invalid += 1
            else:
                valid.add(source_id)
            handle.write(line + b"\n")
    definition = write_definition(folder, connector_id=connector_id, department=department)
    return Export(definition, rows, frozenset(valid), invalid)
