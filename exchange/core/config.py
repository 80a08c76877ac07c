"""Settings: one typed class, read from the environment and an optional TOML file.

Precedence, highest first: keyword arguments, environment variables
(``EXCHANGE_`` prefix, ``__`` for nesting, e.g. ``EXCHANGE_KAFKA__PORT=19092``),
the TOML file named by ``EXCHANGE_CONFIG`` (default ``exchange.toml`` in the
working directory, if present), then the defaults documented on each field and
in ``docs/configuration.md``. Unknown keys are refused, so a misspelt setting
fails loudly instead of being ignored.
"""

from __future__ import annotations

import ipaddress
import os
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from exchange.core.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEV_DEMO_KEY = "dx_demo_caseworker_not_secret"
DEV_LINKAGE_KEY = "development-linkage-key-not-secret"


class Environment(StrEnum):
    """Where the exchange runs; development allows built-in demo credentials."""

    DEVELOPMENT = "development"
    PRODUCTION = "production"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KafkaSettings(_Section):
    """Kafka: either an external cluster (``bootstrap_servers``) or the local broker."""

    bootstrap_servers: str | None = Field(
        default=None,
        description="Comma-separated host:port list of an external cluster. "
        "Default: none, use the local broker started by `exchange up`.",
    )
    host: str = Field(default="127.0.0.1", description="Loopback address of the local broker.")
    port: int = Field(default=19092, description="Client port of the local broker.")
    controller_port: int = Field(default=19093, description="KRaft controller port.")
    heap: str = Field(default="512m", description="JVM heap (-Xmx) of each local broker.")
    jars_dir: Path | None = Field(
        default=None,
        description="Directory of the broker jars. Default: .cache/kafka/<version>/libs "
        "under the project, fetched by deploy/kafka/fetch.sh.",
    )
    start_timeout_s: float = Field(default=120.0, description="How long to wait for a broker.")
    partitions: int = Field(default=3, description="Partitions of each topic the exchange creates.")

    @property
    def bootstrap(self) -> str:
        return self.bootstrap_servers or f"{self.host}:{self.port}"


