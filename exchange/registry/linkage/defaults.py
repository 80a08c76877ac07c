"""The shipped linkage models (generated: do not edit by hand).

Made by ``python -m bench.linkage_quality --seed 1 --emit-defaults
exchange/registry/linkage/defaults.py``: :func:`exchange.registry.linkage.training.fit_model`
on a synthetic population (:mod:`bench.population`, default corruption,
20,000 persons and 5,000 organisations, seed 1, which is not the benchmark's
seed): ``u`` from a million random pairs, ``m`` from the candidate pairs that
share an identifier, the identifier's ``m`` from candidate pairs agreeing
exactly on name and date, each with 50 pseudo-pairs of the previous values.
The thresholds are set by hand and carried over when the module is
regenerated. They were chosen on that same seed-1 population with
``bench.linkage_quality.sweep``: the link threshold with the best F1 among
those with precision >= 0.999, raised a point or two as a margin (persons
18, organisations 12); the review threshold so that about half or more of
the review queue is truly one entity (persons 12, organisations 6). See
docs/linkage.md.
"""

from __future__ import annotations

from typing import Any, Final

DEFAULT_MODELS: Final[dict[str, dict[str, Any]]] = {
    "person": {
        "format": 1,
        "kind": "person",
        "link": 18.0,
        "review": 12.0,
        "prior": 0.892094,
        "source": "fit_model: 52,019 records, 39,525 same-identifier pairs",
        "sibling_guard": True,
        "fields": [
            {
                "name": "identifier",
                "m": {"agree": 0.980633, "disagree": 0.019367},
                "u": {"agree": 3.1e-05, "disagree": 0.999969},
            },
            {
                "name": "family_name",
                "m": {
                    "exact": 0.977937,
                    "homophone": 0.00926,
                    "typo": 1e-06,
                    "similar": 0.003137,
                    "different": 0.009665,
                },
                "u": {
                    "exact": 0.023958,
                    "homophone": 0.00329,
                    "typo": 1e-06,
                    "similar": 0.049227,
                    "different": 0.923524,
                },
            },
            {
                "name": "given_name",
                "m": {
                    "exact": 0.916634,
                    "homophone": 0.029045,
                    "one_char": 0.041467,
                    "typo": 1e-06,
                    "similar": 0.00377,
                    "different": 0.009083,
                },
                "u": {
                    "exact": 0.002937,
                    "homophone": 0.000561,
                    "one_char": 0.043785,
                    "typo": 1e-06,
                    "similar": 0.006464,
                    "different": 0.946252,
                },
            },
            {
                "name": "birth_date",
                "m": {
                    "exact": 0.956964,
                    "swapped": 0.012321,
                    "typo": 0.030082,
                    "close": 0.000202,
                    "different": 0.00043,
                },
                "u": {
                    "exact": 6.8e-05,
                    "swapped": 1.4e-05,
                    "typo": 0.001229,
                    "close": 0.015811,
                    "different": 0.982878,
                },
            },
            {
                "name": "sex",
                "m": {"agree": 0.989109, "disagree": 0.010891},
                "u": {"agree": 0.500297, "disagree": 0.499703},
            },
            {
                "name": "phone",
                "m": {"agree": 0.698833, "typo": 0.013441, "disagree": 0.287726},
                "u": {"agree": 1.7e-05, "typo": 1e-06, "disagree": 0.999982},
            },
            {
                "name": "division_code",
                "m": {"same": 0.720835, "same_city": 0.107628, "different": 0.171537},
                "u": {"same": 0.011968, "same_city": 0.037064, "different": 0.950968},
            },
            {
                "name": "address",
                "m": {"exact": 0.25, "similar": 0.25, "partial": 0.25, "different": 0.25},
                "u": {"exact": 0.25, "similar": 0.25, "partial": 0.25, "different": 0.25},
            },
            {
                "name": "postcode",
                "m": {"agree": 0.333333, "typo": 0.333333, "disagree": 0.333333},
                "u": {"agree": 0.333333, "typo": 0.333333, "disagree": 0.333333},
            },
        ],
    },
    "organisation": {
        "format": 1,
        "kind": "organisation",
        "link": 12.0,
        "review": 6.0,
        "prior": 0.838872,
        "source": "fit_model: 13,624 records, 11,935 same-identifier pairs",
        "sibling_guard": False,
        "fields": [
            {
                "name": "identifier",
                "m": {"agree": 0.977265, "disagree": 0.022735},
                "u": {"agree": 0.00014, "disagree": 0.99986},
            },
            {
                "name": "legal_name",
                "m": {
                    "exact": 0.76129,
                    "same_core": 0.217009,
                    "similar": 0.014411,
                    "different": 0.007289,
                },
                "u": {
                    "exact": 0.000107,
                    "same_core": 5.8e-05,
                    "similar": 0.001736,
                    "different": 0.998099,
                },
            },
            {
                "name": "registration_date",
                "m": {
                    "exact": 0.950649,
                    "swapped": 0.008546,
                    "typo": 0.040133,
                    "close": 0.000587,
                    "different": 8.4e-05,
                },
                "u": {
                    "exact": 0.000231,
                    "swapped": 3.7e-05,
                    "typo": 0.002245,
                    "close": 0.02348,
                    "different": 0.974007,
                },
            },
            {
                "name": "division_code",
                "m": {"same": 0.804776, "same_city": 0.082949, "different": 0.112275},
                "u": {"same": 0.011867, "same_city": 0.03562, "different": 0.952513},
            },
            {
                "name": "legal_representative_name",
                "m": {
                    "exact": 0.795978,
                    "homophone": 0.017847,
                    "similar": 0.032509,
                    "different": 0.153666,
                },
                "u": {
                    "exact": 0.000182,
                    "homophone": 2.4e-05,
                    "similar": 0.007008,
                    "different": 0.992786,
                },
            },
        ],
    },
}
