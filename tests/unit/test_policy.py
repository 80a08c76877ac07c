"""The access policy, the masking rules and the catalogue's validation of grants."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from exchange.access import catalogue
from exchange.access.masking import MaskKind, mask, mask_kind, parse_style, style_of
from exchange.access.policy import Access, Denial, GrantRule, Mode, RowFacts, access, project
from exchange.core.db import make_engine, migrate, session_factory, transaction
from exchange.core.errors import ConflictError, NotFoundError, ValidationError
from schemas.standards import available, load_standard

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


def test_linked_by_admits_only_records_joined_that_way() -> None:
    only_id = decide([grant(constraints={"linked_by": "identifier"})])
    reviewed = decide([grant(constraints={"linked_by": "reviewed"})])
    odd = decide([grant(constraints={"linked_by": "anything"})])
    assert isinstance(only_id, Access)
    assert isinstance(reviewed, Access)
    assert isinstance(odd, Access)
    for joined, by_id, by_review in (
        ("identifier", True, True),
        ("reviewer", False, True),
        ("probabilistic", False, False),
        (None, False, False),  # not known how: hidden, failing closed
    ):
        facts = RowFacts("hr", "330106", joined)
        assert (only_id.fields_for(facts) is not None) is by_id
        assert (reviewed.fields_for(facts) is not None) is by_review
        assert odd.fields_for(facts) is None
    # a second grant without the constraint shows what the first hides
    both = decide([grant(1, constraints={"linked_by": "identifier"}), grant(2)])
    assert isinstance(both, Access)
    assert both.fields_for(RowFacts("hr", "330106", "probabilistic")) is not None


def test_project_leaves_out_and_masks() -> None:
    payload = {
        "resident_id": "330106198005070011",
        "resident_id_bidx": "ab" * 32,
        "full_name": "王秀英",
        "given_name": "秀英",
        "phone": "13800001234",
    }
    styles = {
        "resident_id": parse_style("token"),
        "full_name": parse_style("redact"),
        "given_name": parse_style("initial_only"),
        "phone": parse_style("keep_last:4"),
    }
    visible = {
        "resident_id": Mode.MASKED,
        "full_name": Mode.MASKED,
        "given_name": Mode.MASKED,
        "phone": Mode.REDACTED,
        "sex": Mode.FULL,
    }
    tokens = {"resident_id": "cn.resident_id"}

    def token(domain: str, value: str) -> str:
        return f"tk_{domain}:{len(value)}"

    assert project(payload, visible, styles, domains=tokens, tokenizer=token) == {
        "resident_id": "tk_cn.resident_id:18",
        "full_name": "***",
        "given_name": "**",  # a part of 2 characters is hidden whole
        "phone": "***",  # redacted by the disclosure rule, whatever its style
    }
    # Without a tokenizer (no purpose), a token field is redacted.
    assert project(payload, visible, styles)["resident_id"] == "***"  # type: ignore[index]
    assert project(payload, None, styles) is None


@pytest.mark.parametrize(
    ("value", "style", "shown"),
    [
        ("330106198005070011", "keep_last:4", "**************0011"),
        ("330106198005070011", "keep_first:6", "330106************"),
        ("SHORT", "keep_last:5", "*****"),
        ("王秀英", "initial_only", "王**"),
        ("伟", "initial_only", "*"),
        ("秀英", "initial_only", "**"),
        ("欧阳", "initial_only", "**"),
        ("Anna Maria", "initial_only", "A*** M****"),
        ("Li Wei", "initial_only", "** W**"),
        ("买买提·艾力", "initial_only", "买**·**"),
        ("王秀英", "redact", "***"),
        ("13800001234", "keep_last:4", "*******1234"),
        ("1980-05-07", "year_only", "1980-**-**"),
        ("330106", "keep_first:4", "3301**"),
        ("浙江省杭州市西湖区文三路1号", "keep_first:6", "浙江省杭州市********"),
        ("MINIMUM_LIVING_ALLOWANCE", "redact", "***"),
        ("MINIMUM_LIVING_ALLOWANCE", "token", "***"),  # no tokenizer: redacted
        (50000, "keep_last:2", "***"),
        (None, "initial_only", None),
        (["PENSION", "MEDICAL"], "redact", ["***", "***"]),
    ],
)
def test_masking_styles(value: object, style: str, shown: object) -> None:
    assert mask(value, parse_style(style)) == shown


def test_masking_styles_come_from_the_standards() -> None:
    person = load_standard("person")
    kinds = {f.name: mask_kind(f) for f in person.fields}
    assert kinds["resident_id"] is MaskKind.IDENTIFIER
    assert kinds["full_name"] is MaskKind.NAME
    assert kinds["birth_date"] is MaskKind.DATE
    assert kinds["phone"] is MaskKind.PHONE
    assert kinds["residence_division_code"] is MaskKind.DIVISION
    styles = {f.name: str(style_of(f)) for f in person.fields}
    assert styles == {
        "resident_id": "token",
        "family_name": "initial_only",
        "given_name": "initial_only",
        "full_name": "redact",
        "birth_date": "year_only",
        "sex": "redact",
        "nationality": "redact",
        "residence_division_code": "keep_first:4",
        "phone": "keep_last:4",
        "address_line": "redact",
        "postcode": "keep_first:2",
        "current_division_code": "keep_first:4",
        "current_address_line": "redact",
    }
    # Every field of every shipped standard declares its style, and it is one.
    for name in available():
        for spec in load_standard(name).fields:
            assert spec.mask is not None, f"{name}.{spec.name} declares no mask"
            parse_style(spec.mask)


@pytest.mark.parametrize("text", ["keep_last", "keep_last:0", "first:4", "Redact", "token:1"])
def test_a_style_that_is_not_one_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a masking style"):
        parse_style(text)


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
        ({"row_constraints": {"linked_by": "probability"}}, "grant.constraint_invalid"),
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
