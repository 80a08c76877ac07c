"""Blocking keys: which records are worth comparing with a new one.

Comparing a new record with every record already held would cost time in
proportion to the registry; instead each record gets a few short keys, and
only records sharing a key are compared. A true pair is missed only if the
errors on its two sides break every key at once, so the keys are chosen to
fail independently: the identifier; the birth date (the same key for a date
and its day/month-swapped form) with the pinyin of the family name, and again
with the pinyin of the given name (so a typo in one of the names, or the names
in the other order, keeps a key); the name's pinyin (order-free, so homophones
and family/given order swaps keep it) with the birth year; the family and
given names' pinyin with the birth month and day (for year typos); the phone
number.

Blocks grow with the registry, so each key holds a value rare enough that the
pairs it makes stay few: a birth date alone is shared by about one record in
31,000 (the dates of 85 years, day and month unordered), some 30 records in a
registry of a million, and the pairs of such blocks would grow with the
square of the registry; with a name's pinyin beside it, a block holds a few
percent of that. The registry builder may cap a block's size (see
``max_block`` of :class:`~exchange.registry.linkage.incremental.IncrementalLinker`).

At most six keys a record, each at most 32 characters, prefixed by a letter
that says which rule made it; person and organisation keys never collide.
"""

from __future__ import annotations

from typing import Final

from exchange.registry.linkage.features import ORGANISATION, LinkRecord

IDENTIFIER_CHARS: Final = 16  # of a 64-hex blind index: 64 bits, collisions are harmless
NAME_CHARS: Final = 12  # of a name's pinyin (long Latin-script names are cut)


def _month_day(birth: str) -> str:
    """Month and day in order-free form: the same for a date and its swapped form."""
    month, day = birth[4:6], birth[6:8]
    return month + day if month <= day else day + month


def _person_keys(rec: LinkRecord) -> set[str]:
    keys: set[str] = set()
    if rec.identifier:
        keys.add("i:" + rec.identifier[:IDENTIFIER_CHARS].lower())
    names = [p[:NAME_CHARS] for p in (rec.family_py, rec.given_py) if p]
    if rec.birth:
        date = rec.birth[:4] + _month_day(rec.birth)
        # One key a name part, under the same letter: names in the other order keep both.
        keys.update(f"d:{date}{name}" for name in names or [""])
        if len(names) == 2:
            first, second = sorted(names)
            keys.add(f"n:{first}.{second}:{rec.birth[:4]}")
            keys.add(f"f:{names[0]}.{names[1]}:{_month_day(rec.birth)}")
    if rec.phone_digits:
        keys.add("p:" + rec.phone_digits[-11:])
    return keys


def _organisation_keys(rec: LinkRecord) -> set[str]:
    keys: set[str] = set()
    if rec.identifier:
        keys.add("u:" + rec.identifier)
    if rec.core_py:
        keys.add("o:" + rec.core_py[:24])
    if rec.birth and rec.division:
        keys.add(f"r:{rec.birth}:{rec.division[:4]}")
    if rec.representative_py and rec.division:
        keys.add(f"l:{rec.representative_py[:20]}:{rec.division[:4]}")
    return keys


def block_keys(rec: LinkRecord) -> set[str]:
    """The blocking keys of a record: short strings, at most six."""
    if rec.kind == ORGANISATION:
        return _organisation_keys(rec)
    return _person_keys(rec)
