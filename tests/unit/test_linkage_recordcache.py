"""Link records packed and held in bounded memory (the builder's cache between polls)."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, date, datetime

from hypothesis import given
from hypothesis import strategies as st

from bench.population import organisations, persons
from exchange.registry.entities import link_record
from exchange.registry.linkage import LinkRecord, person_record
from exchange.registry.linkage.compact import pack, unpack
from exchange.registry.linkage.recordcache import MISSING, RecordCache


def _records() -> list[LinkRecord]:
    found = []
    for rec in [*persons(40, seed=3), *persons(20, seed=4, mode="latin"), *organisations(20)]:
        dataset = rec.ref.split("/", 1)[0]
        made = link_record(dataset, rec.ref, rec.department, rec.payload, rec.updated_at)
        assert made is not None
        found.append(made)
    return found


def _same(a: LinkRecord, b: LinkRecord) -> None:
    """Every slot equal, the derived features included (``==`` compares the inputs only)."""
    for f in fields(LinkRecord):
        assert getattr(a, f.name) == getattr(b, f.name), f.name
        assert type(getattr(a, f.name)) is type(getattr(b, f.name)), f.name


def test_a_packed_record_comes_back_with_every_derived_feature() -> None:
    records = _records()
    assert any(r.addresses for r in records)  # Latin records carry address token sets
    assert any(r.core_py for r in records)  # organisations their name's pinyin
    for rec in records:
        _same(unpack(pack(rec)), rec)


@given(
    family=st.text(max_size=6),
    given_name=st.one_of(st.none(), st.text(max_size=6)),
    born=st.one_of(st.none(), st.dates(min_value=date(1900, 1, 1))),
    phone=st.one_of(st.none(), st.text(alphabet="0123456789 -+", max_size=15)),
    address=st.one_of(st.none(), st.text(max_size=30)),
)
def test_any_person_record_survives_packing(
    family: str, given_name: str | None, born: date | None, phone: str | None, address: str | None
) -> None:
    payload = {
        "family_name": family,
        "given_name": given_name,
        "birth_date": born.isoformat() if born else None,
        "phone": phone,
        "address_line": address,
    }
    rec = person_record("person/d/1", "d", payload, datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    _same(unpack(pack(rec)), rec)


def test_the_cache_gives_a_record_only_under_its_content_hash() -> None:
    rec = _records()[0]
    cache = RecordCache(hot=2, packed_bytes=10_000)
    cache.put(1, "h1", rec)
    cache.put(2, "h2", None)  # held: does not link
    assert cache.get(1, "h1") is rec
    assert cache.get(2, "h2") is None
    assert cache.get(1, "other") is MISSING  # changed since (or rolled back)
    assert cache.get(3, "h3") is MISSING
    assert (cache.hits, cache.misses) == (2, 2)


def test_records_leaving_the_hot_tier_are_packed_then_dropped_within_the_budget() -> None:
    records = _records()
    budget = 20 * len(pack(records[0])) + 2_000
    cache = RecordCache(hot=5, packed_bytes=budget)
    for rid, rec in enumerate(records):
        cache.put(rid, f"h{rid}", rec)
    assert cache.packed_bytes <= budget
    assert 5 < len(cache) < len(records)  # some packed, the oldest dropped
    assert cache.get(0, "h0") is MISSING
    last_packed = len(records) - 6  # the newest record outside the hot tier
    found = cache.get(last_packed, f"h{last_packed}")
    assert isinstance(found, LinkRecord)
    _same(found, records[last_packed])
    assert len(cache) <= len(records)
