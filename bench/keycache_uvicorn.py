"""uvicorn with the API-key hash memoised: a preview of issue 6's verified-key cache.

``python -m bench.keycache_uvicorn <uvicorn arguments>`` runs uvicorn's own
command line after wrapping :func:`exchange.apikeys._hash` (scrypt, about 50 ms
a call) in an LRU cache, so a key's hash is derived once per process. Only
``bench.gateway_lookup --simulate-key-cache`` uses it, to show what the lookup
path costs once scrypt is paid once per key; it is not the gateway's cache (no
expiry on revocation, a benchmark only).
"""

from __future__ import annotations

import functools

import uvicorn

from exchange import apikeys


def main() -> None:
    apikeys._hash = functools.lru_cache(maxsize=1024)(apikeys._hash)
    uvicorn.main()


if __name__ == "__main__":
    main()
