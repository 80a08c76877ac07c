"""The common data standards, identifier validators and the schema store.

Rule of this package: it depends on nothing of the exchange but the error
hierarchy and the database base class, so every side can use it.
"""

from schemas.compatibility import CompatibilityLevel, Incompatibility, check_level, check_pair
from schemas.standards import FieldSpec, Sensitivity, Standard, available, load_standard
from schemas.store import RegisteredVersion, SchemaStore

__all__ = [
    "CompatibilityLevel",
    "FieldSpec",
    "Incompatibility",
    "RegisteredVersion",
    "SchemaStore",
    "Sensitivity",
    "Standard",
    "available",
    "check_level",
    "check_pair",
    "load_standard",
]
