"""Record linkage: records from several departments linked into shared entities.

Package notes:

* Pure Python, no database and no Kafka: the registry builder feeds records in
  and stores what comes out (entity ids, links with their explanations, the
  review queue, golden records).
* Identifiers are only ever compared for equality, through their blind
  indexes; linkage never needs a clear identity number.
* Explanations hold level names and weights, never the compared values.
* Every comparator is symmetric and every weight finite; the entity partition
  does not depend on arrival order; an entity whose members did not change
  keeps its id. Tests check each of these; keep them true.
"""

from exchange.registry.linkage.blocking import block_keys
from exchange.registry.linkage.clusters import assign, components
from exchange.registry.linkage.comparators import Field, compare, fields_of
from exchange.registry.linkage.explanation import Evidence, Explanation
from exchange.registry.linkage.features import (
    ORGANISATION,
    PERSON,
    LinkRecord,
    organisation_record,
    person_record,
)
from exchange.registry.linkage.golden import (
    AUTHORITATIVE,
    DEFAULT_AUTHORITIES,
    DEFAULT_RULES,
    IDENTIFIER_CONFLICT,
    MOST_COMMON,
    MOST_RECENT,
    MOST_TRUSTED,
    authorities,
    conflict_flags,
    conflicts,
    golden_record,
    trust_ranks,
)
from exchange.registry.linkage.incremental import IncrementalLinker
from exchange.registry.linkage.linker import Decision, Verdict, decide, explain, screen, verdict
from exchange.registry.linkage.model import (
    LINK,
    NON_LINK,
    REVIEW,
    FieldModel,
    Model,
    default_model,
    estimate,
    m_from_matches,
    u_from_random,
)
from exchange.registry.linkage.training import (
    candidate_pairs,
    fit_em,
    fit_model,
    fit_unsupervised,
    posterior_threshold,
)

__all__ = [
    "AUTHORITATIVE",
    "DEFAULT_AUTHORITIES",
    "DEFAULT_RULES",
    "IDENTIFIER_CONFLICT",
    "LINK",
    "MOST_COMMON",
    "MOST_RECENT",
    "MOST_TRUSTED",
    "NON_LINK",
    "ORGANISATION",
    "PERSON",
    "REVIEW",
    "Decision",
    "Evidence",
    "Explanation",
    "Field",
    "FieldModel",
    "IncrementalLinker",
    "LinkRecord",
    "Model",
    "Verdict",
    "assign",
    "authorities",
    "block_keys",
    "candidate_pairs",
    "compare",
    "components",
    "conflict_flags",
    "conflicts",
    "decide",
    "default_model",
    "estimate",
    "explain",
    "fields_of",
    "fit_em",
    "fit_model",
    "fit_unsupervised",
    "golden_record",
    "m_from_matches",
    "organisation_record",
    "person_record",
    "posterior_threshold",
    "screen",
    "trust_ranks",
    "u_from_random",
    "verdict",
]
