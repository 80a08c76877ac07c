"""Blocking keys: which records are worth comparing with a new one.

Comparing a new record with every record already held would cost time in
proportion to the registry; instead each record gets a few short keys, and
only records sharing a key are compared. A true pair is missed only if the
errors on its two sides break every key at once, so the keys are chosen to
fail independently: the identifier; the birth date (the same key for a date
and its day/month-swapped form); the name's pinyin (order-free, so homophones
and family/given order swaps keep it) with the birth year; the family name's
pinyin and the given name's first letter with the birth month and day (for
year typos); the phone number.

Blocks grow with the registry: a birth-date block holds about one record in
31,000 (the dates of 85 years, day and month unordered), the others fewer.
The registry builder may cap a block's size (see ``max_block`` of
:class:`~exchange.linkage.incremental.IncrementalLinker`).

At most five keys a record, each at most 32 characters, prefixed by a letter
that says which rule made it; person and organisation keys never collide.
"""

from __future__ import annotations

from typing import Final

from exchange.linkage.features import ORGANISATION, LinkRecord

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
    if rec.birth:
        keys.add(f"d:{rec.birth[:4]}{_month_day(rec.birth)}")
    if rec.family_py and rec.given_py:
        first, second = sorted((rec.family_py[:NAME_CHARS], rec.given_py[:NAME_CHARS]))
        if rec.birth:
            keys.add(f"n:{first}.{second}:{rec.birth[:4]}")
            keys.add(f"f:{rec.family_py[:NAME_CHARS]}{rec.given_py[0]}:{_month_day(rec.birth)}")
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
    """The blocking keys of a record: short strings, at most five."""
    if rec.kind == ORGANISATION:
        return _organisation_keys(rec)
    return _person_keys(rec)
