"""The shipped linkage models (generated: do not edit by hand).

Made by ``python -m bench.linkage_quality --seed 1 --emit-defaults
exchange/linkage/defaults.py``: :func:`exchange.linkage.training.fit_model`
on a synthetic population (:mod:`bench.population`, default corruption,
20,000 persons and 5,000 organisations, seed 1, which is not the benchmark's
seed): ``u`` from a million random pairs, ``m`` from the candidate pairs that
share an identifier, the identifier's ``m`` from candidate pairs agreeing
exactly on name and date, each with 50 pseudo-pairs of the previous values.
The thresholds are set by hand from the benchmark's threshold sweep (see
docs/linkage.md and the "Linkage quality" section of docs/benchmarks.md) and
carried over when the module is regenerated.
"""

from __future__ import annotations

from typing import Any, Final

DEFAULT_MODELS: Final[dict[str, dict[str, Any]]] = {
    "person": {
        "format": 1,
        "kind": "person",
        "link": 22.0,
        "review": 14.0,
        "prior": 0.133464,
        "source": "fit_model: 52,044 records, 39,538 same-identifier pairs",
        "fields": [
            {
                "name": "identifier",
                "m": {"agree": 0.980298, "disagree": 0.019702},
                "u": {"agree": 2.8e-05, "disagree": 0.999972},
            },
            {
                "name": "family_name",
                "m": {
                    "exact": 0.977768,
                    "homophone": 0.00908,
                    "similar": 0.002479,
                    "different": 0.010673,
                },
                "u": {
                    "exact": 0.024235,
                    "homophone": 0.003402,
                    "similar": 0.049468,
                    "different": 0.922895,
                },
            },
            {
                "name": "given_name",
                "m": {
                    "exact": 0.919445,
                    "homophone": 0.028378,
                    "one_char": 0.039355,
                    "similar": 0.002934,
                    "different": 0.009889,
                },
                "u": {
                    "exact": 0.003158,
                    "homophone": 0.000529,
                    "one_char": 0.044702,
                    "similar": 0.006008,
                    "different": 0.945603,
                },
            },
            {
                "name": "birth_date",
                "m": {
                    "exact": 0.957787,
                    "swapped": 0.012671,
                    "close": 0.029212,
                    "different": 0.000329,
                },
                "u": {
                    "exact": 0.000134,
                    "swapped": 1e-05,
                    "close": 0.001958,
                    "different": 0.997898,
                },
            },
            {
                "name": "sex",
                "m": {"agree": 0.989022, "disagree": 0.010978},
                "u": {"agree": 0.500596, "disagree": 0.499404},
            },
            {
                "name": "phone",
                "m": {"agree": 0.720255, "typo": 1e-06, "disagree": 0.279744},
                "u": {"agree": 2.5e-05, "typo": 1e-06, "disagree": 0.999974},
            },
            {
                "name": "division_code",
                "m": {"same": 0.727654, "same_city": 0.101497, "different": 0.170848},
                "u": {"same": 0.011768, "same_city": 0.036189, "different": 0.952043},
            },
        ],
    },
    "organisation": {
        "format": 1,
        "kind": "organisation",
        "link": 12.0,
        "review": 8.0,
        "prior": 0.840289,
        "source": "fit_model: 13,642 records, 12,030 same-identifier pairs",
        "fields": [
            {
                "name": "identifier",
                "m": {"agree": 0.984293, "disagree": 0.015707},
                "u": {"agree": 0.000135, "disagree": 0.999865},
            },
            {
                "name": "legal_name",
                "m": {
                    "exact": 0.765669,
                    "same_core": 0.214131,
                    "similar": 0.011139,
                    "different": 0.009061,
                },
                "u": {
                    "exact": 0.000105,
                    "same_core": 4e-05,
                    "similar": 0.001749,
                    "different": 0.998106,
                },
            },
            {
                "name": "registration_date",
                "m": {
                    "exact": 0.939151,
                    "swapped": 1e-06,
                    "close": 0.060266,
                    "different": 0.000582,
                },
                "u": {
                    "exact": 0.000208,
                    "swapped": 1.8e-05,
                    "close": 0.003641,
                    "different": 0.996133,
                },
            },
            {
                "name": "division_code",
                "m": {"same": 0.813134, "same_city": 0.072236, "different": 0.11463},
                "u": {"same": 0.012017, "same_city": 0.035986, "different": 0.951997},
            },
            {
                "name": "legal_representative_name",
                "m": {
                    "exact": 0.851869,
                    "homophone": 1e-06,
                    "similar": 0.000748,
                    "different": 0.147381,
                },
                "u": {
                    "exact": 0.000177,
                    "homophone": 2.3e-05,
                    "similar": 0.007532,
                    "different": 0.992268,
                },
            },
        ],
    },
}