class GatewaySettings(_Section):
    host: str = Field(default="127.0.0.1", description="Address the gateway listens on.")
    port: int = Field(default=18080, description="Port the gateway listens on.")
    rate_limit_per_minute: int = Field(
        default=600,
        ge=0,
        description="Requests a minute each identity (user, or key without a user) may make, "
        "on average, to one gateway process; over it the gateway answers 429 with "
        "Retry-After. 0 turns the limit off. Default: 600.",
    )
    rate_limit_burst: int = Field(
        default=100,
        ge=1,
        description="How many requests an identity may make at once before the per-minute "
        "rate applies (the token bucket's size). Default: 100.",
    )
    registry_rate_limit_per_minute: int = Field(
        default=6000,
        ge=0,
        description="Requests a minute each identity may make to the schema registry API "
        "(/registry), counted apart from the rate limit of the other routes: serializers and "
        "deserializers of services call it at start and on cache misses. Over it the gateway "
        "answers 429 with Confluent's error_code 42901 and Retry-After. 0 turns it off. "
        "Default: 6000.",
    )
    registry_rate_limit_burst: int = Field(
        default=1000,
        ge=1,
        description="How many schema registry requests an identity may make at once before "
        "the per-minute rate applies. Default: 1000.",
    )
    max_body_bytes: int = Field(
        default=8 * 1024 * 1024,
        ge=1024,
        description="The largest request body the gateway reads, in bytes; a larger one is "
        "refused with 413 as it is read (a declared Content-Length at once, a chunked body "
        "once it passes the limit), audited. Default: 8388608 (8 MiB: a push of 1,000 "
        "records fits).",
    )
    household_max_members: int = Field(
        default=50,
        ge=1,
        le=10_000,
        description="The most current members a household may have for the household view "
        "(POST /v1/households/lookup) to show it; a larger one (a collective household of a "
        "school or a firm) is refused, 409, and its members are looked up one by one. "
        "Default: 50.",
    )
    catalogue_cache_ttl_s: float = Field(
        default=2.0,
        ge=0,
        description="Seconds the gateway keeps the catalogue's purposes and grants in memory. "
        "A change made through this gateway process applies at the next request; one made by "
        "another process (exchange commands, another replica) within this many seconds. "
        "0 reads them on every request. Default: 2.",
    )
    worker_threads: int = Field(
        default=2,
        ge=1,
        le=1000,
        description="Threads of each gateway process that run requests' work (reads, policy, "
        "decryption): at most this many requests are worked on at once, the rest wait their "
        "turn. The work holds Python's GIL most of the time, and every thread that wants it "
        "delays the event loop, which answers every connection: at 150 lookups/s, 2 threads "
        "answered in a median 15-25 ms where 8 took 70-90 ms (docs/benchmarks.md). Raise it "
        "when the database is remote and slow to answer. Default: 2.",
    )
    oidc_jwks_url: str | None = Field(
        default=None,
        description="URL of the OIDC provider's JSON Web Key Set. When set, the gateway also "
        "accepts `Authorization: Bearer <JWT>` signed by those keys, and oidc_issuer and "
        "oidc_audience are required. Default: none (bearer tokens are refused).",
    )
    oidc_issuer: str | None = Field(
        default=None, description="The `iss` a bearer token must carry. Default: none."
    )
    oidc_audience: str | None = Field(
        default=None,
        description="The `aud` a bearer token must carry (the gateway's client id). Default: none.",
    )
    auth_failures_per_minute: int = Field(
        default=10,
        ge=0,
        description="Failed authentications a minute one client address may make, on average, "
        "to one gateway process; past it (and its burst) the address's requests are refused "
        "with 429 before their credentials are checked (no database read, no scrypt), "
        "counted in the metric exchange_gateway_auth_throttled_total and not audited one by "
        "one; a key this process has verified before still passes. 0 turns it off. "
        "Default: 10.",
    )
    auth_failure_burst: int = Field(
        default=20,
        ge=1,
        description="How many failed authentications a client address may make at once before "
        "auth_failures_per_minute applies. Default: 20.",
    )
    client_address_header: str | None = Field(
        default=None,
        description="Header that a trusted reverse proxy sets to the client's address (e.g. "
        "X-Forwarded-For, whose right-most address not in trusted_proxies is taken, or "
        "X-Real-IP), for the per-address limit of failed authentications. Needs "
        "trusted_proxies; the header is read only on connections from them. Default: none "
        "(the connection's peer address).",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses or networks (CIDR) of the reverse proxies whose "
        "client_address_header is believed. Default: none.",
    )
    api_docs: bool | None = Field(
        default=None,
        description="Serve the API documentation (/docs, /redoc, /openapi.json; Swagger UI "
        "and ReDoc from the gateway's own assets). Default: none, which means on in "
        "development and off in production.",
    )
    metrics: bool = Field(
        default=True,
        description="Serve Prometheus metrics at /metrics (counts only; no personal data). "
        "Default: true.",
    )
    access_log: bool = Field(
        default=True,
        description="Write one access-log line per request (logger gateway.access, at INFO: "
        "method, route template, status, latency, request id, decision, department, role; "
        "never the path or query). About 20-30 us of CPU a request. Default: true.",
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="The credential a Prometheus scraper sends to /metrics as "
        "`Authorization: Bearer <token>` (compared in constant time; never logged). When set, "
        "a scrape without it is answered 401. Default: none, which serves /metrics without "
        "a credential in development and refuses it (403, naming this setting) in production. "
        "`exchange up` makes one in <data_dir>/metrics.token when none is set.",
    )

    @model_validator(mode="after")
    def _check_oidc(self) -> GatewaySettings:
        if self.oidc_jwks_url and not (self.oidc_issuer and self.oidc_audience):
            raise ValueError("oidc_jwks_url needs oidc_issuer and oidc_audience as well")
        return self

    @model_validator(mode="after")
    def _check_proxies(self) -> GatewaySettings:
        for proxy in self.trusted_proxies:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError as exc:
                raise ValueError(
                    f"trusted_proxies: {proxy!r} is not an address or network"
                ) from exc
        if self.client_address_header and not self.trusted_proxies:
            raise ValueError(
                "client_address_header needs trusted_proxies: the addresses of the proxies "
                "that set it (anyone else could set it to any address)"
            )
        return self

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


