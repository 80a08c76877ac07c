"""The common data standards, identifier validators and the schema store.

Rule of this package: it depends on nothing of the exchange but the error
hierarchy and the database base class, so every side can use it.
"""

from schemas.standards import FieldSpec, Sensitivity, Standard, available, load_standard
from schemas.store import SchemaStore

__all__ = [
    "FieldSpec",
    "SchemaStore",
    "Sensitivity",
    "Standard",
    "available",
    "load_standard",
]
