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
* :func:`fit_em`: expectation-maximisation on the candidate pairs, started
  from a model, ``u`` fixed from random pairs (with ``u`` free too, EM took
  every candidate pair for a match); its thresholds come from its estimated
  share of matches among candidate pairs (link when the posterior
  probability of a match is at least 0.95, review from 0.5).

* :func:`fit_unsupervised`, the estimator for a registry's own records,
  with or without identifiers (Splink's approach): ``u`` from random pairs;
  ``m`` by EM over the candidate pairs of each blocking rule in turn, with
  ``u`` fixed and the fields that rule reads left out (its pairs agree on
  them by construction), the rules' estimates of each field averaged,
  weighted by the matches each rule found; pairs sharing an identifier, when
  there are enough, give EM its starting ``m``. The share of matches is
  then estimated among all candidate pairs, and the thresholds are set where
  a pair's posterior probability of a match reaches 0.95 (link) and 0.5
  (review). A fit that degenerates raises :class:`~exchange.core.errors.LinkageFitError`.

All take every record in memory; for a large registry pass a sample
(records whole, so that same-identifier pairs stay in it).
"""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Final

from exchange.core.errors import LinkageFitError
from exchange.registry.linkage.blocking import block_keys
from exchange.registry.linkage.comparators import compare
from exchange.registry.linkage.features import LinkRecord
from exchange.registry.linkage.model import Model, estimate, m_from_matches, u_from_random

# fit_em keeps the share of matches among candidate pairs within these bounds; at a bound
# the fit has degenerated (fit_em once returned 1.0: every candidate pair a match).
EM_PRIOR_BOUNDS: Final = (1e-4, 1 - 1e-4)

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
    random_pairs: int = 200_000,
    seed: int = 0,
) -> Model:
    """EM on the candidate pairs from ``start``, ``u`` fixed from random pairs; thresholds
    from the fitted posterior.

    With ``u`` free as well, EM could explain the candidate pairs, which blocking already
    made agree on something, as all matches: it once returned a share of matches of 1.0
    (every candidate pair linked). ``u`` from random pairs pins the non-match side; the
    share of matches is kept within :data:`EM_PRIOR_BOUNDS`, and a fit that ends at a
    bound raises :class:`LinkageFitError`.
    """
    vectors = Counter(v for v, _ in _candidate_vectors(records))
    if not vectors:
        raise LinkageFitError("no candidate pairs: the records share no blocking key")
    low, high = EM_PRIOR_BOUNDS
    model = u_from_random(random_vectors(records, random_pairs, seed), start)
    fitted = estimate(
        vectors, replace(model, prior=0.3), iterations, fix_u=True, prior_bounds=EM_PRIOR_BOUNDS
    )
    if not low * 1.01 < fitted.prior < 1 - (1 - high) * 1.01:
        raise LinkageFitError(
            f"EM degenerated: share of matches among candidate pairs {fitted.prior:.4f} "
            f"is at its bound ({low:g}, {high:g})"
        )
    link = posterior_threshold(fitted, link_probability)
    review = posterior_threshold(fitted, review_probability)
    note = f"fit_em: {len(records):,} records, {sum(vectors.values()):,} candidate pairs"
    return replace(fitted, link=round(link, 2), review=round(review, 2), source=note)


# --- fit_unsupervised ---------------------------------------------------------------------

# Posterior match probability at the link threshold, the weakest linked pair's; the pairs
# above it are far likelier matches. 0.99 -> 0.95: FEBRL3 P/R/F1 1.0/0.9840/0.9920 ->
# 1.0/0.9906/0.9953 (34 true pairs at weight 15.2-16 left review); Latin 0.9995/0.9621/0.9804
# -> 0.9990/0.9637/0.9810; Chinese F1 0.9886 -> 0.9887. (Tried: the lowest threshold at which
# the linked candidate pairs' mean posterior is 0.995: FEBRL3 recall 0.943 -> 0.957, but on the
# Latin population precision 0.991 -> 0.909: households make the posterior overconfident.)
LINK_PROBABILITY: Final = 0.95
REVIEW_PROBABILITY: Final = 0.5
MIN_RECORDS: Final = 50
MIN_RULE_PAIRS: Final = 30  # a blocking rule with fewer candidate pairs gets no EM session
MIN_BOOTSTRAP_PAIRS: Final = 30  # same-identifier pairs needed to start m from them
RANDOM_PAIRS_CAP: Final = 300_000
SESSION_ITERATIONS: Final = 100
# The share of matches among candidate pairs must end strictly inside these bounds.
CANDIDATE_PRIOR_BOUNDS: Final = (1e-4, 0.99)
# A session's share of matches among its rule's pairs (a rule may find nearly only matches).
SESSION_PRIOR_BOUNDS: Final = (1e-4, 1 - 1e-4)
LOCATION_FIELDS: Final = frozenset({"postcode", "division_code", "address"})
IDENTITY_FIELDS: Final = frozenset(
    {"identifier", "family_name", "given_name", "birth_date", "legal_name", "registration_date"}
)


def _start_model(kind: str) -> Model:
    """Uninformed start: each field's first level likely among matches, its last unlikely."""
    from exchange.registry.linkage.comparators import fields_of
    from exchange.registry.linkage.model import FieldModel

    fields = []
    for comp in fields_of(kind):
        k = len(comp.levels) - 1
        middle = [0.12 / (k - 2)] * (k - 2) if k > 2 else []
        m = (1.0, 0.95, 0.05) if k == 2 else (1.0, 0.85, *middle, 0.03)
        fields.append(FieldModel(comp.name, comp.levels, m, (1.0, *([1.0 / k] * k))))
    return Model(
        kind=kind, fields=tuple(fields), link=0.0, review=0.0, sibling_guard=kind == "person"
    )


def _rule_pairs(
    records: Sequence[LinkRecord], max_pairs: int, rng: random.Random
) -> dict[tuple[int, int], set[str]]:
    """Candidate pairs, each with the letters of the blocking rules that found it."""
    blocks: dict[str, list[int]] = defaultdict(list)
    for i, rec in enumerate(records):
        for key in block_keys(rec):
            blocks[key].append(i)
    found: dict[tuple[int, int], set[str]] = defaultdict(set)
    for key, members in blocks.items():
        for x, i in enumerate(members):
            for j in members[x + 1 :]:
                found[(i, j)].add(key[0])
    if len(found) > max_pairs:
        kept = rng.sample(sorted(found), max_pairs)
        return {pair: found[pair] for pair in kept}
    return dict(found)


def _random_u(records: Sequence[LinkRecord], start: Model, count: int, rng: random.Random) -> Model:
    """``start`` with ``u`` from ``count`` random pairs, leaving out pairs sharing an identifier."""
    vectors: Counter[tuple[int, ...]] = Counter()
    n = len(records)
    for _ in range(count):
        i, j = rng.sample(range(n), 2)
        a, b = records[i], records[j]
        if a.identifier is not None and a.identifier == b.identifier:
            continue
        vectors[compare(a, b)] += 1
    return u_from_random(vectors, start)


def _masked(vector: tuple[int, ...], masked: Sequence[int]) -> tuple[int, ...]:
    out = list(vector)
    for i in masked:
        out[i] = 0
    return tuple(out)


def _posterior(model: Model, vector: tuple[int, ...], log2_prior_odds: float) -> float:
    odds = log2_prior_odds + model.weight(vector)
    return 1.0 / (1.0 + 2.0 ** (-odds)) if odds > -1000 else 0.0


HOUSEHOLD_SHARE: Final = 0.01  # of candidate pairs, at least this many household pairs ...
HOUSEHOLD_MIN: Final = 5  # ... and at least this many, to show that the records hold relatives


def _needs_guard(model: Model, vectors: Iterable[tuple[int, ...]], kind: str) -> tuple[bool, int]:
    """Whether the records show relatives, so that the sibling guard is needed; and how
    many candidate pairs look like two members of one household.

    Such a pair agrees on family name and address but differs in both given name and
    birth date. Records that hold households always show some; records without any
    address line cannot show them, and keep the guard on. Only where the address lines
    show no household at all (FEBRL's synthetic records, say) is the guard off: there a
    different given name on the same family name and birth date is a corrupted record,
    not a twin.
    """
    if kind != "person":
        return False, 0
    names = [f.name for f in model.fields]
    levels = [f.levels for f in model.fields]
    fam, giv, dob, adr = (
        names.index(n) for n in ("family_name", "given_name", "birth_date", "address")
    )
    total = with_address = households = 0
    for v in vectors:
        total += 1
        if not v[adr]:
            continue
        with_address += 1
        if (
            levels[fam][v[fam]] in ("exact", "homophone")
            and levels[adr][v[adr]] in ("exact", "similar")
            and levels[giv][v[giv]] in ("similar", "different")
            and levels[dob][v[dob]] in ("close", "different")
        ):
            households += 1
    if with_address == 0:
        return True, 0
    return households >= max(HOUSEHOLD_MIN, HOUSEHOLD_SHARE * total), households


def fit_unsupervised(
    records: Sequence[LinkRecord], kind: str, *, seed: int = 0, max_pairs: int = 2_000_000
) -> Model:
    """A model of ``kind`` fitted to ``records`` alone, no labels, identifiers optional.

    1. ``u`` from random pairs of records (at most ``max_pairs // 2``, at most
       300,000), which are nearly all non-matches; pairs sharing an identifier
       are left out.
    2. Starting ``m``: the level frequencies among candidate pairs sharing an
       identifier when there are at least 30 (nearly all matches); else an
       uninformed start (first level likely, last level unlikely).
    3. For each blocking rule (:data:`~exchange.registry.linkage.blocking.RULE_FIELDS`)
       with at least 30 candidate pairs: EM on that rule's pairs with ``u``
       fixed, the fields the rule reads left out (treated as missing), the
       other fields' ``m`` and the rule's share of matches free. A session
       whose share of matches ends at a bound is set aside.
    4. Each field's ``m`` is the average of the sessions that estimated it,
       weighted by the matches each found; a field no session estimated
       keeps its start.
    5. The share of matches among all pairs of records, λ, solves λ = (sum of
       the candidate pairs' posterior match probabilities at λ) / (pairs of
       records): pairs that share no key count as non-matches. ``prior`` is
       the share among candidate pairs.
    6. Thresholds: link where the posterior probability of a match is 0.95,
       review where it is 0.5 (weight ``log2(p / (1 - p)) + log2((1 - λ) / λ)``).

    At most ``max_pairs`` candidate pairs are used (a random sample beyond).
    Raises :class:`LinkageFitError` on too few records or candidate pairs, when
    every EM session degenerates, when the share of matches among candidate
    pairs ends outside (0.0001, 0.99), or when a field estimated from the data
    weighs its agreement no more than its disagreement.
    """
    from datetime import UTC, datetime

    from exchange.registry.linkage.blocking import RULE_FIELDS
    from exchange.registry.linkage.model import estimate_counted

    records = [r for r in records if r.kind == kind]
    if len(records) < MIN_RECORDS:
        raise LinkageFitError(f"{len(records)} {kind} records: at least {MIN_RECORDS} needed")
    rng = random.Random(seed)
    start = _start_model(kind)
    names = [f.name for f in start.fields]
    n = len(records)
    all_pairs = n * (n - 1) // 2
    random_count = min(max(max_pairs // 2, 1), RANDOM_PAIRS_CAP, all_pairs)
    model = _random_u(records, start, random_count, rng)

    found = _rule_pairs(records, max_pairs, rng)
    if not found:
        raise LinkageFitError("no candidate pairs: the records share no blocking key")
    scale = max(len(found), 1)
    vectors = {pair: compare(records[pair[0]], records[pair[1]]) for pair in found}

    same_id = Counter(
        v
        for (i, j), v in vectors.items()
        if records[i].identifier is not None and records[i].identifier == records[j].identifier
    )
    bootstrap = sum(same_id.values()) >= MIN_BOOTSTRAP_PAIRS
    if bootstrap:
        model = m_from_matches(same_id, model, prior_pairs=50.0, keep=(IDENTIFIER,))

    # 3. One EM session a blocking rule.
    rules = RULE_FIELDS[kind]
    # Per field, the sums of the sessions of rules that read an identity field (identifier,
    # names, birth date) [0] and of the others (address, postcode, phone) [1]: the pairs of the
    # latter include whole households, which share an address and a phone, and EM takes them
    # for matches; so a field's m comes from the former where they estimated it.
    totals = [[[0.0] * len(f.m) for f in model.fields] for _ in range(2)]
    weight_of = [[0.0] * len(model.fields) for _ in range(2)]
    sessions: list[str] = []
    iterations = 0
    for letter, read in rules.items():
        if not any(f in IDENTITY_FIELDS for f in read):
            continue  # address, postcode and phone rules: whole households (see above)
        used = set(read)
        if used & LOCATION_FIELDS:
            used |= LOCATION_FIELDS  # a postcode predicts the division and the address
        masked = [names.index(f) for f in used if f in names]
        counts = Counter(_masked(v, masked) for pair, v in vectors.items() if letter in found[pair])
        size = sum(counts.values())
        if size < MIN_RULE_PAIRS:
            continue
        free = [f for f in names if f not in used]
        low, high = SESSION_PRIOR_BOUNDS
        fitted, ran = estimate_counted(
            counts,
            replace(model, prior=0.3),
            SESSION_ITERATIONS,
            fix_u=True,
            only=free,
            prior_pairs=10.0,
            prior_bounds=(low, high),
        )
        iterations += ran
        if fitted.prior <= low * 1.01:
            continue  # no matches found: set aside (a share near 1 is fine: m is then counted)
        identity = any(f in IDENTITY_FIELDS for f in used)
        sessions.append(letter)
        matches = fitted.prior * size
        for i, fm in enumerate(fitted.fields):
            if fm.name not in free:
                continue
            seen = sum(c for v, c in counts.items() if v[i])
            if not seen:
                continue
            w = matches * seen / size
            side = 0 if identity else 1
            weight_of[side][i] += w
            totals[side][i] = [t + w * p for t, p in zip(totals[side][i], fm.m, strict=True)]
    if not sessions:
        raise LinkageFitError(
            "every EM session degenerated (all or none of each rule's pairs matches)"
        )
    # 4. Combine.
    fields = []
    estimated = []
    for i, fm in enumerate(model.fields):
        side = 0 if weight_of[0][i] > 0 else 1
        if weight_of[side][i] > 0:
            m = (1.0, *(t / weight_of[side][i] for t in totals[side][i][1:]))
            fm = replace(fm, m=m)
            estimated.append(i)
        fields.append(fm)
    model = replace(model, fields=tuple(fields))
    for i, fm in enumerate(model.fields):
        if i in estimated and fm.weights[1] <= max(fm.weights[-1], 0.0):
            raise LinkageFitError(
                f"degenerate fit: {fm.name} {fm.levels[1]} weighs {fm.weights[1]:.2f}, no more "
                f"than {fm.levels[-1]} ({fm.weights[-1]:.2f})"
            )
    # 5. The share of matches among all pairs.
    weights = Counter(vectors.values())
    factor = len(found) / scale
    lam = min(max(sum(weights.values()) * 0.1 / all_pairs, 1.0 / all_pairs), 0.5)
    for _ in range(200):
        log_odds = math.log2(lam / (1 - lam))
        expected = factor * sum(c * _posterior(model, v, log_odds) for v, c in weights.items())
        new = min(max(expected / all_pairs, 0.5 / all_pairs), 0.5)
        if abs(new - lam) <= 1e-9 * lam:
            lam = new
            break
        lam = new
    log_odds = math.log2(lam / (1 - lam))
    expected = sum(c * _posterior(model, v, log_odds) for v, c in weights.items())
    share = expected / sum(weights.values())
    low, high = CANDIDATE_PRIOR_BOUNDS
    if not low < share < high:
        raise LinkageFitError(
            f"degenerate fit: share of matches among candidate pairs {share:.5f} outside "
            f"({low:g}, {high:g})"
        )
    guard, households = _needs_guard(model, vectors.values(), kind)
    # 6. Thresholds from the posterior.
    base = math.log2((1 - lam) / lam)
    review = math.log2(REVIEW_PROBABILITY / (1 - REVIEW_PROBABILITY)) + base
    link = math.log2(LINK_PROBABILITY / (1 - LINK_PROBABILITY)) + base
    note = (
        f"fit_unsupervised: {n:,} records, {len(found):,} candidate pairs, "
        f"{random_count:,} random pairs, EM over rules {','.join(sessions)} "
        f"({iterations} iterations), identifier bootstrap "
        f"{'yes' if bootstrap else 'no'}, {households:,} household pairs (sibling guard "
        f"{'on' if guard else 'off'}), {datetime.now(UTC):%Y-%m-%d}"
    )
    return replace(
        model,
        link=round(link, 2),
        review=round(review, 2),
        prior=share,
        source=note,
        sibling_guard=guard,
    )
