"""Single sign-on for the web console: OpenID Connect's authorization-code flow with PKCE.

The provider is found from its discovery document (``console.oidc_discovery_url``): its
issuer, authorization and token endpoints and key set. The console sends the browser to
the authorization endpoint with a one-time ``state``, a ``nonce`` and a PKCE challenge
(S256); the provider sends it back with a code, which the gateway exchanges, server to
server, for an ID token. The token is verified like a bearer token
(:class:`exchange.identity.oidc.OidcVerifier`: signature under the provider's keys,
issuer, audience = the console's client id, expiry) and must carry the nonce. Its
subject must be a registered, active user (:func:`exchange.identity.oidc.identity_of`):
the provider says who someone is, the exchange's tables what they may do.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx

from exchange.core.errors import AuthenticationError
from exchange.identity.oidc import OidcVerifier
from exchange.security.crypto import equal

log = logging.getLogger(__name__)

TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Provider:
    """What the console needs of a provider, read from its discovery document."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str


def discover(url: str) -> Provider:
    """The provider the discovery document at ``url`` describes; AuthenticationError when it
    cannot be read (the sign-in page then says single sign-on is unavailable)."""
    try:
        answer = httpx.get(url, timeout=TIMEOUT_S)
        answer.raise_for_status()
        document = answer.json()
        return Provider(
            issuer=str(document["issuer"]),
            authorization_endpoint=str(document["authorization_endpoint"]),
            token_endpoint=str(document["token_endpoint"]),
            jwks_uri=str(document["jwks_uri"]),
        )
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        log.warning("OIDC discovery at %s failed: %s", url, exc)
        raise AuthenticationError(
            "single sign-on is unavailable: the identity provider cannot be reached"
        ) from exc


def challenge(verifier: str) -> str:
    """PKCE's S256 code challenge of ``verifier``."""
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorization_url(
    provider: Provider,
    *,
    client_id: str,
    redirect_uri: str,
    state: str,
    nonce: str,
    code_verifier: str,
) -> str:
    """Where to send the browser to sign in at the provider."""
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "scope": "openid",
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge(code_verifier),
            "code_challenge_method": "S256",
        }
    )
    separator = "&" if "?" in provider.authorization_endpoint else "?"
    return f"{provider.authorization_endpoint}{separator}{query}"


class SignOn:
    """One provider's sign-on for the console: the code exchange and the ID token's check."""

    def __init__(
        self, provider: Provider, *, client_id: str, client_secret: str | None = None
    ) -> None:
        self.provider = provider
        self.client_id = client_id
        self._secret = client_secret
        self._verifier = OidcVerifier(provider.jwks_uri, issuer=provider.issuer, audience=client_id)

    def id_token(self, code: str, *, redirect_uri: str, code_verifier: str) -> str:
        """Exchange the authorization ``code`` for the ID token (server to server)."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
            "client_id": self.client_id,
        }
        auth = (self.client_id, self._secret) if self._secret else None
        try:
            answer = httpx.post(
                self.provider.token_endpoint, data=form, auth=auth, timeout=TIMEOUT_S
            )
        except httpx.HTTPError as exc:
            log.warning("OIDC token endpoint unreachable: %s", exc)
            raise AuthenticationError(
                "single sign-on failed: the identity provider cannot be reached"
            ) from exc
        if answer.status_code != 200:
            # The provider's error code only (its description may echo what was sent).
            try:
                error = str(answer.json().get("error", answer.status_code))
            except ValueError:
                error = str(answer.status_code)
            log.warning("OIDC token endpoint refused the code: %s", error)
            raise AuthenticationError(f"single sign-on failed: the provider answered {error}")
        token = answer.json().get("id_token")
        if not isinstance(token, str):
            raise AuthenticationError("single sign-on failed: the provider sent no ID token")
        return token

    def subject(self, id_token: str, *, nonce: str) -> str:
        """The verified subject of ``id_token``, which must carry ``nonce``."""
        claims = self._verifier.claims(id_token)
        sent = claims.get("nonce")
        if not isinstance(sent, str) or not equal(sent.encode(), nonce.encode()):
            raise AuthenticationError("single sign-on failed: the ID token is not for this sign-in")
        return str(claims["sub"])


__all__ = ["Provider", "SignOn", "authorization_url", "challenge", "discover"]
