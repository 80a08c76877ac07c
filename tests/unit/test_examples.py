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
from exchange.local.population import population, write_exports

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
    assert (
        sorted(
            [
                examples.HOUSEHOLD_REGISTRY,
                examples.HOUSEHOLD_MEMBERSHIP,
                examples.CIVIL_AFFAIRS_BENEFITS,
                examples.HUMAN_RESOURCES_PERSONS,
                examples.HUMAN_RESOURCES_INSURANCE,
                examples.HEALTH_INSURANCE_ENROLMENTS,
                examples.MARKET_REGULATION_BUSINESSES,
            ]
        )
        == DEFINITIONS
    )
    readme = (examples.EXAMPLES / "README.md").read_text(encoding="utf-8")
    for path in examples.EXAMPLES.glob("*/*"):
        assert f"`{path.relative_to(examples.EXAMPLES)}`" in readme


@pytest.mark.parametrize("path", DEFINITIONS, ids=[p.stem for p in DEFINITIONS])
def test_every_example_definition_loads_and_names_its_sample(path: Path) -> None:
    definition = load_definition(path)

    assert definition.source_path.is_file()
    assert definition.connector.department == path.parent.name


def test_the_household_sample_has_16_residents_and_3_rows_to_fix() -> None:
    assert load_definition(examples.HOUSEHOLD_REGISTRY).source_path == (
        examples.HOUSEHOLD_RESIDENTS
    )

    clean, codes = _outcome(examples.HOUSEHOLD_REGISTRY)

    assert clean == len(population().residents) == 16
    assert codes == {"resident_id.check_character": 1, "date.invalid": 1, "code.unknown": 1}


# Each example's clean rows and the problems of the rows it must reject.
OUTCOMES = {
    "household_membership": (16, {"code.unknown": 1}),
    "benefit_payments": (5, {"date.invalid": 1}),
    "insured_persons": (13, {}),
    "social_insurance": (14, {"uscc.check_character": 1}),
    "enrolments": (14, {"resident_id.check_character": 1, "code.unknown": 1}),
    "businesses": (4, {"uscc.length": 1}),
}


@pytest.mark.parametrize("stem", sorted(OUTCOMES))
def test_each_department_sample_maps_as_documented(stem: str) -> None:
    [path] = [p for p in DEFINITIONS if p.stem == stem]

    assert _outcome(path) == (OUTCOMES[stem][0], Counter(OUTCOMES[stem][1]))


def _ids(path: Path, column: int, encoding: str = "utf-8") -> set[str]:
    lines = path.read_text(encoding=encoding).splitlines()[1:]
    return {line.split(",")[column] for line in lines} - {""}


def test_the_departments_describe_the_same_people() -> None:
    people = population()
    residents = {r.resident_id for r in people.residents}
    folder = examples.EXAMPLES
    members = _ids(folder / "household_registry" / "households.csv", 2)
    # Everyone registered is a member of a household (one row to fix names nobody).
    assert residents < members
    assert len(members - residents) == 1
    assert _ids(folder / "civil_affairs" / "benefit_payments.csv", 1) < residents
    roster = _ids(folder / "human_resources" / "insured_persons.csv", 2)
    # The roster holds the 13 people of working age; two of its legacy rows have no identity
    # number: they link only by probability.
    adults = {r.resident_id for r in people.residents if r.born.year <= 2008}
    assert roster < adults
    assert len(adults) == 13
    assert len(adults - roster) == 2
    assert _ids(folder / "human_resources" / "social_insurance.csv", 1) <= residents
    # The applicant's wife runs a shop: her number is the business's legal representative's.
    owners = _ids(folder / "market_regulation" / "businesses.csv", 5, "gb18030")
    wife = people.household(people.applicant.household)[1]
    assert owners == {wife.resident_id}
    assert [r.relation for r in people.household(people.applicant.household)] == [
        "HEAD", "SPOUSE", "CHILD", "CHILD", "PARENT",
    ]  # fmt: skip


def test_the_demo_writes_exactly_the_examples(tmp_path: Path) -> None:
    written = write_exports(tmp_path)

    assert sorted(p for paths in written.values() for p in paths) == sorted(
        tmp_path / p.relative_to(examples.EXAMPLES) for p in DEFINITIONS
    )
    committed = sorted(
        p.relative_to(examples.EXAMPLES)
        for p in examples.EXAMPLES.glob("*/*")
        if p.name != "README.md"
    )
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.glob("*/*")) == committed
    for relative in committed:
        assert (tmp_path / relative).read_bytes() == (examples.EXAMPLES / relative).read_bytes()


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
