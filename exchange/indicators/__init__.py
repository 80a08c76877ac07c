"""Sharing indicators: how well data is shared (DESIGN.md, "Sharing indicators").

Computed from the records the exchange keeps (connector runs, the registry builder's
rejections, record versions, entities, the audit log, sharing requests), never from
counters kept on the side; ``docs/indicators.md`` defines each figure. Percentiles are
nearest-rank, computed in Python, so SQLite and PostgreSQL give the same figures.
"""

from exchange.indicators.compute import compute
from exchange.indicators.figures import Indicators
from exchange.indicators.period import Period, Scope, month, period_of

__all__ = ["Indicators", "Period", "Scope", "compute", "month", "period_of"]
