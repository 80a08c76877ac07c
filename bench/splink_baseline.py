"""Splink beside the exchange's estimator: the same records, linked by Splink 5 on DuckDB.

Issue 18 asks that the project's own Fellegi-Sunter estimator be shown beside
Splink on the same data. This module runs Splink as its documentation sets a
deduplication up, on the records the other linkage benchmarks use (FEBRL3
through connectors, the Latin-alphabet and the Chinese populations of
``bench.population``), and scores it the way :mod:`bench.baseline` scores
recordlinkage's ECM: pairwise against the true entities.

The set-up, one DuckDB linker, ``dedupe_only``:

* **Columns** from the link records: Chinese names as the linker normalises
  them and their toneless pinyin; Latin names from the record's family and
  given name, in lower case without separators (their "pinyin" is the name);
  the birth date (ISO), sex (``MALE`` / ``FEMALE``, else missing), phone
  digits, residence division, the identifier's blind index, and where the
  records carry them the address line and postcode.
* **Blocking for predictions**, rules joined by OR so that one corrupted field
  does not lose a pair: the birth date; the postcode with the first letter of
  the given name, and with that of the family name; both names; both names
  the other way round; the phone; the identifier; the first three letters of
  the family name with the first of the given name and the birth year; the
  same with the names swapped over; the first three letters of both names.
* **Comparisons**: family and given name as ``NameComparison`` (exact with
  term-frequency adjustment, Jaro-Winkler >= 0.92 / 0.88 / 0.7), on the
  pinyin, with an exact level on the written characters first when the
  records are Chinese; names written the other way round as their own
  comparison (exactly, or both Jaro-Winkler >= 0.88 crosswise: FEBRL swaps
  fields and then mistypes them);
  ``DateOfBirthComparison`` (exact, one character off, within a month, a
  year, ten years); the household as one comparison (same phone and place,
  same phone, address line exact, address Jaro-Winkler >= 0.9, postcode,
  division, division's city), because members of a household share these
  fields, so they are not independent given the match status, and Splink,
  like any Fellegi-Sunter model, assumes its comparisons are; sex; the
  identifier (exact). A comparison whose columns are empty in the
  data is left out (FEBRL has no sex, phone or identifier).
* **Training**: ``estimate_probability_two_random_records_match`` from
  deterministic rules (both names and the birth date; the identifier) with an
  assumed recall of 0.7; ``estimate_u_using_random_sampling`` (5 million
  pairs, seeded); ``estimate_parameters_using_expectation_maximisation`` on
  two blocking rules (the birth date, which estimates the names and the
  household; both names, which estimates the date and the rest).
* **Prediction** at a match probability of 0.9 (:data:`THRESHOLD`), and the
  connected components of those links (``cluster_pairwise_predictions_at_threshold``).

``python -m bench.splink_baseline --dataset febrl3|latin|chinese [--size N]
[--weights]`` prints one line per metric (and, with ``--weights``, the fitted
model as a table).
"""

from __future__ import annotations

import argparse
import logging
import math
import re
import time
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import duckdb
import pandas as pd
import splink.comparison_level_library as cll
import splink.comparison_library as cl
from splink import DuckDBAPI, Linker, SettingsCreator, block_on

from bench.baseline import pairwise_score
from exchange.registry.linkage import LinkRecord

_SEPARATORS = re.compile("[\\s·.\\-_'\u2019]+")
THRESHOLD = 0.9
OTHER_THRESHOLDS = (0.5, 0.99)  # pairwise scores also given at these, from the same model
DETERMINISTIC_RECALL = 0.7
U_PAIRS = 5e6
COLUMNS = (
    "unique_id", "family", "given", "family_py", "given_py", "birth", "sex", "phone",
    "division", "identifier", "address", "postcode",
)  # fmt: skip


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = " ".join(str(value).lower().split())
    return text or None


def _name(value: str | None) -> str | None:
    """A Latin name part in lower case, without spaces or separators."""
    if value is None:
        return None
    return _SEPARATORS.sub("", unicodedata.normalize("NFKC", value)).lower() or None


def _has_han(text: str | None) -> bool:
    return bool(text) and any("\u4e00" <= c <= "\u9fff" for c in text or "")


