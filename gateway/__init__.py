"""The FastAPI gateway: caseworkers' person lookups, answered only after they are audited.

Rule of this package: every access decision is audited before it is answered,
and a field leaves only if a rule allows it.
"""

from gateway.app import create_app

__all__ = ["create_app"]
