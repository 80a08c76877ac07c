"""The link records a builder keeps between polls, in bounded memory.

Linking a poll compares its records with candidates from earlier polls; building
a candidate's link record again from its payload costs 100-150 µs, so the
builder keeps them. Held as objects, a million took over a gigabyte. Here they
are held in two tiers, both least-recently-used and both bounded:

* **hot**: up to ``hot`` records as objects (the candidates of the last few
  polls, read again at no cost);
* **packed**: records leaving the hot tier, as one ``bytes`` string each
  (:mod:`~exchange.registry.linkage.compact`, about 0.3 KB), up to
  ``packed_bytes`` in all; read back in a few microseconds.

Every entry is keyed by record id and stamped with the record's content hash:
an entry whose hash is not the stored record's is stale (the record changed, or
a transaction that wrote it rolled back) and is not used. ``None`` is a record
that does not link (a dataset without an identifier), remembered as such.
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from typing import Final

from exchange.registry.linkage.compact import pack, unpack
from exchange.registry.linkage.features import LinkRecord

HOT: Final = 50_000  # records held as objects (about 1 KB each)
PACKED_BYTES: Final = 256 * 1024 * 1024  # for the packed tier (about 0.5 KB a record, all in)
_NOT_LINKED: Final = b""
_SEPARATOR: Final = b"\x00"  # between the content hash and the packed record
# What a packed entry costs beyond its bytes: the ordered dict's slot and the id.
_ENTRY_OVERHEAD: Final = 100


class _Missing:
    pass


MISSING: Final = _Missing()  # not held (or held under another content hash)


class RecordCache:
    """Link records by record id, each with the content hash it was built from."""

    def __init__(self, hot: int = HOT, packed_bytes: int = PACKED_BYTES) -> None:
        self.hot_size = hot
        self.packed_budget = packed_bytes
        self._hot: OrderedDict[int, tuple[str, LinkRecord | None]] = OrderedDict()
        # id -> the content hash (UTF-8), a zero byte, the packed record (empty: not linked)
        self._packed: OrderedDict[int, bytes] = OrderedDict()
        self._packed_bytes = 0
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._hot) + len(self._packed)

    @property
    def packed_bytes(self) -> int:
        """What the packed tier holds, by this module's estimate."""
        return self._packed_bytes

    def get(self, rid: int, content_hash: str) -> LinkRecord | _Missing | None:
        """The record held for ``rid`` under ``content_hash``, None (held: not linked), or
        :data:`MISSING`."""
        found = self._hot.get(rid)
        if found is not None:
            if found[0] != content_hash:
                self.misses += 1
                return MISSING
            self._hot.move_to_end(rid)
            self.hits += 1
            return found[1]
        packed = self._packed.get(rid)
        stamp = content_hash.encode() + _SEPARATOR
        if packed is None or not packed.startswith(stamp):
            self.misses += 1
            return MISSING
        self._drop_packed(rid)
        data = packed[len(stamp) :]
        rec = None if data == _NOT_LINKED else unpack(data)
        self._put_hot(rid, content_hash, rec)
        self.hits += 1
        return rec

    def put(self, rid: int, content_hash: str, rec: LinkRecord | None) -> None:
        """Hold ``rec`` (None: the record does not link) for ``rid`` under ``content_hash``."""
        if rid in self._packed:
            self._drop_packed(rid)
        self._put_hot(rid, content_hash, rec)

    def _put_hot(self, rid: int, content_hash: str, rec: LinkRecord | None) -> None:
        hot = self._hot
        hot[rid] = (content_hash, rec)
        hot.move_to_end(rid)
        while len(hot) > self.hot_size:
            old, (old_hash, old_rec) = hot.popitem(last=False)
            self._put_packed(old, old_hash, _NOT_LINKED if old_rec is None else pack(old_rec))

    def _put_packed(self, rid: int, content_hash: str, data: bytes) -> None:
        packed = self._packed
        entry = packed[rid] = content_hash.encode() + _SEPARATOR + data
        self._packed_bytes += sys.getsizeof(entry) + _ENTRY_OVERHEAD
        while self._packed_bytes > self.packed_budget and packed:
            old = next(iter(packed))
            self._drop_packed(old)

    def _drop_packed(self, rid: int) -> None:
        self._packed_bytes -= sys.getsizeof(self._packed.pop(rid)) + _ENTRY_OVERHEAD
