"""Keys for tests: a fixed master key (test-only) and the linkage key that goes with it."""

from __future__ import annotations

import base64

from sqlalchemy.orm import Session, sessionmaker

from connectors.pipeline import Keys
from exchange.security.keystore import LocalKeyStore

MASTER_KEY = bytes(range(32))
MASTER_KEY_B64 = base64.b64encode(MASTER_KEY).decode()
LINKAGE_KEY = "integration-linkage-key"


def keys_for(sessions: sessionmaker[Session]) -> Keys:
    return Keys(LocalKeyStore(sessions, MASTER_KEY), LINKAGE_KEY.encode())
