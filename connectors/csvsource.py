"""CSV sources, streamed row by row in bounded memory.

Each row is yielded with its 1-based line number in the file (the header is
line 1), so rejections can name the row a clerk must fix. Bytes that are not
valid in the declared encoding, and rows with missing or extra columns, are
yielded as problems rather than raised, so one bad row never stops a run.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from exchange.core.errors import SourceError

FIELD_LIMIT = 16 * 1024 * 1024  # characters in one CSV cell; longer cells make a malformed row


@dataclass
class SourceRow:
    line: int
    values: dict[str, str]
    raw: str
    problems: list[tuple[str, str, str]] = field(default_factory=list)
    watermark: str | None = None


def read_csv(
    path: Path, *, encoding: str = "utf-8-sig", delimiter: str = ",", quotechar: str = '"'
) -> tuple[list[str], Iterator[SourceRow]]:
    """Return the header and an iterator of rows. Raises SourceError if unreadable."""
    try:
        codecs.lookup(encoding)
    except LookupError as exc:
        raise SourceError(f"unknown encoding {encoding!r} for {path}") from exc
    try:
        handle = path.open("r", encoding=encoding, errors="surrogateescape", newline="")
    except OSError as exc:
        raise SourceError(f"cannot open source file {path}: {exc.strerror}") from exc
    # The csv module refuses cells over 128 KiB; allow far more, so an oversized cell is
    # read (and rejected by the mapping as too long, with the row kept) rather than lost.
    csv.field_size_limit(FIELD_LIMIT)
    reader = csv.reader(handle, delimiter=delimiter, quotechar=quotechar, strict=False)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        handle.close()
        return [], iter(())
    except csv.Error as exc:
        handle.close()
        raise SourceError(f"{path}: the header line is not valid CSV: {exc}") from exc

    def rows() -> Iterator[SourceRow]:
        with handle:
            line = reader.line_num
            while True:
                try:
                    cells = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:
                    yield SourceRow(line + 1, {}, "", [("_row", "csv.malformed", str(exc))])
                    line = reader.line_num
                    continue
                start, line = line + 1, reader.line_num
                if not cells or cells == [""]:
                    continue  # blank line
                raw = delimiter.join(cells)
                row = SourceRow(start, {}, printable(raw))
                # printable() gives raw itself unless raw holds surrogates, which undecodable
                # bytes are: only then are the cells searched.
                if row.raw is not raw and any(has_undecodable_bytes(c) for c in cells):
                    row.problems.append(
                        (
                            "_row",
                            "encoding.invalid_bytes",
                            f"row holds bytes that are not valid {encoding}; "
                            "re-export the file in the declared encoding",
                        )
                    )
                if len(cells) != len(header):
                    row.problems.append(
                        (
                            "_row",
                            "columns.count",
                            f"row has {len(cells)} columns, the header has {len(header)}",
                        )
                    )
                row.values = dict(zip(header, cells, strict=False))
                yield row

    return header, rows()


# Read with errors="surrogateescape", each undecodable byte became U+DC80..U+DCFF.
_SURROGATE: Final = re.compile("[\ud800-\udfff]")
_UNDECODABLE: Final = re.compile("[\udc80-\udcff]")


def has_undecodable_bytes(text: str) -> bool:
    """True if ``text`` (read with ``errors="surrogateescape"``) holds undecodable bytes."""
    return _UNDECODABLE.search(text) is not None


def printable(text: str) -> str:
    """``text`` safe to encode: undecodable bytes become U+FFFD. A text with no surrogate
    (the usual one) is returned as it is, the round trip through UTF-8 would not change it."""
    if _SURROGATE.search(text) is None:
        return text
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