def frame_of_records(
    records: Sequence[LinkRecord], payloads: Mapping[str, Mapping[str, Any]] | None = None
) -> pd.DataFrame:
    """Splink's input table: one row per link record, address fields read from the record
    if it carries them, else from ``payloads`` (ref -> registry payload), if given."""
    rows = []
    for rec in records:
        payload = (payloads or {}).get(rec.ref, {})
        address = getattr(rec, "address_line", None) or payload.get("address_line")
        postcode = getattr(rec, "postcode", None) or payload.get("postcode")
        if _has_han(rec.family) or _has_han(rec.given):
            # Chinese: the link record's parts (split from the full name if need be).
            family, given = _text(rec.family), _text(rec.given)
            family_py, given_py = rec.family_py, rec.given_py
        else:
            # Latin: the parts as given (the link record splits a lone full name the
            # Chinese way, after its first letter); the "pinyin" is the name itself.
            family, given = _name(rec.family_name), _name(rec.given_name)
            family_py, given_py = family, given
        rows.append(
            {
                "unique_id": rec.ref,
                "family": family,
                "given": given,
                "family_py": family_py,
                "given_py": given_py,
                "birth": rec.birth_date.isoformat() if rec.birth_date else None,
                "sex": rec.sex_code,
                "phone": rec.phone_digits,
                "division": rec.division,
                "identifier": rec.identifier,
                "address": _text(address),
                "postcode": _text(postcode),
            }
        )
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    if not frame["unique_id"].is_unique:
        raise ValueError("record refs must be unique")
    return frame


def _present(frame: pd.DataFrame, *columns: str) -> bool:
    return any(bool(frame[c].notna().any()) for c in columns)


def _name_comparison(column: str, chinese: bool) -> Any:
    """Splink's name comparison on the pinyin; for Chinese records an exact level on the
    characters first (two homophones agree in pinyin, not in writing)."""
    py = f"{column}_py"
    if not chinese:
        return cl.NameComparison(py)
    return cl.CustomComparison(
        [
            cll.NullLevel(py),
            cll.ExactMatchLevel(column).configure(tf_adjustment_column=column),
            cll.ExactMatchLevel(py).configure(label_for_charts="same pinyin"),
            cll.JaroWinklerLevel(py, 0.92),
            cll.JaroWinklerLevel(py, 0.88),
            cll.JaroWinklerLevel(py, 0.7),
            cll.ElseLevel(),
        ],
        output_column_name=column,
    )


def _names_swapped() -> Any:
    return cl.CustomComparison(
        [
            cll.Or(cll.NullLevel("family_py"), cll.NullLevel("given_py")),
            cll.ColumnsReversedLevel("family_py", "given_py", symmetrical=True),
            cll.CustomLevel(
                "jaro_winkler_similarity(family_py_l, given_py_r) >= 0.88 "
                "and jaro_winkler_similarity(given_py_l, family_py_r) >= 0.88",
                label_for_charts="reversed, Jaro-Winkler >= 0.88",
            ),
            cll.ElseLevel(),
        ],
        output_column_name="names_swapped",
    )


def _household(frame: pd.DataFrame) -> Any | None:
    """Where the person lives and the phone, as one comparison: members of a household share
    both, so two comparisons would count the household's evidence twice."""
    columns = [c for c in ("address", "postcode", "division", "phone") if _present(frame, c)]
    if not columns:
        return None
    levels: list[Any] = [cll.And(*(cll.NullLevel(c) for c in columns))]
    same_place: Any = None
    if "address" in columns:
        same_place = cll.JaroWinklerLevel("address", 0.9)
    elif "division" in columns:
        same_place = cll.ExactMatchLevel("division")
    if "phone" in columns:
        if same_place is not None:
            levels.append(
                cll.And(cll.ExactMatchLevel("phone"), same_place).configure(
                    label_for_charts="same phone and place"
                )
            )
        levels.append(cll.ExactMatchLevel("phone").configure(label_for_charts="same phone"))
    if "address" in columns:
        levels.append(cll.ExactMatchLevel("address").configure(tf_adjustment_column="address"))
        levels.append(cll.JaroWinklerLevel("address", 0.9))
    if "postcode" in columns:
        levels.append(cll.ExactMatchLevel("postcode"))
    if "division" in columns:
        levels.append(cll.ExactMatchLevel("division"))
        levels.append(
            cll.CustomLevel(
                "substr(division_l, 1, 4) = substr(division_r, 1, 4)",
                label_for_charts="same city",
            )
        )
    levels.append(cll.ElseLevel())
    return cl.CustomComparison(levels, output_column_name="household")


