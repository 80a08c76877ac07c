"""exchange.registry.operatorview: what an operator's screen shows of an entity."""

from __future__ import annotations

from typing import Any

from exchange.access.masking import HIDDEN
from exchange.registry.entityview import ENCRYPTED
from exchange.registry.operatorview import operator_view, shown_fields, shown_value

A, B, C = "person/household_registry/H1", "person/health/M7", "benefit_payment/civil_affairs/P1"


def _view(links: list[dict[str, Any]]) -> dict[str, Any]:
    record = {"version": 1, "updated_at": "2026-01-01T00:00:00+00:00", "fields": {}}
    return {
        "entity": "P" + "0" * 20,
        "kind": "person",
        "golden_record": {
            "resident_id_bidx": {"value": "9f" * 32, "source": A, "rule": "agreed"},
            "given_name": {"value": "秀英", "source": A, "rule": "authoritative"},
            "residence_division_code": {"value": "110105", "source": B, "rule": "agreed"},
        },
        "flags": [],
        "records": [
            {
                "ref": ref,
                "dataset": ref.split("/")[0],
                "department": ref.split("/")[1],
                "source_id": ref.split("/")[2],
                **record,
            }
            for ref in (A, B, C)
        ],
        "links": links,
    }


def _link(a: str, b: str, status: str, weight: float, **explanation: Any) -> dict[str, Any]:
    return {"a": a, "b": b, "status": status, "weight": weight, "decided_by": None,
            "explanation": explanation}  # fmt: skip


def test_a_blind_index_stands_for_its_identifier_and_personal_values_are_masked() -> None:
    shown = operator_view(_view([]))
    golden = shown["golden_record"]
    assert "resident_id_bidx" not in golden
    assert golden["resident_id"] == {"value": ENCRYPTED, "source": A, "rule": "agreed"}
    assert golden["given_name"]["value"] == "**"
    assert golden["residence_division_code"]["value"] == "110105"  # internal: as stored
    assert operator_view(_view([]), unmask=True)["golden_record"]["given_name"]["value"] == "秀英"


def test_fields_lose_internal_names_and_unknown_datasets_fail_closed() -> None:
    fields = {
        "resident_id": ENCRYPTED,
        "resident_id_bidx": "ab",
        "content_hash": "cd",
        "family_name": "欧阳",
        "phone": "13800000001",
        "birth_date": "1985-03-04",
    }
    assert shown_fields("person", fields) == {
        "resident_id": ENCRYPTED,
        "family_name": "**",
        "phone": "*******0001",
        "birth_date": "1985-**-**",
    }
    assert shown_value("no_such_dataset", "anything", "secret") == HIDDEN
    assert shown_value("person", "resident_id", "110105198503040021", unmask=True) == ENCRYPTED
    assert shown_value("organisation", "legal_name", "示例有限公司") == "示例有限公司"  # public
    assert shown_value("organisation", "legal_representative_name", "王伟") == HIDDEN  # redact


def test_how_each_record_joined_is_said_from_the_entity_views_joins() -> None:
    view = _view([_link(A, B, "link", 12.3)])
    joins = {
        A: {"how": "identifier"},
        B: {"how": "probabilistic", "weight": 12.3, "probability": 0.98},
        C: {"how": "reviewer", "decided_by": "wang.li", "decided_at": "2026-12-01T00:00:00"},
    }
    for record in view["records"]:
        record["joined"] = joins[record["ref"]]
    joined = {r["ref"]: r["joined"] for r in operator_view(view)["records"]}
    assert joined[A] == "identifier"
    assert joined[B] == "probabilistic: weight +12.3, probability 0.980"
    assert joined[C] == "reviewer: wang.li at 2026-12-01T00:00:00"
    alone = operator_view(_view([]))["records"][0]
    assert alone["joined"] == "alone"
