"""The departments' side: connector definitions, sources, mapping, validation, publishing.

Rules of this package: a record leaves a connector only if it meets its standard;
every record read is published or dead-lettered with its reasons, never dropped.
"""

from connectors.definition import ConnectorDefinition, load_definition
from connectors.publisher import RunReport, run_connector

__all__ = ["ConnectorDefinition", "RunReport", "load_definition", "run_connector"]
