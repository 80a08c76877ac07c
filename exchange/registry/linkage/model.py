"""The Fellegi-Sunter model: how much each comparison level says for or against a match.

For every field and level the model holds ``m``, the probability of that
level among pairs of records of the same entity, and ``u``, its probability
among pairs of different entities. A pair's match weight is the sum over its
fields of ``log2(m / u)`` (a missing value, level ``null``, adds 0): each
point of weight doubles the odds that the pair is a match. Two thresholds on
the weight make the decision: at or above ``link`` the pair links, at or above
``review`` it goes to the review queue, below that it does not link.

:func:`estimate` fits ``m``, ``u`` and the share of matches from unlabelled
comparison vectors by expectation-maximisation (conditional independence of
the fields given the match status); :func:`u_from_random` sets ``u`` from
random pairs, which are nearly all non-matches, and :func:`m_from_matches`
sets ``m`` from pairs known to match (those sharing an identifier).
:func:`default_model` is the
shipped model of a record kind (see :mod:`exchange.registry.linkage.defaults`).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final

from exchange.registry.linkage.comparators import (
    EVALUATION_ORDER,
    Field,
    compare,
    compare_bounded,
    fields_of,
)
from exchange.registry.linkage.defaults import DEFAULT_MODELS
from exchange.registry.linkage.explanation import Evidence, Explanation
from exchange.registry.linkage.features import LinkRecord

LINK: Final = "link"
REVIEW: Final = "review"
NON_LINK: Final = "non-link"
FLOOR: Final = 1e-6  # no probability is 0, so every weight is finite
FORMAT_VERSION: Final = 1


@dataclass(frozen=True, slots=True)
class FieldModel:
    """``m`` and ``u`` of each level of one field; index 0 (``null``) is unused and set to 1."""

    name: str
    levels: tuple[str, ...]
    m: tuple[float, ...]
    u: tuple[float, ...]

    def __post_init__(self) -> None:
        if not (len(self.levels) == len(self.m) == len(self.u)) or self.levels[0] != "null":
            raise ValueError(f"field {self.name}: levels, m and u must align, null first")
        for p in (*self.m[1:], *self.u[1:]):
            if not 0.0 < p <= 1.0:
                raise ValueError(f"field {self.name}: probabilities must be in (0, 1]")

    @property
    def weights(self) -> tuple[float, ...]:
        return (0.0, *(math.log2(m / u) for m, u in zip(self.m[1:], self.u[1:], strict=True)))


@dataclass(frozen=True, slots=True)
class Model:
    """A Fellegi-Sunter model of one record kind, with its decision thresholds."""

    kind: str
    fields: tuple[FieldModel, ...]
    link: float
    review: float
    prior: float = 0.5  # share of matches among candidate pairs (EM's lambda); informative
    source: str = ""  # how the model was obtained
    # Persons: hold for review, instead of linking, a pair with the same family name and birth
    # date but another given name and no shared identifier (twins, siblings; see linker.py).
    sibling_guard: bool = False
    _weights: tuple[tuple[float, ...], ...] = field(init=False, repr=False, compare=False)
    # The most the fields after the k-th of EVALUATION_ORDER can add, for compare_bounded.
    _rest: tuple[float, ...] = field(init=False, repr=False, compare=False)
    # The weight of two different identifiers (0 without such a level): asked of every
    # candidate pair holding two identifiers, so computed once.
    identifier_disagreement: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.review > self.link:
            raise ValueError("the review threshold must not exceed the link threshold")
        expected = [(f.name, f.levels) for f in fields_of(self.kind)]
        if [(f.name, f.levels) for f in self.fields] != expected:
            raise ValueError(f"model fields do not match the {self.kind} comparators")
        weights = tuple(f.weights for f in self.fields)
        order = EVALUATION_ORDER[self.kind]
        best = [max(weights[i]) for i in order]  # >= 0: a null adds 0
        rest = tuple(sum(best[k + 1 :]) for k in range(len(order)))
        object.__setattr__(self, "_weights", weights)
        object.__setattr__(self, "_rest", rest)
        disagreement = 0.0
        for fm in self.fields:
            if fm.name == "identifier" and "disagree" in fm.levels:
                disagreement = fm.weights[fm.levels.index("disagree")]
                break
        object.__setattr__(self, "identifier_disagreement", disagreement)

    def weight(self, vector: tuple[int, ...]) -> float:
        """Match weight of a comparison vector: sum of log2(m/u), nulls 0."""
        return sum(w[level] for w, level in zip(self._weights, vector, strict=True))

    def bounded_vector(self, a: LinkRecord, b: LinkRecord, floor: float) -> tuple[int, ...] | None:
        """The comparison vector of a pair, or None if its weight is sure to be below ``floor``."""
        return compare_bounded(a, b, self._weights, self._rest, floor)

    def decision(self, weight: float) -> str:
        if weight >= self.link:
            return LINK
        return REVIEW if weight >= self.review else NON_LINK

    def explain(
        self, a: LinkRecord, b: LinkRecord, vector: tuple[int, ...] | None = None
    ) -> Explanation:
        """Field by field evidence of a pair, its total weight and the model's decision.

        ``vector`` is the pair's comparison vector if already known (else compared here).
        """
        vector = compare(a, b) if vector is None else vector
        comparators: tuple[Field, ...] = fields_of(self.kind)
        evidence = tuple(
            Evidence(
                field=fm.name,
                level=fm.levels[level],
                relationship=comp.meaning(level),
                weight=weights[level],
                m=fm.m[level] if level else None,
                u=fm.u[level] if level else None,
            )
            for fm, comp, weights, level in zip(
                self.fields, comparators, self._weights, vector, strict=True
            )
        )
        total = sum(e.weight for e in evidence)
        return Explanation(
            kind=self.kind,
            fields=evidence,
            total=total,
            decision=self.decision(total),
            link=self.link,
            review=self.review,
        )

    def with_thresholds(self, link: float, review: float) -> Model:
        return replace(self, link=link, review=review)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "kind": self.kind,
            "link": self.link,
            "review": self.review,
            "prior": round(self.prior, 6),
            "source": self.source,
            "sibling_guard": self.sibling_guard,
            "fields": [
                {
                    "name": f.name,
                    "m": {lv: round(p, 6) for lv, p in zip(f.levels[1:], f.m[1:], strict=True)},
                    "u": {lv: round(p, 6) for lv, p in zip(f.levels[1:], f.u[1:], strict=True)},
                }
                for f in self.fields
            ],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=1)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Model:
        """Read a model; raises ValueError if it does not fit the current comparators."""
        if data.get("format") != FORMAT_VERSION:
            raise ValueError(f"unsupported linkage model format {data.get('format')!r}")
        kind = str(data["kind"])
        given = {str(f["name"]): f for f in data["fields"]}
        fields = []
        for comp in fields_of(kind):
            spec = given.get(comp.name)
            levels = set(comp.levels[1:])
            if spec is None or set(spec["m"]) != levels or set(spec["u"]) != levels:
                raise ValueError(f"model field {comp.name} missing or its levels changed")
            fields.append(
                FieldModel(
                    comp.name,
                    comp.levels,
                    (1.0, *(float(spec["m"][lv]) for lv in comp.levels[1:])),
                    (1.0, *(float(spec["u"][lv]) for lv in comp.levels[1:])),
                )
            )
        return cls(
            kind=kind,
            fields=tuple(fields),
            link=float(data["link"]),
            review=float(data["review"]),
            prior=float(data.get("prior", 0.5)),
            source=str(data.get("source", "")),
            sibling_guard=bool(data.get("sibling_guard", False)),
        )

    @classmethod
    def from_json(cls, text: str) -> Model:
        return cls.from_dict(json.loads(text))


def _normalised(counts: list[float]) -> tuple[float, ...]:
    """Probabilities of the non-null levels (index 0 kept at 1), floored at FLOOR."""
    total = sum(counts[1:])
    if total <= 0:
        share = 1.0 / (len(counts) - 1)
        return (1.0, *([share] * (len(counts) - 1)))
    probs = [max(c / total, FLOOR) for c in counts[1:]]
    norm = sum(probs)
    return (1.0, *(p / norm for p in probs))


def _counted(vectors: Iterable[tuple[int, ...]] | Mapping[tuple[int, ...], int]) -> Counter[Any]:
    if isinstance(vectors, Mapping):
        return Counter(dict(vectors))
    return Counter(vectors)


def _frequencies(
    vectors: Iterable[tuple[int, ...]] | Mapping[tuple[int, ...], int],
    model: Model,
    side: str,
    prior_pairs: float,
    keep: Collection[str],
) -> Model:
    counts = _counted(vectors)
    fields = []
    for i, fm in enumerate(model.fields):
        if fm.name in keep:
            fields.append(fm)
            continue
        tally = [prior_pairs * p for p in getattr(fm, side)]
        for vector, n in counts.items():
            tally[vector[i]] += n
        probs = _normalised(tally)
        fields.append(replace(fm, m=probs) if side == "m" else replace(fm, u=probs))
    return replace(model, fields=tuple(fields))


def u_from_random(
    vectors: Iterable[tuple[int, ...]] | Mapping[tuple[int, ...], int], model: Model
) -> Model:
    """``model`` with ``u`` set to the level frequencies among random pairs' vectors.

    Random pairs are nearly all non-matches, so their level frequencies
    estimate ``u`` without labels (as Splink and fastLink do).
    """
    return _frequencies(vectors, model, "u", 0.0, ())


def m_from_matches(
    vectors: Iterable[tuple[int, ...]] | Mapping[tuple[int, ...], int],
    model: Model,
    *,
    prior_pairs: float = 50.0,
    keep: Collection[str] = ("identifier",),
) -> Model:
    """``model`` with ``m`` set to the level frequencies among known matches' vectors.

    The pairs that share a validated identifier are (nearly) all matches, so
    their other fields show how a department's records of one person
    differ. The fields in ``keep`` (by default the identifier, which such
    pairs agree on by construction) keep their ``m``; ``prior_pairs``
    pseudo-pairs distributed as the current ``m`` keep unseen levels possible.
    """
    return _frequencies(vectors, model, "m", prior_pairs, keep)


def estimate(
    pairs_vectors: Iterable[tuple[int, ...]] | Mapping[tuple[int, ...], int],
    initial_model: Model,
    iterations: int = 50,
    *,
    fix_u: bool = False,
    only: Collection[str] | None = None,
    prior_pairs: float = 50.0,
    tolerance: float = 1e-7,
    prior_bounds: tuple[float, float] = (FLOOR, 1 - FLOOR),
) -> Model:
    """Fit ``m``, ``u`` (unless ``fix_u``) and the match share by EM on unlabelled vectors.

    ``pairs_vectors`` are the comparison vectors of candidate pairs (or a
    mapping vector -> count). The fields are assumed independent given the
    match status; nulls carry no information about a field. EM finds a local
    optimum, so the initial model should be roughly right (matches agree more
    than non-matches); the thresholds are kept from it.

    ``prior_pairs`` adds that many pseudo-pairs distributed as the initial
    model (a Dirichlet prior, so this is MAP rather than maximum-likelihood
    EM): a level that the data hardly ever shows among matches or
    non-matches keeps a probability near the initial one instead of falling
    to 0 and taking an extreme weight. With ``fix_u`` the u of the initial
    model is kept (e.g. set by :func:`u_from_random`); note that on pairs
    blocked on a field, random-pair u then overstates that field's evidence
    and EM may take the blocked non-matches for matches. ``only`` names the
    fields to re-estimate; the others keep their ``m`` and ``u`` (and still
    inform which pairs are matches). ``prior_bounds`` keeps the match share
    within (floor, ceiling) at every step.
    """
    return estimate_counted(
        pairs_vectors,
        initial_model,
        iterations,
        fix_u=fix_u,
        only=only,
        prior_pairs=prior_pairs,
        tolerance=tolerance,
        prior_bounds=prior_bounds,
    )[0]


def estimate_counted(
    pairs_vectors: Iterable[tuple[int, ...]] | Mapping[tuple[int, ...], int],
    initial_model: Model,
    iterations: int = 50,
    *,
    fix_u: bool = False,
    only: Collection[str] | None = None,
    prior_pairs: float = 50.0,
    tolerance: float = 1e-7,
    prior_bounds: tuple[float, float] = (FLOOR, 1 - FLOOR),
) -> tuple[Model, int]:
    """:func:`estimate`, and the number of iterations it ran."""
    low, high = prior_bounds
    counts = _counted(pairs_vectors)
    if not counts:
        raise ValueError("no comparison vectors to estimate from")
    vectors = list(counts)
    sizes = [float(counts[v]) for v in vectors]
    total = sum(sizes)
    model, prior = initial_model, min(max(initial_model.prior, low), high)
    done = 0
    for done in range(1, iterations + 1):  # noqa: B007 - done is reported
        log_m = [[math.log(p) for p in f.m] for f in model.fields]
        log_u = [[math.log(p) for p in f.u] for f in model.fields]
        tally_m = [[prior_pairs * p for p in f.m] for f in initial_model.fields]
        tally_u = [[prior_pairs * p for p in f.u] for f in initial_model.fields]
        log_odds_prior = math.log(prior / (1 - prior))
        matched = 0.0
        for vector, n in zip(vectors, sizes, strict=True):
            log_ratio = log_odds_prior + sum(
                lm[lv] - lu[lv] for lm, lu, lv in zip(log_m, log_u, vector, strict=True) if lv
            )
            p = 1.0 / (1.0 + math.exp(-log_ratio)) if log_ratio > -700 else 0.0
            matched += n * p
            for i, level in enumerate(vector):
                tally_m[i][level] += n * p
                tally_u[i][level] += n * (1 - p)
        fields = tuple(
            fm
            if only is not None and fm.name not in only
            else replace(fm, m=_normalised(tm), u=fm.u if fix_u else _normalised(tu))
            for fm, tm, tu in zip(model.fields, tally_m, tally_u, strict=True)
        )
        new_prior = min(max(matched / total, low), high)
        change = max(
            abs(a - b)
            for old, new in zip(model.fields, fields, strict=True)
            for a, b in zip((*old.m, *old.u), (*new.m, *new.u), strict=True)
        )
        model, prior = replace(model, fields=fields), new_prior
        if change < tolerance:
            break
    return replace(model, prior=prior), done


def default_model(kind: str) -> Model:
    """The shipped model for ``kind`` (``person`` or ``organisation``)."""
    try:
        return Model.from_dict(DEFAULT_MODELS[kind])
    except KeyError:
        raise ValueError(f"no default linkage model for {kind!r}") from None
