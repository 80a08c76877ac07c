"""The access policy, the masking rules and the catalogue's validation of grants."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from exchange.access import catalogue
from exchange.access.masking import MaskKind, mask, mask_kind
from exchange.access.policy import Access, Denial, GrantRule, Mode, RowFacts, access, project
from exchange.core.db import make_engine, migrate, session_factory, transaction
from exchange.core.errors import ConflictError, NotFoundError, ValidationError
from schemas.standards import load_standard

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def grant(gid: int = 1, **kw: object) -> GrantRule:
    base: dict[str, object] = {
        "id": gid,
        "department": "civil_affairs",
        "role": "caseworker",
        "dataset": "person",
        "fields": {"full_name": Mode.FULL, "resident_id": Mode.MASKED},
        "purposes": frozenset({"mla"}),
        "constraints": {},
        "valid_from": T0,
    }
    base.update(kw)
    return GrantRule(**base)  # type: ignore[arg-type]


def decide(grants: list[GrantRule], purpose: str = "mla", at: datetime = T0) -> Access | Denial:
    return access(
        grants,
        department="civil_affairs",
        role="caseworker",
        dataset="person",
        purpose=purpose,
        at=at,
    )


def test_deny_by_default_with_a_reason() -> None:
    assert isinstance(decide([]), Denial)
    denied = decide([grant()], purpose="tax")
    assert isinstance(denied, Denial)
    assert "'tax'" in denied.reason
    other_role = grant(role="auditor")
    assert isinstance(decide([other_role]), Denial)
    other_dataset = grant(dataset="benefit_payment")
    assert isinstance(decide([other_dataset]), Denial)


def test_validity_and_revocation() -> None:
    expiring = grant(valid_until=T0 + timedelta(days=1))
    assert isinstance(decide([expiring], at=T0), Access)
    assert isinstance(decide([expiring], at=T0 + timedelta(days=1)), Denial)
    assert isinstance(decide([grant()], at=T0 - timedelta(seconds=1)), Denial)
    revoked = grant(revoked_at=T0 + timedelta(hours=1))
    assert isinstance(decide([revoked], at=T0), Access)
    denied = decide([revoked], at=T0 + timedelta(hours=2))
    assert isinstance(denied, Denial)
    assert "revoked" in denied.reason


def test_union_over_admitting_grants_full_beats_masked() -> None:
    local = grant(1, constraints={"division_prefix": "3301"}, fields={"resident_id": Mode.FULL})
    everywhere = grant(2, fields={"resident_id": Mode.MASKED, "birth_date": Mode.MASKED})
    found = decide([local, everywhere])
    assert isinstance(found, Access)
    inside = found.fields_for(RowFacts("hr", "330106"))
    outside = found.fields_for(RowFacts("hr", "110105"))
    assert inside == {"resident_id": Mode.FULL, "birth_date": Mode.MASKED}
    assert outside == {"resident_id": Mode.MASKED, "birth_date": Mode.MASKED}


def test_row_constraints_hide_rows() -> None:
    found = decide([grant(constraints={"division_prefix": "33", "department": "hr"})])
    assert isinstance(found, Access)
    assert found.fields_for(RowFacts("hr", "330106")) is not None
    assert found.fields_for(RowFacts("hr", None)) is None
    assert found.fields_for(RowFacts("health", "330106")) is None
    assert found.fields_for(RowFacts("hr", "110105")) is None
    unknown = decide([grant(constraints={"planet": "earth"})])
    assert isinstance(unknown, Access)
    assert unknown.fields_for(RowFacts("hr", "330106")) is None  # fails closed


def test_project_leaves_out_and_masks() -> None:
    payload = {
        "resident_id": "330106198005070011",
        "resident_id_bidx": "ab" * 32,
        "full_name": "王秀英",
        "phone": "13800001234",
    }
    kinds = {"resident_id": MaskKind.IDENTIFIER, "full_name": MaskKind.NAME}
    visible = {"resident_id": Mode.MASKED, "full_name": Mode.MASKED, "sex": Mode.FULL}
    assert project(payload, visible, kinds) == {
        "resident_id": "330106********0011",
        "full_name": "王**",
    }
    assert project(payload, None, kinds) is None


@pytest.mark.parametrize(
    ("value", "kind", "shown"),
    [
        ("330106198005070011", MaskKind.IDENTIFIER, "330106********0011"),
        ("SHORT", MaskKind.IDENTIFIER, "*****"),
        ("王秀英", MaskKind.NAME, "王**"),
        ("13800001234", MaskKind.PHONE, "*******1234"),
        ("1980-05-07", MaskKind.DATE, "1980-**-**"),
        ("330106", MaskKind.DIVISION, "3301**"),
        ("浙江省杭州市西湖区文三路1号", MaskKind.ADDRESS, "浙江省杭州市***"),
        ("MINIMUM_LIVING_ALLOWANCE", MaskKind.OTHER, "***"),
        (50000, MaskKind.OTHER, "***"),
        (None, MaskKind.NAME, None),
        (["PENSION", "MEDICAL"], MaskKind.OTHER, ["***", "***"]),
    ],
)
def test_masking_rules(value: object, kind: MaskKind, shown: object) -> None:
    assert mask(value, kind) == shown


def test_mask_kinds_come_from_the_standards() -> None:
    person = load_standard("person")
    kinds = {f.name: mask_kind(f) for f in person.fields}
    assert kinds["resident_id"] is MaskKind.IDENTIFIER
    assert kinds["full_name"] is MaskKind.NAME
    assert kinds["birth_date"] is MaskKind.DATE
    assert kinds["phone"] is MaskKind.PHONE
    assert kinds["residence_division_code"] is MaskKind.DIVISION


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    engine = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    migrate(engine)
    sessions = session_factory(engine)
    try:
        with transaction(sessions) as s:
            catalogue.add_purpose(s, "mla", "Minimum living allowance")
            catalogue.add_purpose(s, "old", "Old")
            catalogue.deactivate_purpose(s, "old")
            yield s
    finally:
        engine.dispose()


def spec(**kw: object) -> catalogue.GrantSpec:
    base: dict[str, object] = {
        "department": "civil_affairs",
        "role": "caseworker",
        "dataset": "person",
        "fields": {"full_name": "full"},
        "purposes": ["mla"],
        "row_constraints": {},
    }
    base.update(kw)
    return catalogue.GrantSpec(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"dataset": "shoes"}, "dataset.unknown"),
        ({"fields": {"shoe_size": "full"}}, "grant.field_unknown"),
        ({"fields": {"resident_id_bidx": "full"}}, "grant.field_unknown"),
        ({"fields": {"full_name": "blurred"}}, "grant.mode_invalid"),
        ({"fields": {}}, "grant.fields_missing"),
        ({"purposes": ["nope"]}, "grant.purpose_unknown"),
        ({"purposes": ["old"]}, "grant.purpose_inactive"),
        ({"purposes": []}, "grant.purposes_missing"),
        ({"role": "janitor"}, "grant.role_unknown"),
        ({"role": "publisher"}, "grant.role_not_grantee"),
        ({"role": "auditor"}, "grant.role_not_grantee"),
        ({"department": " "}, "grant.department_missing"),
        ({"row_constraints": {"planet": "earth"}}, "grant.constraint_unknown"),
        ({"row_constraints": {"division_prefix": "33x"}}, "grant.constraint_invalid"),
        (
            {"dataset": "household_membership", "row_constraints": {"division_prefix": "33"}},
            "grant.constraint_invalid",
        ),
        ({"valid_from": T0, "valid_until": T0}, "grant.validity_invalid"),
    ],
)
def test_grant_validation_names_the_problem(
    session: Session, change: dict[str, object], code: str
) -> None:
    if change.get("dataset") == "household_membership":
        change = {**change, "fields": {"household_id": "full"}}
    with pytest.raises(ValidationError) as info:
        catalogue.add_grant(session, spec(**change), created_by="t", at=T0)
    assert code in [reason for _, reason, _ in info.value.reasons]


def test_grant_lifecycle(session: Session) -> None:
    g = catalogue.add_grant(
        session,
        spec(row_constraints={"division_prefix": "3301"}),
        created_by="root",
        at=T0,
    )
    assert g.valid_from == T0
    assert "division_prefix=3301" in catalogue.summary(g)
    assert [x.id for x in catalogue.grants_of(session, "civil_affairs", "caseworker")] == [g.id]
    catalogue.revoke_grant(session, g.id, by="root", at=T0)
    assert catalogue.grants_of(session, "civil_affairs", "caseworker") == []
    assert catalogue.list_grants(session) == []
    assert [x.id for x in catalogue.list_grants(session, include_revoked=True)] == [g.id]
    with pytest.raises(ConflictError):
        catalogue.revoke_grant(session, g.id, by="root", at=T0)
    with pytest.raises(NotFoundError):
        catalogue.revoke_grant(session, 999, by="root", at=T0)


def test_purposes(session: Session) -> None:
    with pytest.raises(ConflictError):
        catalogue.add_purpose(session, "mla", "again")
    with pytest.raises(ValidationError):
        catalogue.add_purpose(session, "Bad Code!", "x")
    assert catalogue.active_purpose(session, "mla").code == "mla"
    for code, reason in (
        (None, "purpose.missing"),
        ("x1", "purpose.unknown"),
        ("old", "purpose.inactive"),
    ):
        with pytest.raises(ValidationError) as info:
            catalogue.active_purpose(session, code)
        assert info.value.reasons[0][1] == reason