class RegistrySettings(_Section):
    """The shared registry's linkage, and its builder."""

    verify_processes: int = Field(
        default=1,
        ge=0,
        description="Worker processes of the registry builder that verify records' Ed25519 "
        "signatures while the builder applies the records already verified (each about 80-140 "
        "MB). 0 verifies in the builder's own process. Default: 1.",
    )

    manifest_window: int = Field(
        default=100_000,
        ge=1,
        description="How many offsets of its partition a record of a signed batch waits for "
        "its batch's manifest before the builder dead-letters it (not_in_manifest). A "
        "connector's batch is at most 5,000 records; other transactions may interleave with "
        "it. Default: 100000.",
    )

    trusted_departments: list[str] = Field(
        default_factory=list,
        description="Departments in order of trust, most trusted first, for golden records "
        "(survivorship 'most trusted source'). Unlisted departments rank after them, equal. "
        "Default: none (every department equal: the most recent value wins).",
    )

    authoritative_departments: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Golden records: field -> the departments authoritative for it, first "
        "first (survivorship 'authoritative', before trust and recency), e.g. "
        '{"legal_name": ["market_regulation"]}. Each field given replaces the built-in '
        "default for that field; an empty list removes it. Default: none beyond the built-in "
        "defaults (household_registry for a person's names, birth date, sex and identity "
        "number).",
    )

    metrics_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="Port of the builder's own HTTP endpoint (/metrics, /healthz, /readyz; no "
        "credential, so keep metrics_host on a private interface). 0 picks a free port. "
        "Default: none, no endpoint; `exchange up` starts its builder with 19100.",
    )
    metrics_host: str = Field(
        default="127.0.0.1",
        description="Address the builder's endpoint listens on. Default: 127.0.0.1.",
    )


class LogFormat(StrEnum):
    """How log lines are written: text for a console, json for a log collector."""

    TEXT = "text"
    JSON = "json"


class LogSettings(_Section):
    """The processes' logs (the gateway, the registry builder)."""

    format: LogFormat = Field(
        default=LogFormat.TEXT,
        description="text (for a console) or json (one object a line, for production's log "
        "collector: time, level, logger, message, request_id in a request). Default: text.",
    )
    level: str = Field(
        default="INFO",
        pattern=r"^(DEBUG|INFO|WARNING|ERROR|CRITICAL)$",
        description="The lowest level written (DEBUG, INFO, WARNING, ERROR). Default: INFO.",
    )


class AuditSettings(_Section):
    """The audit log: signed tree heads, the Kafka mirror, and the anomaly flags."""

    head_interval_s: float = Field(
        default=10.0,
        ge=0,
        description="Seconds between signed tree heads, signed by a background thread of each "
        "gateway process when entries were appended since the last head. 0 turns periodic "
        "signing off (heads are then signed on demand and by head_every_entries). Default: 10.",
    )
    head_every_entries: int = Field(
        default=10_000,
        ge=0,
        description="Also sign a head as soon as this many entries were appended since the "
        "last one (checked every second). 0: off. Default: 10000.",
    )
    commit_delay_ms: float = Field(
        default=10.0,
        ge=0,
        le=1000,
        description="Under load, how long the gateway's audit writer waits for more entries "
        "before its next transaction (only while busy: entries already waiting as it "
        "finished a transaction of more than one; a request that finds it idle is never "
        "delayed), so that more entries share a commit: with 2 worker "
        "threads, 10 ms served 12% more lookups at 13% less CPU each "
        "(docs/benchmarks.md). 0: off. Default: 10.",
    )
    mirror: bool = Field(
        default=True,
        description="Mirror entries and signed heads to the Kafka topic mirror_topic, from a "
        "background thread of the gateway (an outbox: nothing is lost while Kafka is down). "
        "Default: true.",
    )
    mirror_topic: str = Field(default="audit.access", description="The mirror's topic.")
    mirror_interval_s: float = Field(
        default=1.0, gt=0, description="Seconds between the mirror's rounds. Default: 1."
    )
    timezone: str = Field(
        default="Asia/Shanghai",
        description="IANA time zone of office hours, for the off-hours anomaly flag.",
    )
    office_hours: str = Field(
        default="08:00-19:00",
        pattern=r"^\d{2}:\d{2}-\d{2}:\d{2}$",
        description="Office hours (HH:MM-HH:MM, Monday to Friday, in timezone); access to "
        "personal records outside them is flagged. Default: 08:00-19:00.",
    )
    volume_per_hour: int = Field(
        default=100,
        ge=1,
        description="Flag an actor who accesses more data subjects than this within one "
        "hour. Default: 100.",
    )
    denial_burst: int = Field(
        default=10,
        ge=1,
        description="Flag an actor denied this many times within denial_window_s. Default: 10.",
    )
    denial_window_s: int = Field(
        default=300, ge=1, description="Window of the denial-burst flag, seconds. Default: 300."
    )
    auth_failure_burst: int = Field(
        default=10,
        ge=1,
        description="Flag this many failed authentications (entries answered 401) within "
        "auth_failure_window_s, by one actor, or by unidentified callers together. "
        "Default: 10.",
    )
    auth_failure_window_s: int = Field(
        default=300,
        ge=1,
        description="Window of the authentication-failure flag, seconds. Default: 300.",
    )


