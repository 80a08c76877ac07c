"""The FastAPI gateway: caseworkers' queries under the access catalogue, audited first.

Rules of this package: every access decision is audited before it is answered;
a field, a dataset or a row leaves only if a grant allows it for the stated
purpose (``exchange.access.policy``); only permitted fields are decrypted, and a
decrypted value is never logged.
"""

from gateway.app import create_app

__all__ = ["create_app"]
