"""Narrowing a sharing request (exchange.access.sharing.narrowing_problems), for all inputs:
a narrowing accepted never grants a field, a mode, a row or a day the request did not ask
for; every narrowing built from the request by taking away is accepted. And the roles."""

from __future__ import annotations

import string

from hypothesis import given
from hypothesis import strategies as st

from exchange.access import catalogue, sharing
from exchange.access.sharing import Terms
from exchange.identity import identities

FIELDS = ("resident_id", "full_name", "phone", "birth_date", "sex")
MODES = ("full", "masked")
prefixes = st.text(alphabet="0123", min_size=2, max_size=6)
constraints = st.fixed_dictionaries(
    {},
    optional={
        "division_prefix": prefixes,
        "linked_by": st.sampled_from(("identifier", "reviewed")),
        "department": st.sampled_from(("household_registry", "health")),
    },
)
terms = st.builds(
    Terms,
    st.dictionaries(st.sampled_from(FIELDS), st.sampled_from(MODES), max_size=len(FIELDS)),
    constraints,
    st.integers(min_value=-2, max_value=sharing.MAX_DAYS + 2),
)
divisions = st.text(alphabet="0123", min_size=6, max_size=6)
# What a record joined by: the kinds of link each linked_by value admits (policy.py).
ADMITS = {"identifier": {"identifier"}, "reviewed": {"identifier", "reviewer"}}


def admits(row_constraints: dict[str, str], division: str, linked: str, department: str) -> bool:
    """Whether constraints admit a row, written out here apart from the code under test."""
    for name, value in row_constraints.items():
        if name == "division_prefix" and not division.startswith(value):
            return False
        if name == "linked_by" and linked not in ADMITS[value]:
            return False
        if name == "department" and department != value:
            return False
    return True


@given(
    ask=terms,
    grant=terms,
    division=divisions,
    linked=st.sampled_from(("identifier", "reviewer", "probability")),
    department=st.sampled_from(("household_registry", "health")),
)
def test_an_accepted_narrowing_is_a_subset_of_the_request(
    ask: Terms, grant: Terms, division: str, linked: str, department: str
) -> None:
    if sharing.narrowing_problems(ask, grant):
        return
    assert grant.fields
    assert set(grant.fields) <= set(ask.fields)
    for name, mode in grant.fields.items():
        assert mode in MODES
        assert mode == "masked" or ask.fields[name] == "full"
    assert 1 <= grant.days <= ask.days
    if admits(dict(grant.row_constraints), division, linked, department):
        assert admits(dict(ask.row_constraints), division, linked, department)


@given(
    ask=terms,
    data=st.data(),
)
def test_every_narrowing_by_taking_away_is_accepted(ask: Terms, data: st.DataObject) -> None:
    if not ask.fields or ask.days < 1:
        return
    kept = data.draw(st.sets(st.sampled_from(sorted(ask.fields)), min_size=1))
    fields = {name: ("masked" if data.draw(st.booleans()) else ask.fields[name]) for name in kept}
    tighter = dict(ask.row_constraints)
    if "division_prefix" in tighter and len(tighter["division_prefix"]) < 6:
        tighter["division_prefix"] += data.draw(st.text(alphabet=string.digits, max_size=1))
    if tighter.get("linked_by") == "reviewed" and data.draw(st.booleans()):
        tighter["linked_by"] = "identifier"
    if "department" not in tighter and data.draw(st.booleans()):
        tighter["department"] = "health"
    days = data.draw(st.integers(min_value=1, max_value=ask.days))
    assert sharing.narrowing_problems(ask, Terms(fields, tighter, days)) == []


def test_the_new_roles_exist_everywhere_and_never_read_records() -> None:
    assert set(identities.ROLES) == set(catalogue.ROLES)
    assert {"department_admin", "data_steward"} <= set(catalogue.ROLES)
    assert catalogue.GRANTEE_ROLES == ("caseworker",)
