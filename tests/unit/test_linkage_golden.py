"""Tests for exchange.registry.linkage.golden: survivorship rules of the golden record."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange.registry.linkage import (
    AUTHORITATIVE,
    IDENTIFIER_CONFLICT,
    MOST_COMMON,
    MOST_RECENT,
    MOST_TRUSTED,
    PERSON,
    LinkRecord,
    authorities,
    conflict_flags,
    conflicts,
    golden_record,
    trust_ranks,
)

RANKS = trust_ranks(["household_registry", "health", "civil_affairs"])
OLD = datetime(2023, 1, 1, tzinfo=UTC)
NEW = datetime(2025, 1, 1, tzinfo=UTC)


def test_trust_ranks_start_at_one() -> None:
    assert RANKS == {"household_registry": 1, "health": 2, "civil_affairs": 3}


def test_identity_fields_come_from_the_most_trusted_source_and_contacts_from_the_latest() -> None:
    registry = (
        "person/hr/1",
        {"given_name": "秀英", "phone": "13800000000", "birth_date": "1985-03-04"},
    )
    health = (
        "person/health/7",
        {"given_name": "秀瑛", "phone": "13900000000", "birth_date": "1985-03-04"},
    )
    golden = golden_record([(registry, 1, OLD), (health, 2, NEW)])
    conflict = [["person/health/7"], ["person/hr/1"]]
    assert golden["given_name"] == {
        "value": "秀英",
        "source": "person/hr/1",
        "rule": MOST_TRUSTED,
        "conflict": conflict,
    }
    assert golden["phone"] == {
        "value": "13900000000",
        "source": "person/health/7",
        "rule": MOST_RECENT,
        "conflict": conflict,
    }
    assert golden["birth_date"] == {
        "value": "1985-03-04",
        "source": "person/hr/1",
        "rule": "agreed",
    }
    json.dumps(golden, ensure_ascii=False)


def test_missing_values_never_survive() -> None:
    golden = golden_record(
        [
            (("a", {"phone": None, "sex": " "}), 1, NEW),
            (("b", {"phone": "139", "sex": "MALE"}), 2, OLD),
        ]
    )
    assert golden["phone"]["value"] == "139"
    assert golden["sex"]["value"] == "MALE"


def test_equally_trusted_sources_fall_back_to_the_most_recent() -> None:
    golden = golden_record(
        [(("a", {"family_name": "张"}), 1, OLD), (("b", {"family_name": "章"}), 1, NEW)]
    )
    assert golden["family_name"] == {
        "value": "章",
        "source": "b",
        "rule": MOST_RECENT,
        "conflict": [["a"], ["b"]],
    }


def test_a_tie_goes_to_the_smallest_ref_whatever_the_order() -> None:
    items = [(("b", {"family_name": "章"}), 1, NEW), (("a", {"family_name": "张"}), 1, NEW)]
    for order in (items, items[::-1]):
        golden = golden_record(order)
        assert golden["family_name"] == {
            "value": "张",
            "source": "a",
            "rule": "tie: smallest ref",
            "conflict": [["a"], ["b"]],
        }


def test_rules_are_configurable_per_field() -> None:
    items = [
        (("a", {"given_name": "伟"}), 1, OLD),
        (("b", {"given_name": "玮"}), 2, NEW),
        (("c", {"given_name": "玮"}), 3, OLD),
    ]
    assert golden_record(items)["given_name"]["value"] == "伟"
    golden = golden_record(items, {"given_name": (MOST_COMMON, MOST_TRUSTED)})
    assert golden["given_name"] == {
        "value": "玮",
        "source": "b",
        "rule": MOST_COMMON,
        "conflict": [["a"], ["b", "c"]],
    }
    with pytest.raises(ValueError, match="unknown survivorship criterion"):
        golden_record(items, {"given_name": ("loudest",)})


def test_link_records_give_their_fields_and_their_own_update_time() -> None:
    a = LinkRecord(
        "person/hr/1", PERSON, "household_registry", identifier="ab", family_name="张",
        birth_date=date(1985, 3, 4), phone="13800000000", updated_at=OLD,
    )  # fmt: skip
    b = LinkRecord("person/health/7", PERSON, "health", phone="13900000000", updated_at=NEW)
    golden = golden_record([(a, 1, None), (b, 2, None)])
    assert golden["birth_date"]["value"] == "1985-03-04"
    assert golden["identifier"]["source"] == "person/hr/1"
    assert golden["phone"]["value"] == "13900000000"
    assert golden["phone"]["rule"] == MOST_RECENT


def test_naive_aware_and_missing_times_compare() -> None:
    east = timezone(timedelta(hours=8))
    items = [
        (("a", {"phone": "1"}), 1, datetime(2025, 1, 1, 7, 0, tzinfo=east)),  # 2024-12-31 23:00Z
        (("b", {"phone": "2"}), 1, datetime(2024, 12, 31, 23, 30)),  # naive, read as UTC
        (("c", {"phone": "3"}), 1, None),  # unknown: oldest
    ]
    assert golden_record(items)["phone"]["value"] == "2"


# -- authoritative departments -----------------------------------------------------------


def test_the_household_registry_is_authoritative_for_names_dates_sex_and_the_id_by_default() -> (
    None
):
    # The false merge of issue 18: health's record is newer and more trusted than the
    # household registry's, yet the names and the birth date come from the registry.
    registry = (
        "person/household_registry/H1",
        {"given_name": "秀英", "birth_date": "1985-03-04", "sex": "FEMALE", "phone": "138"},
    )
    health = (
        "person/health/7",
        {"given_name": "秀芳", "birth_date": "1985-04-03", "sex": "FEMALE", "phone": "139"},
    )
    golden = golden_record([(registry, 3, OLD), (health, 1, NEW)])
    for name in ("given_name", "birth_date"):
        assert golden[name]["source"] == "person/household_registry/H1"
        assert golden[name]["rule"] == AUTHORITATIVE
    assert golden["sex"]["rule"] == "agreed"
    assert golden["phone"]["source"] == "person/health/7"  # contacts: the latest first


def test_an_agreed_value_cites_the_authoritative_record() -> None:
    items = [
        (("person/civil_affairs/C1", {"birth_date": "1985-03-04"}), 1, NEW),
        (("person/household_registry/H1", {"birth_date": "1985-03-04"}), 2, OLD),
    ]
    golden = golden_record(items)
    assert golden["birth_date"] == {
        "value": "1985-03-04",
        "source": "person/household_registry/H1",
        "rule": "agreed",
    }


def test_authorities_are_configurable_per_field_in_order() -> None:
    items = [
        (("organisation/tax/1", {"legal_name": "甲公司"}), 1, NEW),
        (("organisation/market_regulation/9", {"legal_name": "甲有限公司"}), 2, OLD),
        (("organisation/statistics/4", {"legal_name": "甲有限责任公司"}), 3, OLD),
    ]
    assert golden_record(items)["legal_name"]["source"] == "organisation/tax/1"  # most trusted
    rules = authorities({"legal_name": ["market_regulation", "statistics"]})
    golden = golden_record(items, kind="organisation", authority=rules)
    assert golden["legal_name"] == {
        "value": "甲有限公司",
        "source": "organisation/market_regulation/9",
        "rule": AUTHORITATIVE,
        "conflict": [
            ["organisation/market_regulation/9"],
            ["organisation/statistics/4"],
            ["organisation/tax/1"],
        ],
    }
    # The second authority is used when the first offers no value.
    golden = golden_record(items[::2], kind="organisation", authority=rules)
    assert golden["legal_name"]["source"] == "organisation/statistics/4"


def test_an_empty_list_of_authorities_removes_the_default() -> None:
    rules = authorities({"given_name": []})
    assert rules["given_name"] == ()
    assert rules["family_name"] == ("household_registry",)
    items = [
        (("person/household_registry/1", {"given_name": "伟"}), 2, OLD),
        (("person/health/2", {"given_name": "玮"}), 1, OLD),
    ]
    assert golden_record(items, authority=rules)["given_name"]["value"] == "玮"
    assert golden_record(items)["given_name"]["value"] == "伟"


# -- conflicts and identifiers -----------------------------------------------------------


def test_different_identifiers_are_never_chosen_between() -> None:
    a = ("person/household_registry/H1", {"resident_id_bidx": "aa11", "given_name": "秀英"})
    b = ("person/health/7", {"resident_id_bidx": "bb22", "given_name": "秀芳"})
    c = ("person/civil_affairs/C3", {"resident_id_bidx": "AA11 "})  # the same index as a
    golden = golden_record([(a, 1, OLD), (b, 1, NEW), (c, 2, NEW)])
    assert golden["resident_id_bidx"] == {
        "value": None,
        "source": None,
        "rule": IDENTIFIER_CONFLICT,
        "conflict": [
            ["person/civil_affairs/C3", "person/household_registry/H1"],
            ["person/health/7"],
        ],
    }
    assert conflict_flags(golden) == ["identifier"]
    assert conflicts(golden) == {
        "given_name": [["person/health/7"], ["person/household_registry/H1"]],
        "resident_id_bidx": golden["resident_id_bidx"]["conflict"],
    }
    json.dumps(golden)


def test_one_identifier_in_any_case_or_spacing_is_no_conflict() -> None:
    golden = golden_record(
        [
            (("a", {"uscc": "91350100M000100Y43"}), 1, OLD),
            (("b", {"uscc": " 91350100m000100y43"}), 1, NEW),
        ],
        kind="organisation",
    )
    assert golden["uscc"] == {"value": " 91350100m000100y43", "source": "b", "rule": "agreed"}
    assert "conflict" not in golden["uscc"]
    assert conflict_flags(golden) == []


def test_conflicts_name_refs_never_values() -> None:
    golden = golden_record(
        [(("a", {"phone": "13800000001"}), 1, OLD), (("b", {"phone": "13900000002"}), 1, NEW)]
    )
    assert "13800000001" not in json.dumps(conflicts(golden))
    assert conflicts(golden) == {"phone": [["a"], ["b"]]}


def test_link_records_with_different_identifiers_are_flagged() -> None:
    a = LinkRecord("person/hr/1", PERSON, "household_registry", identifier="ab", updated_at=OLD)
    b = LinkRecord("person/health/7", PERSON, "health", identifier="cd", updated_at=NEW)
    golden = golden_record([(a, 1, None), (b, 2, None)])
    assert golden["identifier"]["value"] is None
    assert conflict_flags(golden) == ["identifier"]


# -- properties ----------------------------------------------------------------------------

FIELDS = ("family_name", "given_name", "birth_date", "phone", "resident_id_bidx")
DEPARTMENTS = ("household_registry", "health", "civil_affairs", "tax")
TIMES = st.one_of(st.none(), st.sampled_from([OLD, NEW, datetime(2024, 6, 1)]))
VALUES = st.one_of(st.none(), st.just(""), st.sampled_from(["张", "章", "x1", "X1 ", "伟"]))


@st.composite
def members(
    draw: st.DrawFn,
) -> list[tuple[tuple[str, dict[str, str | None]], int, datetime | None]]:
    count = draw(st.integers(1, 6))
    out = []
    for i in range(count):
        department = draw(st.sampled_from(DEPARTMENTS))
        payload = {name: draw(VALUES) for name in FIELDS}
        out.append(((f"person/{department}/{i}", payload), draw(st.integers(1, 4)), draw(TIMES)))
    return out


@given(members(), st.booleans())
def test_a_golden_value_is_always_one_of_the_members_values(
    items: list[tuple[tuple[str, dict[str, str | None]], int, datetime | None]], reverse: bool
) -> None:
    golden = golden_record(items[::-1] if reverse else items)
    for name, chosen in golden.items():
        offered = {
            (ref, payload[name])
            for (ref, payload), _, _ in items
            if payload[name] is not None and payload[name].strip()
        }
        if chosen["value"] is None:
            assert chosen["rule"] == IDENTIFIER_CONFLICT
            continue
        assert (chosen["source"], chosen["value"]) in offered
    assert golden == golden_record(items[::-1] if not reverse else items)  # order-free


@given(members())
def test_different_identifiers_are_always_flagged(
    items: list[tuple[tuple[str, dict[str, str | None]], int, datetime | None]],
) -> None:
    golden = golden_record(items)
    indexes = {
        payload["resident_id_bidx"].strip().upper()
        for (_, payload), _, _ in items
        if payload["resident_id_bidx"] is not None and payload["resident_id_bidx"].strip()
    }
    assert (conflict_flags(golden) == ["identifier"]) == (len(indexes) > 1)
    if len(indexes) > 1:
        assert golden["resident_id_bidx"]["value"] is None
        held = [ref for group in golden["resident_id_bidx"]["conflict"] for ref in group]
        assert sorted(held) == sorted(
            ref
            for (ref, payload), _, _ in items
            if payload["resident_id_bidx"] and payload["resident_id_bidx"].strip()
        )


def test_the_gateways_shown_identifiers_are_identifiers_too() -> None:
    # The gateway builds the golden record from fields as the caller sees them: a masked
    # identity number is a per-purpose token, equal for one number, different for two.
    items = [
        (("person/household_registry/H1", {"resident_id": "tk_aaaa", "uscc": None}), 1, OLD),
        (("person/health/M7", {"resident_id": "tk_bbbb"}), 1, NEW),
    ]
    golden = golden_record(items)
    assert golden["resident_id"]["value"] is None
    assert golden["resident_id"]["rule"] == IDENTIFIER_CONFLICT
    assert conflict_flags(golden) == ["identifier"]
