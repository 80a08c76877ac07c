"""Bearer tokens from an OpenID Connect provider: verified JWTs mapped to registered users.

A token is accepted when its signature verifies under a key of the provider's
JWKS (fetched and cached by PyJWT's ``PyJWKClient``), it names the configured
issuer and audience, and it has not expired. Only asymmetric algorithms are
accepted, so a token cannot be "signed" with a public key used as an HMAC
secret. Its ``sub`` must be the ``oidc_subject`` of an active user, whose
department and role the caller then has: the provider says who someone is, the
exchange's own tables say what they may do.
"""

from __future__ import annotations

import logging
from datetime import datetime

import jwt
from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.core.errors import AuthenticationError
from exchange.core.models import User
from exchange.identity.apikeys import Identity

log = logging.getLogger(__name__)

ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"]


class OidcVerifier:
    """Verifies bearer tokens of one provider (issuer, audience, key set)."""

    def __init__(
        self, jwks_url: str, *, issuer: str, audience: str, leeway_s: float = 30.0
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.leeway_s = leeway_s
        self._jwks = jwt.PyJWKClient(jwks_url, cache_jwk_set=True, lifespan=300, timeout=10)

    def claims(self, token: str, *, now: datetime | None = None) -> dict[str, object]:
        """The verified claims of ``token``; AuthenticationError says what is wrong.

        ``now`` is accepted for symmetry with API keys but PyJWT checks expiry
        against the clock itself, with ``leeway_s`` of tolerance.
        """
        del now
        try:
            signing_key = self._jwks.get_signing_key_from_jwt(token)
        except jwt.PyJWKClientConnectionError as exc:
            log.warning("OIDC key set unavailable: %s", exc)
            raise AuthenticationError(
                "bearer token could not be checked: the identity provider's keys are unavailable"
            ) from exc
        except jwt.PyJWKClientError as exc:
            raise AuthenticationError(
                "bearer token is signed by a key the identity provider does not publish"
            ) from exc
        except jwt.InvalidTokenError as exc:
            raise AuthenticationError("malformed bearer token: not a JWT") from exc
        try:
            claims: dict[str, object] = jwt.decode(
                token,
                signing_key.key,
                algorithms=ALGORITHMS,
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_s,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise AuthenticationError("bearer token has expired") from exc
        except jwt.InvalidAudienceError as exc:
            raise AuthenticationError("bearer token is for another audience") from exc
        except jwt.InvalidIssuerError as exc:
            raise AuthenticationError("bearer token is from another issuer") from exc
        except jwt.InvalidSignatureError as exc:
            raise AuthenticationError("bearer token signature is invalid") from exc
        except jwt.InvalidTokenError as exc:
            raise AuthenticationError(f"bearer token is invalid: {exc}") from exc
        return claims

    def authenticate(self, session: Session, token: str) -> Identity:
        """The identity of the registered, active user the token's subject names."""
        return identity_of(session, str(self.claims(token)["sub"]))


def identity_of(session: Session, subject: str) -> Identity:
    """The identity of the registered, active user whose OIDC subject is ``subject``."""
    user = session.scalar(select(User).where(User.oidc_subject == subject))
    if user is None:
        raise AuthenticationError("the identity provider's subject is not a registered user")
    if not user.active:
        raise AuthenticationError(f"user {user.username!r} is disabled")
    return Identity(
        actor=user.username,
        department=user.department,
        role=user.role,
        key_id=f"oidc:{subject}"[:64],
        user_id=user.id,
        method="oidc",
    )


__all__ = ["ALGORITHMS", "OidcVerifier", "identity_of"]
