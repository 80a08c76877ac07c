"""Splink on the records of bench.linkage_quality --dataset (a second, optional baseline).

Splink (DuckDB locally) with its own comparison library and its own blocking
rules, trained the way its documentation trains a deduplication: ``u`` from
random pairs, ``m`` by EM on two blocking rules (names; birth date), links at
a match probability of 0.99; entities are the connected components of its
predicted links, scored like the linker's. Only when splink is installed
(``pip install 'splink>=5,<6'``; not a project dependency).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from exchange.registry.linkage import LinkRecord, components

MATCH_PROBABILITY = 0.99


def _row(rec: LinkRecord) -> dict[str, Any]:
    birth = rec.birth
    lines = [rec.address_line, rec.current_address_line]
    return {
        "unique_id": rec.ref,
        "first_name": rec.given,
        "surname": rec.family,
        "dob": f"{birth[:4]}-{birth[4:6]}-{birth[6:]}" if birth else None,
        "postcode": rec.postcode_code,
        "address": " ".join(x for x in lines if x).upper() or None,
        "phone": rec.phone_digits,
        "identifier": rec.identifier,
    }


def splink_entities(records: Sequence[LinkRecord], seed: int = 0) -> dict[str, str]:
    """Each record's entity as Splink links them."""
    import pandas as pd
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    frame = pd.DataFrame([_row(r) for r in records])
    comparisons: list[Any] = [
        cl.NameComparison("first_name"),
        cl.NameComparison("surname"),
        cl.DateOfBirthComparison("dob", input_is_string=True),
    ]
    for column in ("address", "postcode", "phone", "identifier"):
        if frame[column].notna().any():
            comparisons.append(
                cl.JaroWinklerAtThresholds(column, [0.9, 0.7])
                if column == "address"
                else cl.ExactMatch(column)
            )
    settings = SettingsCreator(
        link_type="dedupe_only",
        comparisons=comparisons,
        blocking_rules_to_generate_predictions=[
            block_on("first_name", "dob"),
            block_on("surname", "dob"),
            block_on("first_name", "surname"),
            block_on("postcode", "substr(surname, 1, 1)"),
        ],
    )
    table = DuckDBAPI().register(frame)  # splink 5: the table is registered with the database
    linker = Linker(table, settings, log_level="WARNING")
    linker.training.estimate_u_using_random_sampling(max_pairs=1e7, seed=seed)
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("first_name", "surname")
    )
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("dob"))
    predicted = linker.inference.predict(threshold_match_probability=MATCH_PROBABILITY)
    pairs = cast(Any, predicted).as_pandas_dataframe()  # untyped in splink 5
    edges = [
        (str(a), str(b)) for a, b in zip(pairs["unique_id_l"], pairs["unique_id_r"], strict=True)
    ]
    entity_of: dict[str, str] = {}
    for number, part in enumerate(components([r.ref for r in records], edges)):
        for ref in part:
            entity_of[ref] = str(number)
    return entity_of
