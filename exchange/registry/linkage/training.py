"""Fitting a model to a registry's own records.

Two ways, both without labelled data:

* :func:`fit_model`, how the shipped defaults are made: ``u`` from random
  pairs (nearly all non-matches); ``m`` from the candidate pairs that share
  an identifier (nearly all matches: the deterministic links are the training
  labels); the identifier's own ``m`` (how often one person's two records
  carry different identifiers) from candidate pairs that agree exactly on
  name and date, where a disagreeing identifier is a mistyped one. The
  weights are then relative to random pairs and read naturally (a swapped
  birth date is strong evidence *for* a match); the link threshold must
  exceed log2 of the number of records by a margin.
* :func:`fit_em`: expectation-maximisation on the candidate pairs, ``m`` and
  ``u`` both free, started from a model. Its ``u`` describes candidate pairs,
  which blocking already made agree on something, so agreement on a
  blocking field weighs little and its weights are on another scale; its
  thresholds come from its estimated share of matches among candidate pairs
  (link when the posterior probability of a match is at least 0.95, review
  from 0.5).

Both take every record in memory; for a large registry pass a sample
(records whole, so that same-identifier pairs stay in it).
"""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import replace
from typing import Final

from exchange.registry.linkage.blocking import block_keys
from exchange.registry.linkage.comparators import compare
from exchange.registry.linkage.features import LinkRecord
from exchange.registry.linkage.model import Model, estimate, m_from_matches, u_from_random

# Fields that must agree exactly for a pair to inform the identifier's m.
_EXACT_FIELDS: Final = {
    "person": ("family_name", "given_name", "birth_date"),
    "organisation": ("legal_name", "registration_date"),
}
IDENTIFIER: Final = "identifier"


def candidate_pairs(records: Sequence[LinkRecord]) -> set[tuple[int, int]]:
    """Index pairs sharing a blocking key: exactly the pairs the linker compares."""
    blocks: dict[str, list[int]] = defaultdict(list)
    for i, rec in enumerate(records):
        for key in block_keys(rec):
            blocks[key].append(i)
    pairs: set[tuple[int, int]] = set()
    for members in blocks.values():
        for x, i in enumerate(members):
            for j in members[x + 1 :]:
                pairs.add((i, j))
    return pairs


def random_vectors(
    records: Sequence[LinkRecord], count: int, seed: int = 0
) -> Counter[tuple[int, ...]]:
    """Comparison vectors of ``count`` random pairs of distinct records."""
    if len(records) < 2:
        raise ValueError("need at least two records")
    rng = random.Random(seed)
    vectors: Counter[tuple[int, ...]] = Counter()
    for _ in range(count):
        a, b = rng.sample(range(len(records)), 2)
        vectors[compare(records[a], records[b])] += 1
    return vectors


def _candidate_vectors(records: Sequence[LinkRecord]) -> list[tuple[tuple[int, ...], bool]]:
    """(vector, same identifier) of every candidate pair."""
    out = []
    for i, j in candidate_pairs(records):
        a, b = records[i], records[j]
        out.append((compare(a, b), a.identifier is not None and a.identifier == b.identifier))
    return out


def fit_model(
    records: Sequence[LinkRecord],
    base: Model,
    *,
    random_pairs: int = 1_000_000,
    prior_pairs: float = 50.0,
    seed: int = 0,
) -> Model:
    """A model of ``base``'s kind fitted to ``records`` (see the module notes); thresholds kept."""
    vectors = _candidate_vectors(records)
    names = [f.name for f in base.fields]
    model = u_from_random(random_vectors(records, random_pairs, seed), base)
    same = Counter(v for v, same_id in vectors if same_id)
    if not same:
        raise ValueError("no candidate pairs share an identifier: cannot estimate m")
    model = m_from_matches(same, model, prior_pairs=prior_pairs, keep=(IDENTIFIER,))
    strict = [names.index(n) for n in _EXACT_FIELDS[base.kind]]
    exact = Counter(v for v, _ in vectors if all(v[i] == 1 for i in strict))
    keep = [n for n in names if n != IDENTIFIER]
    model = m_from_matches(exact, model, prior_pairs=prior_pairs, keep=keep)
    note = f"fit_model: {len(records):,} records, {sum(same.values()):,} same-identifier pairs"
    # The share of matches among candidate pairs, roughly: those the fitted model links.
    linked = sum(model.weight(v) >= model.link or same_id for v, same_id in vectors)
    return replace(model, source=note, prior=linked / max(len(vectors), 1))


def posterior_threshold(model: Model, probability: float) -> float:
    """The weight at which a candidate pair's posterior match probability reaches ``probability``,
    given the model's share of matches among candidate pairs (``prior``)."""
    prior = min(max(model.prior, 1e-9), 1 - 1e-9)
    return math.log2(probability / (1 - probability)) + math.log2((1 - prior) / prior)


def fit_em(
    records: Sequence[LinkRecord],
    start: Model,
    *,
    iterations: int = 200,
    link_probability: float = 0.95,
    review_probability: float = 0.5,
) -> Model:
    """Full EM on the candidate pairs from ``start``; thresholds from the fitted posterior."""
    vectors = Counter(v for v, _ in _candidate_vectors(records))
    fitted = estimate(vectors, replace(start, prior=0.3), iterations)
    link = posterior_threshold(fitted, link_probability)
    review = posterior_threshold(fitted, review_probability)
    note = f"fit_em: {len(records):,} records, {sum(vectors.values()):,} candidate pairs"
    return replace(fitted, link=round(link, 2), review=round(review, 2), source=note)


def fit_unsupervised(
    records: Sequence[LinkRecord], kind: str, *, seed: int = 0, max_pairs: int = 2_000_000
) -> Model:
    """A model of ``kind`` fitted to ``records`` without labels (``exchange registry model
    fit``). For now :func:`fit_em` started from the shipped model; ``seed`` and
    ``max_pairs`` are for the estimator that replaces it (u from random pairs, m by EM
    over the blocking rules). Raises ValueError when the records cannot be fitted."""
    from exchange.registry.linkage.model import default_model

    del seed, max_pairs  # not used by fit_em
    mine = [r for r in records if r.kind == kind]
    if not candidate_pairs(mine):
        raise ValueError("no two records share a blocking key: nothing to estimate from")
    return fit_em(mine, default_model(kind))
