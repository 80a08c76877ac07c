"""The sharing workflow's rules, on SQLite and PostgreSQL (exchange.access.sharing).

Not shared cannot be requested; unconditional is granted on request; only the owner's
steward decides, never the requester; a narrowing wider than asked is refused and
changes nothing; an approval that would break the disclosure rule fails and leaves the
request submitted; a renewal's grant starts exactly when the old one ends.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from exchange.access import catalogue, disclosure, resources, sharing
from exchange.access.sharing import Actor, RequestSpec, Terms
from exchange.core.db import transaction
from exchange.core.errors import (
    ConflictError,
    DisclosureRuleError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)
from exchange.core.models import Grant, SharingRequest, SharingRequestEvent
from exchange.identity import identities
from schemas.standards import load_standard, standard_from_schema
from tests.support.catalogue import add_purpose
from tests.support.database import migrated
from tests.support.postgres import PostgresServer

pytestmark = pytest.mark.integration

MLA = "minimum-living-allowance"
OWNER, CONSUMER, OTHER = "household_registry", "civil_affairs", "health"
CENTRAL = Actor("central", "exchange_office", "admin")
HR_STEWARD = Actor("hr.steward", OWNER, "data_steward")
HR_ADMIN = Actor("hr.admin", OWNER, "department_admin")
CA_ADMIN = Actor("ca.admin", CONSUMER, "department_admin")
CA_STEWARD = Actor("ca.steward", CONSUMER, "data_steward")
HE_STEWARD = Actor("he.steward", OTHER, "data_steward")
HE_ADMIN = Actor("he.admin", OTHER, "department_admin")
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
FIELDS = {"resident_id": "full", "full_name": "full", "phone": "masked"}


def spec(dataset: str = "person", **changes: object) -> RequestSpec:
    values: dict[str, object] = {
        "dataset": dataset,
        "fields": FIELDS,
        "purposes": [MLA],
        "legal_basis": "Measures for minimum living allowance, art. 12",
        "justification": "identity checks during reviews",
        "duration_days": 60,
        "row_constraints": {"division_prefix": "33"},
    } | changes
    return RequestSpec(**values)  # type: ignore[arg-type]


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    yield from _world(database_url)


def _world(database_url: str) -> Iterator[sessionmaker[Session]]:
    with migrated(database_url) as made:
        with transaction(made) as session:
            for code in (OWNER, CONSUMER, OTHER, CENTRAL.department):
                identities.create_department(session, code, code)
        add_purpose(made, MLA)
        add_purpose(made, "tax-assessment")
        for dataset, owner, sharing_type in (
            ("person", OWNER, "conditional"),
            ("household_membership", OWNER, "unconditional"),
            ("benefit_payment", CONSUMER, "conditional"),
            ("health_insurance_enrolment", OTHER, "not_shared"),
        ):
            with transaction(made) as session:
                resources.set_resource(
                    session,
                    resources.Editor(CENTRAL.actor, CENTRAL.department, "admin"),
                    dataset,
                    resources.ResourceChange(
                        owner=owner, title=dataset, frequency="daily", sharing=sharing_type
                    ),
                    at=T0,
                )
        yield made


def codes(exc: ValidationError) -> list[str]:
    return [code for _, code, _ in exc.reasons]


def test_what_cannot_be_requested(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        with pytest.raises(ValidationError) as not_shared:
            sharing.submit(
                session,
                CA_ADMIN,
                spec("health_insurance_enrolment", fields={"status": "full"}),
                at=T0,
            )
        assert codes(not_shared.value) == ["request.not_shared"]
        with pytest.raises(ValidationError) as absent:
            sharing.submit(session, CA_ADMIN, spec("organisation"), at=T0)
        assert codes(absent.value) == ["request.dataset_not_in_catalogue"]
        with pytest.raises(ValidationError) as bad:
            sharing.submit(
                session,
                CA_ADMIN,
                spec(
                    fields={"salary": "full", "phone": "blurred"},
                    purposes=["no-such-purpose"],
                    duration_days=2000,
                    justification=" ",
                ),
                at=T0,
            )
        assert sorted(codes(bad.value)) == sorted(
            [
                "request.justification_missing",
                "request.duration_invalid",
                "grant.field_unknown",
                "grant.mode_invalid",
                "grant.purpose_unknown",
            ]
        )
        with pytest.raises(PermissionDeniedError):
            sharing.submit(session, HR_STEWARD, spec(), at=T0)  # stewards decide, never ask
        with pytest.raises(ValidationError) as grantee:
            sharing.submit(session, CA_ADMIN, spec(grantee_role="data_steward"), at=T0)
        assert codes(grantee.value) == ["grant.role_not_grantee"]
        first = sharing.submit(session, CA_ADMIN, spec(), at=T0)
        with pytest.raises(ConflictError):
            sharing.submit(session, CA_ADMIN, spec(fields={"full_name": "full"}), at=T0)
        # Another purpose is another request.
        sharing.submit(session, CA_ADMIN, spec(purposes=["tax-assessment"]), at=T0)
        assert first.status == "submitted"
    with sessions() as session:
        assert session.scalars(select(Grant)).all() == []
        assert len(session.scalars(select(SharingRequest)).all()) == 2


def test_unconditional_is_granted_on_request(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        done = sharing.submit(
            session,
            CA_ADMIN,
            spec("household_membership", fields={"household_id": "full"}, row_constraints={}),
            at=T0,
        )
        assert (done.status, done.decided_by) == ("approved", sharing.UNCONDITIONAL_RULE)
        grant = session.get(Grant, done.grant_id)
        assert grant is not None
        assert (grant.origin, grant.sharing_request_id) == ("request", done.id)
        assert (grant.valid_from, grant.valid_until) == (T0, T0 + timedelta(days=60))
        events = sharing.history(session, done.id)
        assert [(e.action, e.actor, e.department) for e in events] == [
            ("submit", "ca.admin", CONSUMER),
            ("approve", sharing.UNCONDITIONAL_RULE, OWNER),
        ]


def test_only_the_owners_steward_decides_never_the_requester(
    sessions: sessionmaker[Session],
) -> None:
    with transaction(sessions) as session:
        asked = sharing.submit(session, CA_ADMIN, spec(), at=T0).id
        ask_own = spec("benefit_payment", fields={"amount_fen": "full"}, row_constraints={})
        own = sharing.submit(session, CA_ADMIN, ask_own, at=T0).id
    for who in (CA_STEWARD, CA_ADMIN, HR_ADMIN, CENTRAL):
        with transaction(sessions) as session, pytest.raises(PermissionDeniedError):
            sharing.approve(session, who, asked, at=T0)
        with transaction(sessions) as session, pytest.raises(PermissionDeniedError):
            sharing.refuse(session, who, asked, "no", at=T0)
    # The person who asked never decides, even holding a steward's role.
    with transaction(sessions) as session, pytest.raises(PermissionDeniedError):
        sharing.approve(session, Actor("ca.admin", CONSUMER, "data_steward"), own, at=T0)
    # A department may ask for its own dataset; its own steward decides.
    with transaction(sessions) as session:
        assert sharing.approve(session, CA_STEWARD, own, at=T0).status == "approved"
    # Another department neither sees nor withdraws it.
    with transaction(sessions) as session:
        with pytest.raises(NotFoundError):
            sharing.get(session, HE_ADMIN, asked)
        with pytest.raises(NotFoundError):
            sharing.withdraw(session, HE_ADMIN, asked, at=T0)
        assert [r.id for r in sharing.list_requests(session, HE_ADMIN)] == []
        assert [r.id for r in sharing.list_requests(session, HR_STEWARD)] == [asked]
        with pytest.raises(PermissionDeniedError):
            sharing.withdraw(session, HR_ADMIN, asked, at=T0)  # the owner cannot withdraw
        assert sharing.withdraw(session, CA_ADMIN, asked, at=T0).status == "withdrawn"
    with transaction(sessions) as session, pytest.raises(ConflictError):
        sharing.approve(session, HR_STEWARD, asked, at=T0)
    with sessions() as session:
        stored = session.get(SharingRequest, asked)
        assert stored is not None
        assert (stored.status, stored.grant_id) == ("withdrawn", None)


@pytest.mark.parametrize(
    ("terms", "code"),
    [
        (Terms(FIELDS | {"sex": "full"}, {"division_prefix": "33"}, 60), "narrow.field_added"),
        (Terms(FIELDS | {"phone": "full"}, {"division_prefix": "33"}, 60), "narrow.field_widened"),
        (Terms(FIELDS, {}, 60), "narrow.constraint_dropped"),
        (Terms(FIELDS, {"division_prefix": "3"}, 60), "narrow.constraint_widened"),
        (Terms(FIELDS, {"division_prefix": "11"}, 60), "narrow.constraint_widened"),
        (Terms(FIELDS, {"division_prefix": "3301"}, 61), "narrow.days_widened"),
        (Terms({}, {"division_prefix": "3301"}, 30), "narrow.fields_missing"),
    ],
)
def test_a_narrowing_wider_than_asked_is_refused(
    sessions: sessionmaker[Session], terms: Terms, code: str
) -> None:
    with transaction(sessions) as session:
        number = sharing.submit(session, CA_ADMIN, spec(), at=T0).id
    with transaction(sessions) as session, pytest.raises(ValidationError) as refused:
        sharing.narrow(session, HR_STEWARD, number, terms, at=T0)
    assert code in codes(refused.value)
    with sessions() as session:
        stored = session.get(SharingRequest, number)
        assert stored is not None
        assert (stored.status, stored.grant_id) == ("submitted", None)
        assert session.scalars(select(Grant)).all() == []


def test_an_approval_breaking_the_disclosure_rule_fails_and_stays_submitted(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    # As in tests/unit/test_query_api.py: a standard masking the identifier as its first 6
    # characters would, beside a birth date in full, leave too few candidates.
    schema = json.loads(json.dumps(load_standard("person").schema))
    for f in schema["fields"]:
        if f["name"] == "resident_id":
            f["mask"] = "keep_first:6"
    person = standard_from_schema(schema)
    monkeypatch.setattr(
        disclosure,
        "load_standard",
        lambda name: person if name == "person" else load_standard(name),
    )
    with transaction(sessions) as session:
        number = sharing.submit(
            session, CA_ADMIN, spec(fields={"resident_id": "masked", "birth_date": "full"}), at=T0
        ).id
    with transaction(sessions) as session, pytest.raises(DisclosureRuleError):
        sharing.approve(session, HR_STEWARD, number, at=T0)
    with sessions() as session:
        stored = session.get(SharingRequest, number)
        assert stored is not None
        assert stored.status == "submitted"
        assert session.scalars(select(Grant)).all() == []
        assert [e.action for e in sharing.history(session, number)] == ["submit"]


def test_renewal_starts_when_the_old_grant_ends(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        first = sharing.submit(session, CA_ADMIN, spec(), at=T0).id
        sharing.narrow(
            session, HR_STEWARD, first, Terms(FIELDS, {"division_prefix": "3301"}, 30), at=T0
        )
    soon = T0 + timedelta(days=25)
    with transaction(sessions) as session:
        [ending] = sharing.expiring(session, CA_ADMIN, at=soon, within_days=30)
        assert ending.sharing_request_id == first
        assert [g.id for g in sharing.expiring(session, HR_STEWARD, at=soon, within_days=30)] == [
            ending.id
        ]
        assert sharing.expiring(session, HE_ADMIN, at=soon, within_days=30) == []
        assert sharing.expiring(session, CA_ADMIN, at=T0, within_days=10) == []
        renewal = sharing.renew(session, CA_ADMIN, first, at=soon)
        assert (renewal.status, renewal.renewal_of) == ("submitted", first)
        # The terms granted, not those first asked.
        assert renewal.fields == FIELDS
        assert renewal.row_constraints == {"division_prefix": "3301"}
        assert renewal.duration_days == 30
        with pytest.raises(ConflictError):
            sharing.renew(session, CA_ADMIN, first, at=soon)  # one renewal at a time
    with transaction(sessions) as session:
        done = sharing.approve(session, HR_STEWARD, renewal.id, at=soon + timedelta(days=1))
        old = session.get(Grant, ending.id)
        new = session.get(Grant, done.grant_id)
        assert old is not None
        assert new is not None
        assert old.valid_until == T0 + timedelta(days=30)
        assert new.valid_from == old.valid_until  # no gap, no overlap
        assert new.valid_until == old.valid_until + timedelta(days=30)
        assert (new.origin, new.sharing_request_id) == ("request", renewal.id)
        actions = session.scalars(
            select(SharingRequestEvent.action)
            .where(SharingRequestEvent.request_id == renewal.id)
            .order_by(SharingRequestEvent.id)
        ).all()
        assert actions == ["renew", "approve"]
    # A refused request has nothing to renew.
    with transaction(sessions) as session:
        other = sharing.submit(session, CA_ADMIN, spec(purposes=["tax-assessment"]), at=T0).id
        sharing.refuse(session, HR_STEWARD, other, "not for taxes", at=T0)
    with transaction(sessions) as session, pytest.raises(ConflictError):
        sharing.renew(session, CA_ADMIN, other, at=T0)


def test_direct_grants_remain_and_are_marked_direct(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        grant = catalogue.add_grant(
            session,
            catalogue.GrantSpec(
                department=CONSUMER,
                role="caseworker",
                dataset="person",
                fields={"full_name": "full"},
                purposes=[MLA],
                row_constraints={},
            ),
            created_by="central",
            at=T0,
        )
        assert (grant.origin, grant.sharing_request_id) == ("direct", None)
        for role in ("department_admin", "data_steward"):
            with pytest.raises(ValidationError) as refused:
                catalogue.add_grant(
                    session,
                    catalogue.GrantSpec(
                        department=CONSUMER,
                        role=role,
                        dataset="person",
                        fields={"full_name": "full"},
                        purposes=[MLA],
                        row_constraints={},
                    ),
                    created_by="central",
                    at=T0,
                )
            assert codes(refused.value) == ["grant.role_not_grantee"]


def test_a_dataset_marked_not_shared_after_a_request_can_only_be_refused(
    sessions: sessionmaker[Session],
) -> None:
    with transaction(sessions) as session:
        first = sharing.submit(session, CA_ADMIN, spec(), at=T0).id
        second = sharing.submit(session, CA_ADMIN, spec(purposes=["tax-assessment"]), at=T0).id
    with transaction(sessions) as session:
        resources.set_resource(
            session,
            resources.Editor(HR_ADMIN.actor, OWNER, "department_admin"),
            "person",
            resources.ResourceChange(sharing="not_shared"),
            at=T0,
        )
    narrower = Terms(FIELDS, {"division_prefix": "3301"}, 30)
    with transaction(sessions) as session, pytest.raises(ConflictError, match="no longer shared"):
        sharing.approve(session, HR_STEWARD, first, at=T0)
    with transaction(sessions) as session, pytest.raises(ConflictError, match="no longer shared"):
        sharing.narrow(session, HR_STEWARD, first, narrower, at=T0)
    with transaction(sessions) as session:
        assert sharing.refuse(session, HR_STEWARD, second, "not shared now", at=T0).grant_id is None
    with sessions() as session:
        assert session.query(Grant).count() == 0


def test_a_third_department_cannot_tell_a_request_exists_by_deciding_on_it(
    sessions: sessionmaker[Session],
) -> None:
    """Deciding on another department's request answers as for a request that does not
    exist (404, same message shape), never naming its owner: a steward or administrator
    of a third department could otherwise enumerate ids and learn who shares with whom."""
    with transaction(sessions) as session:
        asked = sharing.submit(session, CA_ADMIN, spec(), at=T0).id
    absent = asked + 1000
    for who in (HE_STEWARD, HE_ADMIN):
        for step in ("approve", "narrow", "refuse"):
            messages = []
            for number in (asked, absent):
                with transaction(sessions) as session, pytest.raises(NotFoundError) as caught:
                    _decide(session, who, step, number)
                messages.append(str(caught.value).replace(str(number), "N"))
            assert messages[0] == messages[1], (who, step)
            assert OWNER not in messages[0]
    with sessions() as session:
        stored = session.get(SharingRequest, asked)
        assert stored is not None
        assert stored.status == "submitted"


def _decide(session: Session, who: Actor, step: str, number: int) -> SharingRequest:
    if step == "approve":
        return sharing.approve(session, who, number, at=T0)
    if step == "narrow":
        terms = Terms(FIELDS, {"division_prefix": "33"}, 30)
        return sharing.narrow(session, who, number, terms, at=T0)
    return sharing.refuse(session, who, number, "no", at=T0)


def test_a_revoked_grant_cannot_be_renewed(sessions: sessionmaker[Session]) -> None:
    """Revoking ends a grant for good: its request cannot be renewed into a new grant (a
    routine-looking renewal would undo the revocation, and on a dataset shared
    unconditionally with no one deciding at all); a new request is decided afresh."""
    with transaction(sessions) as session:
        conditional = sharing.submit(session, CA_ADMIN, spec(), at=T0)
        sharing.approve(session, HR_STEWARD, conditional.id, at=T0)
        free = sharing.submit(
            session,
            CA_ADMIN,
            spec(
                "household_membership",
                fields={"relationship_to_head": "full"},
                row_constraints={},
            ),
            at=T0,
        )
        assert free.status == "approved"
        for request in (conditional, free):
            assert request.grant_id is not None
            catalogue.revoke_grant(session, request.grant_id, by="central", at=T0)
        ids = (conditional.id, free.id)
    later = T0 + timedelta(days=20)
    for number in ids:
        with transaction(sessions) as session, pytest.raises(ConflictError, match="revoked"):
            sharing.renew(session, CA_ADMIN, number, at=later)
    with sessions() as session:
        assert session.query(SharingRequest).count() == 2
        assert [g.revoked_at is not None for g in session.scalars(select(Grant))] == [True, True]


def test_after_the_dataset_changes_owner_its_former_owner_cannot_grant_it(
    sessions: sessionmaker[Session],
) -> None:
    """A request is decided by the department that owns the dataset when it is decided:
    once the central administrator gives the dataset to another department, the former
    owner's steward can only refuse the requests still open (no grant is made)."""
    with transaction(sessions) as session:
        first = sharing.submit(session, CA_ADMIN, spec(), at=T0).id
        second = sharing.submit(session, CA_ADMIN, spec(purposes=["tax-assessment"]), at=T0).id
    with transaction(sessions) as session:
        resources.set_resource(
            session,
            resources.Editor(CENTRAL.actor, CENTRAL.department, "admin"),
            "person",
            resources.ResourceChange(owner=OTHER),
            at=T0,
        )
    narrower = Terms(FIELDS, {"division_prefix": "3301"}, 30)
    with transaction(sessions) as session, pytest.raises(ConflictError, match="now belongs"):
        sharing.approve(session, HR_STEWARD, first, at=T0)
    with transaction(sessions) as session, pytest.raises(ConflictError, match="now belongs"):
        sharing.narrow(session, HR_STEWARD, first, narrower, at=T0)
    with transaction(sessions) as session:
        assert sharing.refuse(session, HR_STEWARD, second, "no longer ours", at=T0).grant_id is None
    with sessions() as session:
        assert session.query(Grant).count() == 0
        stored = session.get(SharingRequest, first)
        assert stored is not None
        assert stored.status == "submitted"


