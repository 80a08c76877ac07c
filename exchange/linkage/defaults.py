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
        "prior": 0.363039,
        "source": "fit_model: 52,025 records, 39,525 same-identifier pairs",
        "sibling_guard": True,
        "fields": [
            {
                "name": "identifier",
                "m": {"agree": 0.98019, "disagree": 0.01981},
                "u": {"agree": 4.4e-05, "disagree": 0.999956},
            },
            {
                "name": "family_name",
                "m": {
                    "exact": 0.980898,
                    "homophone": 0.007337,
                    "similar": 0.002252,
                    "different": 0.009513,
                },
                "u": {
                    "exact": 0.024066,
                    "homophone": 0.003224,
                    "similar": 0.049723,
                    "different": 0.922987,
                },
            },
            {
                "name": "given_name",
                "m": {
                    "exact": 0.916989,
                    "homophone": 0.027577,
                    "one_char": 0.042125,
                    "similar": 0.003011,
                    "different": 0.010297,
                },
                "u": {
                    "exact": 0.003083,
                    "homophone": 0.000534,
                    "one_char": 0.043952,
                    "similar": 0.006207,
                    "different": 0.946224,
                },
            },
            {
                "name": "birth_date",
                "m": {
                    "exact": 0.958355,
                    "swapped": 0.013004,
                    "close": 0.02783,
                    "different": 0.00081,
                },
                "u": {"exact": 9e-05, "swapped": 1.2e-05, "close": 0.001952, "different": 0.997946},
            },
            {
                "name": "sex",
                "m": {"agree": 0.989727, "disagree": 0.010273},
                "u": {"agree": 0.5003, "disagree": 0.4997},
            },
            {
                "name": "phone",
                "m": {"agree": 0.716733, "typo": 1e-06, "disagree": 0.283266},
                "u": {"agree": 3.6e-05, "typo": 1e-06, "disagree": 0.999963},
            },
            {
                "name": "division_code",
                "m": {"same": 0.724326, "same_city": 0.104541, "different": 0.171132},
                "u": {"same": 0.011977, "same_city": 0.036944, "different": 0.951079},
            },
        ],
    },
    "organisation": {
        "format": 1,
        "kind": "organisation",
        "link": 12.0,
        "review": 8.0,
        "prior": 0.841067,
        "source": "fit_model: 13,642 records, 12,030 same-identifier pairs",
        "sibling_guard": False,
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