class ConsoleSettings(_Section):
    """The web console (``/ui/``): sign-in sessions, language, single sign-on."""

    enabled: bool = Field(
        default=True,
        description="Serve the web console at /ui/ (gateway/console). Default: true.",
    )
    idle_minutes: int = Field(
        default=30,
        ge=1,
        description="A console session unused for this long is ended; the next page asks "
        "to sign in again. Default: 30.",
    )
    absolute_hours: int = Field(
        default=12,
        ge=1,
        description="A console session ends this long after sign-in, however active. Default: 12.",
    )
    secure_cookie: bool | None = Field(
        default=None,
        description="Mark the session cookie Secure (sent over TLS only). Default: none, "
        "which marks it Secure when the request came over https (directly or, from a "
        "trusted proxy, as X-Forwarded-Proto says) and always in production.",
    )
    default_language: str = Field(
        default="zh",
        pattern="^(zh|en)$",
        description="The console's language until a user chooses: zh (Chinese) or en. Default: zh.",
    )
    oidc_discovery_url: str | None = Field(
        default=None,
        description="The OIDC provider's discovery document "
        "(<issuer>/.well-known/openid-configuration). When set with oidc_client_id, the "
        "sign-in page offers single sign-on (authorization-code flow with PKCE); the ID "
        "token is checked against the issuer and keys the document names. Default: "
        "none (sign-in with an API key only).",
    )
    oidc_client_id: str | None = Field(
        default=None, description="The console's client id at the provider. Default: none."
    )
    oidc_client_secret: SecretStr | None = Field(
        default=None,
        description="The console's client secret at the provider (never logged). Default: "
        "none (a public client, PKCE only).",
    )
    oidc_redirect_url: str | None = Field(
        default=None,
        description="The callback address registered at the provider, "
        "https://<gateway>/ui/sign-in/oidc/callback. Default: none, which derives it from "
        "the request.",
    )
    oidc_label: str = Field(
        default="Single sign-on",
        description="The sign-in button's label for the provider. Default: Single sign-on.",
    )

    @model_validator(mode="after")
    def _check_oidc(self) -> ConsoleSettings:
        if self.oidc_discovery_url and not self.oidc_client_id:
            raise ValueError("console.oidc_discovery_url needs console.oidc_client_id as well")
        return self


