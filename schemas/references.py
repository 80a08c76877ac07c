"""Schema references: Avro named types a schema takes from other subjects' versions.

A schema registered with references (Confluent's ``references``: ``name``, ``subject``,
``version``) names types it does not define, e.g. ``"type": "gov.Address"``, defined
by the schema at ``subject``/``version``. Confluent's registry keeps the schema text
as given, and resolves the names when it parses the schema, for validation and for
compatibility. We do the same with :func:`expand`: it puts each referenced
definition in place of the first use of its name (in document order, where the Avro
specification says a name must be defined before later uses), so the result is one
self-contained schema that fastavro and Apache Avro parse without a names registry.
Later uses stay names. Neither the stored text nor the wire bytes change: expansion
is only how the registry reads a schema.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from exchange.core.errors import InvalidSchemaError

PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
_NAMED = frozenset({"record", "error", "enum", "fixed"})


@dataclass(frozen=True)
class Reference:
    """One reference as Confluent's API writes it."""

    name: str
    subject: str
    version: int

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "subject": self.subject, "version": self.version}


def parse_references(raw: Any) -> list[Reference]:
    """References from a request body (a list of objects); InvalidSchemaError if malformed."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise InvalidSchemaError("Invalid schema: 'references' must be a list")
    found: list[Reference] = []
    for item in raw:
        if not isinstance(item, Mapping):
            raise InvalidSchemaError("Invalid schema: each reference must be an object")
        name, subject, version = item.get("name"), item.get("subject"), item.get("version")
        if not isinstance(name, str) or not name or not isinstance(subject, str) or not subject:
            raise InvalidSchemaError(
                "Invalid schema: a reference needs a 'name' and a 'subject' (strings)"
            )
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise InvalidSchemaError(
                f"Invalid schema: reference {name!r} needs a 'version' (an integer >= 1)"
            )
        found.append(Reference(name, subject, version))
    if len({r.name for r in found}) != len(found):
        raise InvalidSchemaError("Invalid schema: two references have the same name")
    return found


def fullname(name: str, namespace: str | None) -> str:
    """A name as the Avro specification resolves it in ``namespace``."""
    if "." in name or not namespace:
        return name
    return f"{namespace}.{name}"


def defined_name(schema: Any) -> str | None:
    """The full name a schema's top level defines, if it is a named type."""
    if isinstance(schema, Mapping) and schema.get("type") in _NAMED:
        name = schema.get("name")
        if isinstance(name, str):
            namespace = schema.get("namespace")
            return fullname(name, namespace if isinstance(namespace, str) else None)
    return None


def expand(schema: Any, definitions: Mapping[str, Any]) -> Any:
    """``schema`` (parsed JSON) with the first use of each name in ``definitions``
    replaced by its definition (parsed JSON); other names are left as they are.

    ``definitions`` maps a full name to the JSON of the schema that defines it; the
    definitions may use each other's names (references of references). A name defined
    inside the schema itself is never replaced.
    """
    expander = _Expander(definitions)
    return expander.walk(copy.deepcopy(schema), None)


def expand_text(text: str, definitions: Mapping[str, Any]) -> str:
    """:func:`expand` on JSON text; the text unchanged when there is nothing to expand."""
    if not definitions:
        return text
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise InvalidSchemaError(f"Invalid schema: {exc}") from exc
    return json.dumps(expand(raw, definitions), ensure_ascii=False)


class _Expander:
    def __init__(self, definitions: Mapping[str, Any]) -> None:
        self._definitions = definitions
        self._defined: set[str] = set()

    def walk(self, node: Any, namespace: str | None) -> Any:
        if isinstance(node, str):
            return self._name(node, namespace)
        if isinstance(node, list):
            return [self.walk(branch, namespace) for branch in node]
        if not isinstance(node, dict):
            return node
        kind = node.get("type")
        if kind in _NAMED:
            name = defined_name(node)
            if name is not None:
                self._defined.add(name)
                namespace = name.rpartition(".")[0] or None
            if kind in ("record", "error") and isinstance(node.get("fields"), list):
                for field in node["fields"]:
                    if isinstance(field, dict) and "type" in field:
                        field["type"] = self.walk(field["type"], namespace)
            return node
        if kind == "array" and "items" in node:
            node["items"] = self.walk(node["items"], namespace)
        elif kind == "map" and "values" in node:
            node["values"] = self.walk(node["values"], namespace)
        elif isinstance(kind, (str, list, dict)):
            node["type"] = self.walk(kind, namespace)
        return node

    def _name(self, name: str, namespace: str | None) -> Any:
        if name in PRIMITIVES:
            return name
        full = fullname(name, namespace)
        for candidate in (full, name):
            if candidate in self._defined:
                return name
            definition = self._definitions.get(candidate)
            if definition is not None:
                inlined = copy.deepcopy(definition)
                if isinstance(inlined, dict) and defined_name(inlined) is not None:
                    # Keep the definition's own full name wherever it lands: a name
                    # without a namespace must not take the enclosing one.
                    own = defined_name(inlined) or candidate
                    inlined["name"] = own
                    inlined.pop("namespace", None)
                    if "." not in own:
                        inlined["namespace"] = ""
                self._defined.add(candidate)
                return self.walk(inlined, None)
        return name
