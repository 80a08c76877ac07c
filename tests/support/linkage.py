"""Link records for the linkage engine's tests."""

from __future__ import annotations

from datetime import date
from typing import Any

from exchange.registry.linkage import PERSON, LinkRecord

# One woman's fields; a test changes what its case is about.
ZHANG_XIUYING: dict[str, Any] = {
    "family_name": "张",
    "given_name": "秀英",
    "birth_date": date(1985, 3, 4),
    "sex": "FEMALE",
    "division_code": "110105",
}


def person(ref: str, **fields: Any) -> LinkRecord:
    """A person record of department ``d``: ZHANG_XIUYING with ``fields`` changed."""
    return LinkRecord(ref=ref, kind=PERSON, department="d", **(ZHANG_XIUYING | fields))
