"""The gateway's identity settings: rate limits and OIDC, their defaults and checks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from exchange.core.config import load_settings
from exchange.core.errors import ConfigError


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("EXCHANGE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_defaults_limit_rates_and_turn_oidc_off() -> None:
    gateway = load_settings().gateway

    assert (gateway.rate_limit_per_minute, gateway.rate_limit_burst) == (600, 100)
    assert (gateway.registry_rate_limit_per_minute, gateway.registry_rate_limit_burst) == (
        6000,
        1000,
    )
    assert (gateway.oidc_jwks_url, gateway.oidc_issuer, gateway.oidc_audience) == (
        None,
        None,
        None,
    )


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXCHANGE_GATEWAY__RATE_LIMIT_PER_MINUTE", "0")
    monkeypatch.setenv("EXCHANGE_GATEWAY__OIDC_JWKS_URL", "https://idp/certs")
    monkeypatch.setenv("EXCHANGE_GATEWAY__OIDC_ISSUER", "https://idp")
    monkeypatch.setenv("EXCHANGE_GATEWAY__OIDC_AUDIENCE", "gw")

    gateway = load_settings().gateway

    assert gateway.rate_limit_per_minute == 0
    assert gateway.oidc_audience == "gw"


def test_a_jwks_url_without_issuer_and_audience_is_refused() -> None:
    with pytest.raises(ConfigError, match="oidc_issuer and oidc_audience"):
        load_settings(gateway={"oidc_jwks_url": "https://idp/certs"})


@pytest.mark.parametrize(
    "bad",
    [
        {"rate_limit_per_minute": -1},
        {"rate_limit_burst": 0},
        {"registry_rate_limit_per_minute": -1},
        {"registry_rate_limit_burst": 0},
    ],
)
def test_negative_limits_are_refused(bad: dict[str, int]) -> None:
    with pytest.raises(ConfigError, match="rate_limit"):
        load_settings(gateway=bad)


def test_worker_threads_default_to_two_and_must_be_positive(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert load_settings().gateway.worker_threads == 2
    monkeypatch.setenv("EXCHANGE_GATEWAY__WORKER_THREADS", "32")
    assert load_settings().gateway.worker_threads == 32
    with pytest.raises(ConfigError, match="worker_threads"):
        load_settings(gateway={"worker_threads": 0})


def test_the_audit_commit_delay_defaults_to_ten_ms_and_is_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert load_settings().audit.commit_delay_ms == 10.0
    monkeypatch.setenv("EXCHANGE_AUDIT__COMMIT_DELAY_MS", "0")
    assert load_settings().audit.commit_delay_ms == 0.0
    for bad in (-1, 1001):
        with pytest.raises(ConfigError, match="commit_delay_ms"):
            load_settings(audit={"commit_delay_ms": bad})
