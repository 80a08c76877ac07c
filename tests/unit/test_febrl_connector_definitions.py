"""bench.febrl's exports with connector definitions a department would run (``load_definition``)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from bench import febrl
from connectors import load_definition
from connectors.definition import check_against_standard


def test_definitions_renamed_for_a_run_load_as_run_connector_loads_them(tmp_path: Path) -> None:
    codes = {"febrl_a": "fa_run1", "febrl_b": "fb_run1", "febrl_c": "fc_run1"}

    paths, origin = febrl.write_connector_exports(tmp_path, codes)

    assert set(paths) == {name for name, _ in febrl.DEPARTMENTS}
    for name, path in paths.items():
        definition = load_definition(path)  # refuses what does not fit the standard
        assert definition.connector.department == codes[name]
        assert definition.connector.id == f"{codes[name].replace('_', '-')}-persons"
        assert definition.fields["resident_id"].optional
        assert definition.fields["sex"].default == "UNKNOWN"
        assert definition.source_path.is_file()
        assert definition.source_path.parent == tmp_path.resolve()
        assert check_against_standard(definition) == []
    ids = {load_definition(p).connector.id for p in paths.values()}
    assert len(ids) == 3
    # The same rows under the same local ids whatever the codes: bench refs name them.
    assert origin == febrl.write_exports(tmp_path / "again")


def test_without_codes_the_bench_departments_are_kept(tmp_path: Path) -> None:
    paths, _ = febrl.write_connector_exports(tmp_path)

    for name, path in paths.items():
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        assert raw["connector"]["department"] == name
        shipped = tomllib.loads((febrl.DEFINITIONS / f"{name}.toml").read_text(encoding="utf-8"))
        assert raw["connector"]["id"] == shipped["connector"]["id"]


def test_an_unknown_department_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="febrl_x"):
        febrl.write_connector_exports(tmp_path, {"febrl_x": "other"})


def test_only_the_connector_table_is_renamed() -> None:
    text = '[connector]\nid = "a"\ndepartment = "d"\n\n[source]\nid = "keep"\n'

    changed = febrl._set_connector_key(text, "id", "b")

    assert tomllib.loads(changed) == {
        "connector": {"id": "b", "department": "d"},
        "source": {"id": "keep"},
    }
    with pytest.raises(ValueError, match="version"):
        febrl._set_connector_key(text, "version", "2")
