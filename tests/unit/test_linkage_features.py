"""Tests for exchange.registry.linkage.features: link records read from registry payloads."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

import exchange.registry.linkage as linkage
from exchange.registry.linkage import (
    ORGANISATION,
    PERSON,
    LinkRecord,
    organisation_record,
    person_record,
)
from exchange.registry.linkage.features import (
    normalise_name,
    normalise_phone,
    organisation_core,
    pinyin,
    split_full_name,
)

PAYLOAD = {
    "resident_id": "AQID",  # ciphertext, never read
    "resident_id_bidx": "ab" * 32,
    "family_name": "张",
    "given_name": "伟",
    "full_name": "张伟",
    "birth_date": "1985-03-04",
    "sex": "MALE",
    "nationality": "CHN",
    "residence_division_code": "110105",
    "phone": "13800000000",
}

LP, RP = "\uff08", "\uff09"  # full-width brackets, as on Chinese licences


def test_the_package_exports_what_it_lists() -> None:
    for name in linkage.__all__:
        assert hasattr(linkage, name), name


def test_person_record_reads_a_registry_payload() -> None:
    at = datetime(2025, 1, 2, tzinfo=UTC)
    rec = person_record("person/hr/HR-1", "household_registry", PAYLOAD, at)
    assert rec.kind == PERSON
    assert rec.identifier == "ab" * 32
    assert rec.birth_date == date(1985, 3, 4)
    assert rec.division_code == "110105"
    assert rec.updated_at == at
    # derived features
    assert (rec.family, rec.given, rec.full) == ("张", "伟", "张伟")
    assert (rec.family_py, rec.given_py) == ("zhang", "wei")
    assert rec.birth == "19850304"
    assert rec.sex_code == "MALE"


def test_missing_and_malformed_values_are_missing_not_errors() -> None:
    rec = person_record(
        "r", "d", {"family_name": " ", "birth_date": "1985-02-30", "sex": "UNKNOWN"}
    )
    assert rec.identifier is None
    assert rec.family is None
    assert rec.birth_date is None
    assert rec.sex_code is None


def test_dates_may_be_date_objects() -> None:
    rec = person_record("r", "d", {"birth_date": date(2001, 2, 3)})
    assert rec.birth == "20010203"
    rec = person_record("r", "d", {"birth_date": datetime(2001, 2, 3, 4, 5)})
    assert rec.birth == "20010203"


def test_full_name_only_is_split_with_compound_surnames() -> None:
    assert split_full_name("欧阳娜") == ("欧阳", "娜")
    assert split_full_name("张秀英") == ("张", "秀英")
    assert split_full_name("司马光", "司马") == ("司马", "光")
    rec = person_record("r", "d", {"full_name": "欧阳 娜"})
    assert (rec.family, rec.given) == ("欧阳", "娜")


def test_names_are_nfkc_normalised_without_separators() -> None:
    assert normalise_name(" 张　伟 ") == "张伟"
    assert normalise_name("Mary-Ann O\u2019Brien") == "MARYANNOBRIEN"
    assert normalise_name("  ") is None
    assert normalise_name(None) is None


def test_pinyin_is_toneless_per_character_with_family_readings() -> None:
    assert pinyin("张伟") == "zhangwei"
    assert pinyin("張偉") == "zhangwei"  # traditional characters read the same
    assert pinyin("单", family=True) == "shan"
    assert pinyin("单") == "dan"


def test_phone_numbers_keep_digits_without_country_prefix() -> None:
    assert normalise_phone("+86 138-0000-0000") == "13800000000"
    assert normalise_phone("0086 13800000000") == "13800000000"
    assert normalise_phone("010 6512 3456") == "01065123456"
    assert normalise_phone("12") is None


@pytest.mark.parametrize(
    ("name", "core"),
    [
        ("北京华信科技有限公司", "华信科技"),
        (f"华信科技{LP}北京{RP}有限公司", "华信科技"),
        ("华信科技有限责任公司", "华信科技"),
        ("华信科技股份有限公司", "华信科技"),
        ("公司", "公司"),
    ],
)
def test_organisation_core_drops_region_brackets_and_legal_form(name: str, core: str) -> None:
    assert organisation_core(normalise_name(name) or "") == core


def test_organisation_record_maps_its_fields() -> None:
    payload = {
        "uscc": "91110108mA01abcd1x",
        "legal_name": "北京华信科技有限公司",
        "registration_date": "2010-05-06",
        "registered_division_code": "110108",
        "legal_representative_name": "王芳",
    }
    rec = organisation_record("organisation/mr/1", "market_regulation", payload)
    assert rec.kind == ORGANISATION
    assert rec.identifier == "91110108MA01ABCD1X"
    assert rec.full_name == "北京华信科技有限公司"
    assert rec.core == "华信科技"
    assert rec.birth_date == date(2010, 5, 6)
    assert rec.division == "110108"
    assert rec.representative_py == "wangfang"


def test_link_records_compare_by_their_fields_not_derived_ones() -> None:
    a = LinkRecord("r", PERSON, "d", family_name="张")
    b = LinkRecord("r", PERSON, "d", family_name="张")
    assert a == b
    assert hash(a) == hash(b)
