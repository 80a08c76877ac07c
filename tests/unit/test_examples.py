"""The example departments in examples/: they load, their samples map as documented, the
demo writes exactly them, and exchange.local.examples writes their variants faithfully."""

from __future__ import annotations

import tomllib
from collections import Counter
from pathlib import Path

import pytest

from connectors import load_definition
from connectors.mapping import map_row
from connectors.sources import open_source
from exchange.local import examples
from exchange.local.demo import write_dataset

DEFINITIONS = sorted(examples.EXAMPLES.glob("*/*.toml"))


def _outcome(definition_path: Path) -> tuple[int, Counter[str]]:
    """(rows that map cleanly, the problem codes of the others) for a definition's sample."""
    definition = load_definition(definition_path)
    clean, codes = 0, Counter[str]()
    for row in open_source(definition).rows():
        _, problems = map_row(definition, definition.standard, row.values)
        problems = [*row.problems, *problems]
        codes.update(code for _, code, _ in problems)
        clean += not problems
    return clean, codes


def test_the_examples_are_the_ones_documented() -> None:
    assert sorted([examples.HOUSEHOLD_REGISTRY, examples.CIVIL_AFFAIRS_BENEFITS]) == DEFINITIONS
    readme = (examples.EXAMPLES / "README.md").read_text(encoding="utf-8")
    for path in examples.EXAMPLES.glob("*/*"):
        assert f"`{path.relative_to(examples.EXAMPLES)}`" in readme


@pytest.mark.parametrize("path", DEFINITIONS, ids=[p.stem for p in DEFINITIONS])
def test_every_example_definition_loads_and_names_its_sample(path: Path) -> None:
    definition = load_definition(path)

    assert definition.source_path.is_file()
    assert definition.connector.department == path.parent.name


def test_the_household_sample_has_8_residents_and_3_rows_to_fix() -> None:
    assert load_definition(examples.HOUSEHOLD_REGISTRY).source_path == (
        examples.HOUSEHOLD_RESIDENTS
    )

    clean, codes = _outcome(examples.HOUSEHOLD_REGISTRY)

    assert clean == 8
    assert codes == {"resident_id.check_character": 1, "date.invalid": 1, "code.unknown": 1}


def test_the_benefit_payments_sample_maps_cleanly_and_pays_household_residents() -> None:
    assert load_definition(examples.CIVIL_AFFAIRS_BENEFITS).source_path == (
        examples.CIVIL_AFFAIRS_PAYMENTS
    )
    residents = examples.HOUSEHOLD_RESIDENTS.read_text(encoding="utf-8")

    clean, codes = _outcome(examples.CIVIL_AFFAIRS_BENEFITS)

    assert (clean, codes) == (4, Counter())
    payments = examples.CIVIL_AFFAIRS_PAYMENTS.read_text(encoding="utf-8").splitlines()[1:]
    assert all(f",{line.split(',')[1]}," in residents for line in payments)


def test_the_demo_writes_the_household_example_and_its_sample(tmp_path: Path) -> None:
    definition, query_id = write_dataset(tmp_path, 8)

    assert definition.read_bytes() == examples.HOUSEHOLD_REGISTRY.read_bytes()
    sample = examples.HOUSEHOLD_RESIDENTS.read_bytes()
    assert (tmp_path / "residents.csv").read_bytes() == sample
    assert sample.decode().splitlines()[1].split(",")[1] == query_id


@pytest.mark.parametrize("path", DEFINITIONS, ids=[p.stem for p in DEFINITIONS])
def test_an_example_written_back_reads_the_same(path: Path) -> None:
    loaded = examples.load(path)

    assert tomllib.loads(examples.dumps(loaded)) == loaded
    assert tomllib.loads(examples.definition_text(path)) == loaded


def test_changes_set_keys_replace_sections_and_leave_fields_out() -> None:
    original = examples.load()
    before = tomllib.loads(examples.HOUSEHOLD_REGISTRY.read_text(encoding="utf-8"))

    text = examples.definition_text(
        connector={"id": "other"},
        source_changes={"path": "people.csv"},
        fields={"phone": {"from": "mobile"}, "nationality": {"default": "CHN"}},
        without=["residence_division_code"],
    )
    pushed = examples.changed(original, source={"type": "push", "key": "local_id"})

    changed = tomllib.loads(text)
    assert changed["connector"] == {**original["connector"], "id": "other"}
    assert changed["source"] == {**original["source"], "path": "people.csv"}
    assert list(changed["fields"]) == [
        *(f for f in original["fields"] if f != "residence_division_code"),
        "nationality",
    ]
    assert changed["fields"]["phone"] == {"from": "mobile"}
    assert pushed["source"] == {"type": "push", "key": "local_id"}
    assert original == before  # the changes were made to copies


def test_dumps_writes_only_what_toml_reads_back_the_same() -> None:
    definition = {
        "connector": {"id": 'quote " and \\ backslash', "version": "1"},
        "source": {"type": "sql", "batch_size": 2, "query": "SELECT 1 -- 注释"},
        "fields": {"sex": {"codes": {"1": "MALE", "x y": "OTHER"}, "transform": []}},
    }

    assert tomllib.loads(examples.dumps(definition)) == definition
    with pytest.raises(ValueError, match="not a section"):
        examples.dumps({"connecter": {}})
    with pytest.raises(TypeError, match="float"):
        examples.dumps({"source": {"ratio": 0.5}})
