"""The independent baseline of bench.linkage_quality: recordlinkage's ECM classifier.

The standard unsupervised Fellegi-Sunter of the ``recordlinkage`` package
(``ECMClassifier``: EM on binary agreement features, conditional
independence), on the same records and the same candidate pairs as the
registry's linker (so the two differ in comparison and classification, not in
blocking). Features, one a field both sides may have: family name, given
name and address line agree when their Jaro-Winkler is at least 0.85 (the
recordlinkage tutorial's choice), birth date, sex, phone, division code,
postcode and identifier when equal. A predicted match is an edge; entities
are the connected components, scored like the linker's.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from exchange.registry.linkage import LinkRecord, components

STRING_THRESHOLD = 0.85


def _row(rec: LinkRecord) -> dict[str, Any]:
    lines = [rec.address_line, rec.current_address_line]
    return {
        "family": rec.family,
        "given": rec.given,
        "birth": rec.birth,
        "sex": rec.sex_code,
        "phone": rec.phone_digits,
        "division": rec.division,
        "address": " ".join(x for x in lines if x).upper() or None,
        "postcode": rec.postcode_code,
        "identifier": rec.identifier,
    }


def ecm_entities(
    records: Sequence[LinkRecord], pairs: Iterable[tuple[int, int]]
) -> tuple[dict[str, str], int]:
    """Each record's entity by ECM over ``pairs`` (index pairs), and the number of matches."""
    import pandas as pd  # dev extra (recordlinkage), benchmarks only
    import recordlinkage

    frame = pd.DataFrame([_row(r) for r in records], index=[r.ref for r in records])
    frame = frame.dropna(axis=1, how="all")  # a field nobody has is no feature
    refs = [r.ref for r in records]
    index = pd.MultiIndex.from_tuples([(refs[i], refs[j]) for i, j in pairs])
    compare = recordlinkage.Compare()
    for column in ("family", "given", "address"):
        if column in frame:
            compare.string(
                column, column, method="jarowinkler", threshold=STRING_THRESHOLD, label=column
            )
    for column in ("birth", "sex", "phone", "division", "postcode", "identifier"):
        if column in frame:
            compare.exact(column, column, label=column)
    features = compare.compute(index, frame)
    matches = recordlinkage.ECMClassifier().fit_predict(features)
    edges = [(str(a), str(b)) for a, b in matches]
    entity_of: dict[str, str] = {}
    for number, part in enumerate(components(refs, edges)):
        for ref in part:
            entity_of[ref] = str(number)
    return entity_of, len(edges)
