"""Tests for exchange.registry.linkage.golden: survivorship rules of the golden record."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from exchange.registry.linkage import (
    MOST_COMMON,
    MOST_RECENT,
    MOST_TRUSTED,
    PERSON,
    LinkRecord,
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
    assert golden["given_name"] == {"value": "秀英", "source": "person/hr/1", "rule": MOST_TRUSTED}
    assert golden["phone"] == {
        "value": "13900000000",
        "source": "person/health/7",
        "rule": MOST_RECENT,
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
    assert golden["family_name"] == {"value": "章", "source": "b", "rule": MOST_RECENT}


def test_a_tie_goes_to_the_smallest_ref_whatever_the_order() -> None:
    items = [(("b", {"family_name": "章"}), 1, NEW), (("a", {"family_name": "张"}), 1, NEW)]
    for order in (items, items[::-1]):
        golden = golden_record(order)
        assert golden["family_name"] == {"value": "张", "source": "a", "rule": "tie: smallest ref"}


def test_rules_are_configurable_per_field() -> None:
    items = [
        (("a", {"given_name": "伟"}), 1, OLD),
        (("b", {"given_name": "玮"}), 2, NEW),
        (("c", {"given_name": "玮"}), 3, OLD),
    ]
    assert golden_record(items)["given_name"]["value"] == "伟"
    golden = golden_record(items, {"given_name": (MOST_COMMON, MOST_TRUSTED)})
    assert golden["given_name"] == {"value": "玮", "source": "b", "rule": MOST_COMMON}
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
    assert golden["phone"] == {
        "value": "13900000000",
        "source": "person/health/7",
        "rule": MOST_RECENT,
    }


def test_naive_aware_and_missing_times_compare() -> None:
    east = timezone(timedelta(hours=8))
    items = [
        (("a", {"phone": "1"}), 1, datetime(2025, 1, 1, 7, 0, tzinfo=east)),  # 2024-12-31 23:00Z
        (("b", {"phone": "2"}), 1, datetime(2024, 12, 31, 23, 30)),  # naive, read as UTC
        (("c", {"phone": "3"}), 1, None),  # unknown: oldest
    ]
    assert golden_record(items)["phone"]["value"] == "2"