@pytest.fixture
def pg_sessions(postgres: PostgresServer) -> Iterator[sessionmaker[Session]]:
    """The ``sessions`` world on PostgreSQL alone: SQLite lets one writer at a time, so
    the race below cannot happen there (the second writer waits, then sees the first)."""
    url = postgres.create_database(f"t_{uuid.uuid4().hex[:12]}")
    yield from _world(url)


def test_two_approvals_at_once_cannot_break_the_disclosure_rule_together(
    pg_sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each approval checks the disclosure rule against the grants it can see. Two
    approvals in flight at once (two stewards, two gateway workers) each see the other's
    grant not yet committed: a masked identifier in one and the birth date in full in the
    other, for the same purpose, would both pass and together break the rule. Grants of
    one grantee are made one at a time: the second waits for the first (here its wait is
    cut short) and never commits beside it."""
    schema = json.loads(json.dumps(load_standard("person").schema))
    for f in schema["fields"]:
        if f["name"] == "resident_id":
            f["mask"] = "keep_first:6"
    person = standard_from_schema(schema)
    monkeypatch.setattr(
        disclosure,
        "load_standard",
        lambda name: person if name == "person" else load_standard(name),
    )
    with transaction(pg_sessions) as session:
        masked = sharing.submit(
            session, CA_ADMIN, spec(fields={"resident_id": "masked"}, row_constraints={}), at=T0
        ).id
        born = sharing.submit(
            session,
            CA_ADMIN,
            spec(
                fields={"birth_date": "full"},
                purposes=[MLA, "tax-assessment"],
                row_constraints={},
            ),
            at=T0,
        ).id
    first, second = pg_sessions(), pg_sessions()
    try:
        sharing.approve(first, HR_STEWARD, masked, at=T0)  # flushed, not yet committed
        second.execute(text("SET LOCAL lock_timeout = '200ms'"))
        try:
            sharing.approve(second, HR_STEWARD, born, at=T0)
            second.commit()
        except (DBAPIError, DisclosureRuleError):
            second.rollback()
        first.commit()
    finally:
        first.close()
        second.close()
    with pg_sessions() as session:
        grants = list(session.scalars(select(Grant).where(Grant.revoked_at.is_(None))))
        assert [g.sharing_request_id for g in grants] == [masked]
        rules = [catalogue.rule(g) for g in grants]
        assert disclosure.breaches([r for r in rules if MLA in r.purposes]) == []
        stored = session.get(SharingRequest, born)
        assert stored is not None
        assert stored.status == "submitted"


def test_a_request_of_a_requester_disabled_since_can_only_be_refused(
    sessions: sessionmaker[Session],
) -> None:
    """A departing administrator's last requests are not granted on their word: once the
    user who asked is disabled, approve and narrow answer 409 and no grant is made; the
    steward may refuse, and an active administrator may ask again."""
    leaving = Actor("ca.leaving", CONSUMER, "department_admin")
    with transaction(sessions) as session:
        identities.create_user(
            session, username=leaving.actor, department=CONSUMER, role="department_admin"
        )
        first = sharing.submit(session, leaving, spec(), at=T0).id
        second = sharing.submit(session, leaving, spec(purposes=["tax-assessment"]), at=T0).id
    with transaction(sessions) as session:
        identities.disable_user(session, leaving.actor, at=T0)
    narrower = Terms(FIELDS, {"division_prefix": "3301"}, 30)
    with transaction(sessions) as session, pytest.raises(ConflictError, match="disabled"):
        sharing.approve(session, HR_STEWARD, first, at=T0)
    with transaction(sessions) as session, pytest.raises(ConflictError, match="disabled"):
        sharing.narrow(session, HR_STEWARD, first, narrower, at=T0)
    with transaction(sessions) as session:
        assert sharing.refuse(session, HR_STEWARD, second, "ask again", at=T0).status == "refused"
        sharing.withdraw(session, CA_ADMIN, first, at=T0)
        again = sharing.submit(session, CA_ADMIN, spec(), at=T0)
        assert sharing.approve(session, HR_STEWARD, again.id, at=T0).status == "approved"
    with sessions() as session:
        assert [g.sharing_request_id for g in session.scalars(select(Grant))] == [again.id]