def comparisons(frame: pd.DataFrame) -> list[Any]:
    """The comparisons for the columns ``frame`` fills."""
    chinese = bool(frame["family"].map(_has_han).any())
    chosen: list[Any] = [
        _name_comparison("family", chinese),
        _name_comparison("given", chinese),
        _names_swapped(),
    ]
    chosen.append(cl.DateOfBirthComparison("birth", input_is_string=True))
    household = _household(frame)
    if household is not None:
        chosen.append(household)
    if _present(frame, "sex"):
        chosen.append(cl.ExactMatch("sex"))
    if _present(frame, "identifier"):
        chosen.append(cl.ExactMatch("identifier"))
    return chosen


BLOCKING: tuple[Any, ...] = (
    block_on("birth"),
    block_on("postcode", "substr(given_py, 1, 1)"),
    block_on("postcode", "substr(family_py, 1, 1)"),
    block_on("family_py", "given_py"),
    "l.family_py = r.given_py and l.given_py = r.family_py",
    block_on("phone"),
    block_on("identifier"),
    block_on("substr(family_py, 1, 3)", "substr(given_py, 1, 1)", "substr(birth, 1, 4)"),
    block_on("substr(family_py, 1, 3)", "substr(given_py, 1, 3)"),
    "substr(l.family_py, 1, 3) = substr(r.given_py, 1, 3) "
    "and substr(l.given_py, 1, 1) = substr(r.family_py, 1, 1) "
    "and substr(l.birth, 1, 4) = substr(r.birth, 1, 4)",
)
DETERMINISTIC: tuple[Any, ...] = (
    block_on("family_py", "given_py", "birth"),
    block_on("identifier"),
)
EM_RULES: tuple[Any, ...] = (block_on("birth"), block_on("family_py", "given_py"))


def cluster_score(cluster_of: Mapping[str, str], truth: Mapping[str, str]) -> dict[str, float]:
    """Pairwise precision, recall and F1 of a clustering (ref -> cluster) against the truth."""
    joint = Counter((cluster_of[ref], entity) for ref, entity in truth.items())

    def pairs(counts: Counter[Any]) -> int:
        return sum(n * (n - 1) // 2 for n in counts.values())

    correct = pairs(joint)
    predicted = pairs(Counter(cluster_of[ref] for ref in truth))
    true = pairs(Counter(truth.values()))
    precision = correct / predicted if predicted else 1.0
    recall = correct / true if true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "predicted_pairs": predicted}


def trained_linker(frame: pd.DataFrame, *, seed: int = 0) -> tuple[Linker, Any]:
    """A DuckDB linker over ``frame`` with its model estimated from the data (prior from the
    deterministic rules, u by random sampling, m by EM on :data:`EM_RULES`), and its
    DuckDB connection (the caller closes it)."""
    connection = duckdb.connect()
    db_api = DuckDBAPI(connection=connection)
    settings = SettingsCreator(
        link_type="dedupe_only",
        comparisons=comparisons(frame),
        blocking_rules_to_generate_predictions=list(BLOCKING),
    )
    linker = Linker(db_api.register(frame), settings, log_level=logging.WARNING)
    linker.training.estimate_probability_two_random_records_match(
        list(DETERMINISTIC), recall=DETERMINISTIC_RECALL
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=U_PAIRS, seed=seed)
    for rule in EM_RULES:
        linker.training.estimate_parameters_using_expectation_maximisation(rule)
    return linker, connection


def match_weights(linker: Linker) -> list[tuple[str, str, float | None, float | None]]:
    """(comparison, level, m, u) of each non-null level of the linker's model."""
    model = linker.misc.save_model_to_json()
    return [
        (c["output_column_name"], level["label_for_charts"], level.get("m_probability"),
         level.get("u_probability"))
        for c in model["comparisons"]
        for level in c["comparison_levels"]
        if not level.get("is_null_level")
    ]  # fmt: skip


def weights_table(linker: Linker) -> str:
    """The model as a markdown table: m, u and the weight log2(m/u) of each level."""
    lines = ["| comparison | level | m | u | weight |", "|---|---|---|---|---|"]
    for name, level, m, u in match_weights(linker):
        weight = f"{math.log2(m / u):+.1f}" if m and u else "-"
        shown = [f"{v:.5f}" if v is not None else "-" for v in (m, u)]
        lines.append(f"| {name} | {level} | {shown[0]} | {shown[1]} | {weight} |")
    return "\n".join(lines)


