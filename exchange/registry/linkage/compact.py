"""Link records held compactly: one ``bytes`` object a record, its derived features kept.

A :class:`~exchange.registry.linkage.features.LinkRecord` in memory takes about
0.8-1.3 KB (some thirty slots, each its own string object); building one from
a payload costs 100-150 µs (pinyin, phonetic codes, address tokens). The
registry builder keeps the link records of the registry's records between
polls so that a candidate read back is not built again: held as objects, a
million of them took over a gigabyte. :func:`pack` writes every slot, the
derived features included, into one :mod:`marshal` string (about 0.25 KB, no
per-field objects; a value that repeats an earlier slot's, as a normalised name
often repeats the name given, is written once and referred to), and
:func:`unpack` gives back an equal record, derived features and all, in a few
microseconds, without normalising again.
"""

from __future__ import annotations

import marshal
from dataclasses import fields
from datetime import date, datetime
from typing import Any, Final

from exchange.registry.linkage.features import LinkRecord

_SLOTS: Final = tuple(f.name for f in fields(LinkRecord))
_BIRTH_DATE: Final = _SLOTS.index("birth_date")
_UPDATED_AT: Final = _SLOTS.index("updated_at")
_ADDRESSES: Final = _SLOTS.index("addresses")
_VERSION: Final = 4  # marshal's format with shared references
_put = object.__setattr__


def pack(rec: LinkRecord) -> bytes:
    """Every slot of ``rec`` (derived features included) as one marshal string."""
    state: list[Any] = [getattr(rec, name) for name in _SLOTS]
    born: date | None = state[_BIRTH_DATE]
    state[_BIRTH_DATE] = None if born is None else born.toordinal()
    updated: datetime | None = state[_UPDATED_AT]
    state[_UPDATED_AT] = None if updated is None else updated.isoformat()
    # Equal strings made one object: marshal then writes the second as a reference.
    same: dict[str, str] = {}
    state = [same.setdefault(v, v) if v.__class__ is str else v for v in state]
    return marshal.dumps(tuple(state), _VERSION)


def unpack(data: bytes) -> LinkRecord:
    """The record :func:`pack` wrote: equal to it, with the same derived features."""
    state = marshal.loads(data)
    rec = object.__new__(LinkRecord)
    for name, value in zip(_SLOTS, state, strict=True):
        _put(rec, name, value)
    born, updated = state[_BIRTH_DATE], state[_UPDATED_AT]
    if born is not None:
        _put(rec, "birth_date", date.fromordinal(born))
    if updated is not None:
        _put(rec, "updated_at", datetime.fromisoformat(updated))
    if state[_ADDRESSES].__class__ is not tuple:  # marshal keeps tuples; a guard all the same
        _put(rec, "addresses", tuple(state[_ADDRESSES]))
    return rec
