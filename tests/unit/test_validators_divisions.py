"""The complete GB/T 2260 lists (schemas/data): current codes valid, retired codes
valid and flagged, anything else refused; loaded once."""

from __future__ import annotations

from pathlib import Path

import pytest

import schemas
from schemas import validators
from schemas.validators import (
    division,
    division_code,
    division_codes,
    division_flag,
    division_name,
    get_flag,
)

DATA = Path(schemas.__file__).parent / "data"


def test_the_current_list_is_complete() -> None:
    table = validators._divisions()
    levels = [d.level for d in table.values()]
    assert levels.count("province") == 34
    assert levels.count("prefecture") >= 333
    assert levels.count("county") >= 2800
    assert 3000 <= len(table) <= 3500


@pytest.mark.parametrize(
    ("code", "name"),
    [("330105", "拱墅区"), ("330102", "上城区"), ("330114", "钱塘区"), ("653226", "于田县"),
     ("460400", "儋州市"), ("110105", "朝阳区"), ("540100", "拉萨市")],
)  # fmt: skip
def test_current_codes_validate_without_a_flag(code: str, name: str) -> None:
    assert division_code(code) is None
    assert division_name(code) == name
    assert division_flag(code) is None
    found = division(code)
    assert found is not None
    assert not found.retired


@pytest.mark.parametrize(
    ("code", "name", "year", "successor"),
    [("330103", "下城区", 2021, "330105 拱墅区"), ("110103", "崇文区", 2010, "110101 东城区"),
     ("330104", "江干区", 2021, "330114 钱塘区")],
)  # fmt: skip
def test_retired_codes_validate_and_are_flagged(
    code: str, name: str, year: int, successor: str
) -> None:
    assert division_code(code) is None
    assert division_name(code) == name
    assert code not in division_codes()  # the disclosure rule counts current codes only
    flag = division_flag(code)
    assert flag is not None
    assert flag.code == "division_code.retired"
    assert str(year) in flag.message
    assert successor in flag.message
    assert get_flag("cn.division_code", code) == flag
    assert get_flag("cn.phone", code) is None


@pytest.mark.parametrize("code", ["330199", "999999", "000000", "440399"])
def test_codes_in_neither_list_are_refused(code: str) -> None:
    result = division_code(code)
    assert result is not None
    assert result.code == "division_code.unknown"


def test_the_retired_list_is_consistent_with_the_current_one() -> None:
    current = validators._divisions()
    retired = validators._retired_divisions()
    assert len(retired) >= 3000
    assert not set(current) & set(retired)
    for code, found in retired.items():
        assert found.code == code
        assert found.retired_in is not None
        assert 1980 < found.retired_in <= 2025
        for successor in found.successors:
            assert successor in current or successor in retired, (code, successor)


def test_both_lists_are_loaded_once() -> None:
    assert validators._divisions() is validators._divisions()
    assert validators._retired_divisions() is validators._retired_divisions()


def test_the_vendored_data_names_its_source_and_date() -> None:
    readme = (DATA / "README.md").read_text(encoding="utf-8")
    assert "yescallop/areacodes" in readme
    assert "eed219a0678d36bacaa717f62443b10e869f0291" in readme
    assert "2024-12-31" in readme
    for name in ("cn_divisions.csv", "cn_divisions_retired.csv"):
        assert name in readme
        assert (DATA / name).stat().st_size < 200_000