def splink_baseline(
    records: Sequence[LinkRecord] | pd.DataFrame,
    truth: Mapping[str, str],
    *,
    seed: int = 0,
    payloads: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, float]:
    """Splink on ``records`` (link records, or a frame from :func:`frame_of_records`), scored
    against ``truth`` (ref -> true entity).

    Returns pairwise ``precision``, ``recall``, ``f1`` of the pairs predicted at
    :data:`THRESHOLD`, the same of Splink's clusters (``cluster_precision`` ...), the
    pairwise scores at :data:`OTHER_THRESHOLDS` (``f1_at_0.99`` ...),
    predicted/true/correct pairs, ``pairs_compared`` (blocked pairs scored),
    ``blocking_recall`` (true pairs among them) and ``seconds`` (loading,
    training, predicting and clustering).
    """
    frame = records if isinstance(records, pd.DataFrame) else frame_of_records(records, payloads)
    missing = set(frame["unique_id"]) - set(truth)
    if missing:
        raise ValueError(f"{len(missing)} records have no truth, e.g. {sorted(missing)[0]}")
    started = time.perf_counter()
    linker, connection = trained_linker(frame, seed=seed)
    predictions = linker.inference.predict()
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
        predictions, threshold_match_probability=THRESHOLD
    )
    scored = connection.execute(
        f"select unique_id_l, unique_id_r, match_probability from {predictions.physical_name}"
    ).fetchall()
    cluster_rows = connection.execute(
        f"select unique_id, cluster_id from {clusters.physical_name}"
    ).fetchall()
    seconds = time.perf_counter() - started
    connection.close()
    predicted = [(str(a), str(b)) for a, b, p in scored if p >= THRESHOLD]
    result = pairwise_score(predicted, truth)
    clustered = cluster_score({str(u): str(c) for u, c in cluster_rows}, truth)
    for name, value in clustered.items():
        result[f"cluster_{name}"] = float(value)
    for other in OTHER_THRESHOLDS:
        at = pairwise_score([(str(a), str(b)) for a, b, p in scored if p >= other], truth)
        for name in ("precision", "recall", "f1"):
            result[f"{name}_at_{other}"] = at[name]
    compared_true = sum(truth[str(a)] == truth[str(b)] for a, b, _ in scored)
    result["pairs_compared"] = float(len(scored))
    result["blocking_recall"] = (
        compared_true / result["true_pairs"] if result["true_pairs"] else 1.0
    )
    result["seconds"] = seconds
    return result


def dataset(
    name: str, size: int | None, seed: int
) -> tuple[list[LinkRecord], dict[str, str], dict[str, dict[str, Any]], str]:
    """(records, truth, payloads, label) of a benchmark data set by name."""
    from bench import febrl
    from bench.population import persons
    from exchange.registry.linkage import person_record

    if name == "febrl3":
        mapped, truth = febrl.febrl3_payloads()
        records = [person_record(ref, dept, payload) for ref, dept, payload in mapped]
        payloads = {ref: payload for ref, _dept, payload in mapped}
        return records, truth, payloads, f"FEBRL3 through connectors ({len(records):,} records)"
    if name not in ("latin", "chinese"):
        raise ValueError(f"unknown data set {name!r}")
    count = size or (10_000 if name == "latin" else 5_000)
    generated = persons(count, seed=seed, mode=name)
    records = [person_record(g.ref, g.department, g.payload, g.updated_at) for g in generated]
    payloads = {g.ref: g.payload for g in generated}
    truth = {g.ref: g.truth for g in generated}
    label = f"{name.capitalize()} population, {count:,} persons ({len(records):,} records)"
    return records, truth, payloads, label


def main(argv: Sequence[str] | None = None) -> None:
    from bench.population import SEED

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--dataset", choices=("febrl3", "latin", "chinese"), required=True)
    parser.add_argument("--size", type=int, help="persons (latin 10,000, chinese 5,000)")
    parser.add_argument("--seed", type=int, default=SEED, help="population seed")
    parser.add_argument("--weights", action="store_true", help="also print the fitted model")
    args = parser.parse_args(argv)
    records, truth, payloads, label = dataset(args.dataset, args.size, args.seed)
    if args.weights:
        linker, connection = trained_linker(frame_of_records(records, payloads))
        print(f"## Splink's model, {label}")
        print(weights_table(linker))
        connection.close()
    result = splink_baseline(records, truth, payloads=payloads)
    print(f"## Splink {label}")
    for name, value in result.items():
        print(f"{name}: {value:,.4f}" if value < 100 else f"{name}: {value:,.0f}")


if __name__ == "__main__":
    main()
