"""An entity as the operator's command line shows it: no internal field, personal values
masked.

:func:`exchange.registry.entityview.entity_view` is the registry's whole account of an
entity. What an operator's screen (and whatever it is pasted into) shows is less:

* **no internal field**: no blind index (``*_bidx``), no content hash, no row id, no
  ciphertext (a sensitive field is ``"<encrypted>"``: the command line never decrypts;
  the gateway does, for a grant). The golden record's blind index is shown under the
  identifier it indexes (``resident_id``: ``"<encrypted>"``), with its source, rule and
  any conflict, so an operator sees whether members hold different identifiers;
* **personal values masked** as the standard declares for each field (names to initials,
  the birth date to its year, the phone to its last 4 digits; a ``token`` style, which
  needs the gateway's per-purpose key, is redacted), unless ``unmask`` (an administrator's
  option): then personal fields are shown as stored. Public and internal fields (division
  codes, an organisation's name) are shown as stored.

How each member record joined the entity is the entity view's ``joined``
(:mod:`exchange.registry.joins`): identifier, a reviewer (who, when), or probabilistic
(the weakest link's weight and probability).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from exchange.access.masking import HIDDEN, mask, style_of
from exchange.registry.entityview import ENCRYPTED
from schemas.standards import BLIND_INDEX_SUFFIX, FieldSpec, Sensitivity, load_standard

INTERNAL_FIELDS = frozenset({"content_hash", "id", "record_id", "a_id", "b_id", "lookup_key"})


@cache
def _specs(dataset: str) -> dict[str, FieldSpec] | None:
    try:
        standard = load_standard(dataset)
    except Exception:  # not a shipped standard: every value is masked (fail closed)
        return None
    return {spec.name: spec for spec in standard.fields}


def internal(name: str) -> bool:
    """Whether a field is the registry's own (never shown to an operator)."""
    return name.endswith(BLIND_INDEX_SUFFIX) or name in INTERNAL_FIELDS


def shown_value(dataset: str, name: str, value: Any, *, unmask: bool = False) -> Any:
    """A field's value as the operator's command line shows it (see the module docstring)."""
    if value is None or value == ENCRYPTED:
        return value
    specs = _specs(dataset)
    spec = None if specs is None else specs.get(name)
    if spec is None:
        return value if unmask else HIDDEN
    if spec.sensitivity is Sensitivity.SENSITIVE:
        return ENCRYPTED
    if spec.sensitivity is Sensitivity.PERSONAL and not unmask:
        return mask(value, style_of(spec))
    return value


def shown_fields(
    dataset: str, fields: Mapping[str, Any], *, unmask: bool = False
) -> dict[str, Any]:
    """A record's fields without internal ones, each value as :func:`shown_value` says."""
    return {
        k: shown_value(dataset, k, v, unmask=unmask) for k, v in fields.items() if not internal(k)
    }


def shown_golden(
    kind: str, golden: Mapping[str, Mapping[str, Any]], *, unmask: bool = False
) -> dict[str, dict[str, Any]]:
    """The golden record without internal fields; a blind index stands for its identifier."""
    out: dict[str, dict[str, Any]] = {}
    for name, chosen in golden.items():
        if name.endswith(BLIND_INDEX_SUFFIX):
            shown = dict(chosen)
            if shown.get("value") is not None:
                shown["value"] = ENCRYPTED
            out.setdefault(name.removesuffix(BLIND_INDEX_SUFFIX), shown)
        elif not internal(name):
            shown = dict(chosen)
            shown["value"] = shown_value(kind, name, chosen.get("value"), unmask=unmask)
            out[name] = shown
    return dict(sorted(out.items()))


def _joined(record: Mapping[str, Any], links: Sequence[Mapping[str, Any]]) -> str:
    """How a record joined its entity, from the entity view's ``joined``
    (:mod:`exchange.registry.joins`: the weakest link of its strongest path from the
    records holding the entity's identifier)."""
    joined = record.get("joined")
    if not joined:
        return "alone" if not links else "-"
    how = joined.get("how")
    if how == "reviewer":
        return f"reviewer: {joined.get('decided_by') or '?'} at {joined.get('decided_at') or '?'}"
    if how == "probabilistic":
        weight = joined.get("weight")
        return (
            f"probabilistic: weight {float(weight or 0):+.1f}, "
            f"probability {float(joined.get('probability') or 0):.3f}"
        )
    return str(how)


def _evidence(explanation: Mapping[str, Any]) -> dict[str, Any]:
    """A link's explanation for a reviewer: the decision, its rule, the total weight and
    each compared field's level and weight (the model's own numbers, m, u and the
    thresholds, are the model's, not repeated on every link)."""
    return {
        "decision": explanation.get("decision"),
        "deterministic": bool(explanation.get("deterministic")),
        "reason": explanation.get("reason"),
        "total_weight": explanation.get("total_weight"),
        "fields": [
            {"field": f.get("field"), "level": f.get("level"), "weight": f.get("weight")}
            for f in explanation.get("fields", [])
            if f.get("level") != "null"
        ],
    }


def operator_view(view: Mapping[str, Any], *, unmask: bool = False) -> dict[str, Any]:
    """What ``exchange registry entity show`` prints, from an :func:`entity_view`."""
    kind = str(view["kind"])
    links = [
        {
            "a": ln["a"],
            "b": ln["b"],
            "status": ln["status"],
            "weight": ln["weight"],
            "decided_by": ln.get("decided_by"),
            "explanation": _evidence(ln.get("explanation") or {}),
        }
        for ln in view.get("links", [])
    ]
    records = [
        {
            "ref": r["ref"],
            "dataset": r["dataset"],
            "department": r["department"],
            "source_id": r["source_id"],
            "version": r.get("version"),
            "updated_at": r.get("updated_at"),
            "joined": _joined(r, links),
            "fields": shown_fields(r["dataset"], r.get("fields") or {}, unmask=unmask),
        }
        for r in view.get("records", [])
    ]
    return {
        "entity": view["entity"],
        "kind": kind,
        "created_at": view.get("created_at"),
        "updated_at": view.get("updated_at"),
        "flags": list(view.get("flags", [])),
        "golden_record": shown_golden(kind, view.get("golden_record") or {}, unmask=unmask),
        "records": records,
        "links": links,
        "masked": not unmask,
    }