class Settings(BaseSettings):
    """All settings of the exchange. See docs/configuration.md for the full list."""

    model_config = SettingsConfigDict(
        env_prefix="EXCHANGE_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    env: Environment = Field(
        default=Environment.DEVELOPMENT,
        description="development or production. Production refuses development leftovers: "
        "the development linkage key (at start), keys made by the demo or in development "
        "mode (at authentication), and open API docs unless gateway.api_docs is true.",
    )
    data_dir: Path = Field(
        default=Path("var"),
        description="Where the local stack keeps the broker's logs, SQLite file, pid files.",
    )
    database_url: str | None = Field(
        default=None,
        repr=False,
        description="SQLAlchemy URL of the registry database. "
        "Default: sqlite:///<data_dir>/registry.db.",
    )
    demo_api_key: SecretStr | None = Field(
        default=None,
        description="API key `exchange demo` registers for its caseworker. "
        "Default in development: a fixed, public demo key; refused in production.",
    )
    linkage_key: SecretStr = Field(
        default=SecretStr(DEV_LINKAGE_KEY),
        description="HMAC key of the blind indexes (identifier lookups, audit data subjects). "
        "Default: a public development key, refused in production.",
    )
    master_key: SecretStr | None = Field(
        default=None,
        description="Base64 of the 32-byte master key that wraps the key-encryption keys "
        "of the keystore. Takes precedence over master_key_file. Default: none; in "
        "development a key is created in <data_dir>/keys/master.key, in production one of "
        "master_key or master_key_file is required.",
    )
    master_key_file: Path | None = Field(
        default=None,
        description="A file (mode 0600) holding the base64 master key, used when master_key "
        "is not set. Default: none.",
    )
    connectors_dir: Path | None = Field(
        default=None,
        description="Where the gateway finds push connector definitions "
        "(<connector id>.toml). Default: <data_dir>/connectors.",
    )
    connector_workers: int | None = Field(
        default=None,
        ge=1,
        description="Processes that prepare a connector run's records (map, validate, "
        "encrypt, sign), the run's own process included: 1 prepares them all in the run's "
        "process; N starts N - 1 worker processes. Default: none, which means one for each "
        "core the run may use (its CPU affinity).",
    )
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    gateway: GatewaySettings = Field(default_factory=GatewaySettings)
    registry: RegistrySettings = Field(default_factory=RegistrySettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)

    @model_validator(mode="after")
    def _check_secrets(self) -> Settings:
        if self.env is Environment.PRODUCTION and (
            self.linkage_key.get_secret_value() == DEV_LINKAGE_KEY
        ):
            raise ValueError("linkage_key: the development default is refused in production")
        if self.env is Environment.PRODUCTION and (
            self.demo_api_key is None or self.demo_api_key.get_secret_value() == DEV_DEMO_KEY
        ):
            # In production no key is ever defaulted: the demo simply has none.
            self.demo_api_key = None
        elif self.demo_api_key is None:
            self.demo_api_key = SecretStr(DEV_DEMO_KEY)
        return self

    @property
    def api_docs_open(self) -> bool:
        """Whether the gateway serves its API documentation (gateway.api_docs, or else
        only in development)."""
        if self.gateway.api_docs is not None:
            return self.gateway.api_docs
        return self.env is Environment.DEVELOPMENT

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir.resolve() / 'registry.db'}"

    @property
    def connectors_path(self) -> Path:
        return self.connectors_dir or self.data_dir / "connectors"

    @property
    def safe_db_url(self) -> str:
        """The database URL with any password masked, for logs and messages."""
        return _mask_url(self.db_url)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        _check_environment()
        toml_path = Path(os.environ.get("EXCHANGE_CONFIG", "exchange.toml"))
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_path.is_file():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_path))
        elif "EXCHANGE_CONFIG" in os.environ:
            raise ConfigError(f"EXCHANGE_CONFIG names {toml_path}, which is not a file")
        return tuple(sources)

    def masked(self) -> dict[str, Any]:
        """The settings as a dict safe to log or print: secrets are masked."""
        data = self.model_dump(mode="json")
        if data.get("database_url"):
            data["database_url"] = _mask_url(data["database_url"])
        return data


def _mask_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
        query = {k: ("***" if "pass" in k.lower() else v) for k, v in parsed.query.items()}
        return parsed.set(query=query).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL is shown as nothing rather than leaked
        return "***"


# Environment variables the exchange reads outside the Settings class.
_OTHER_ENV = frozenset({"EXCHANGE_CONFIG", "EXCHANGE_KAFKA_CACHE"})


def _check_environment() -> None:
    """Refuse EXCHANGE_* variables that name no setting (pydantic-settings ignores them)."""
    sections: dict[str, type[BaseModel]] = {
        "kafka": KafkaSettings,
        "gateway": GatewaySettings,
        "registry": RegistrySettings,
        "audit": AuditSettings,
        "log": LogSettings,
        "console": ConsoleSettings,
    }
    unknown = []
    for name in os.environ:
        if not name.startswith("EXCHANGE_") or name in _OTHER_ENV:
            continue
        dotted = name.removeprefix("EXCHANGE_").lower().replace("__", ".")
        top, _, rest = dotted.partition(".")
        if top in sections:
            if rest and rest.split(".")[0] not in sections[top].model_fields:
                unknown.append(f"{name} ({dotted})")
        elif top not in Settings.model_fields or rest:
            unknown.append(f"{name} ({dotted})")
    if unknown:
        raise ConfigError(
            f"unknown setting(s) in the environment: {', '.join(sorted(unknown))} "
            "(see docs/configuration.md)"
        )


def load_settings(**overrides: Any) -> Settings:
    """Read the settings, turning pydantic's errors into one readable ConfigError."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            lines.append(f"  {loc}: {err['msg']}")
        raise ConfigError("invalid settings:\n" + "\n".join(lines)) from exc
