"""Tests for exchange.core.config: defaults, precedence, unknown keys and secret handling."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from exchange.core.config import DEV_DEMO_KEY, DEV_LINKAGE_KEY, Environment, load_settings
from exchange.core.errors import ConfigError


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No EXCHANGE_* variables from the caller's shell, and no stray ./exchange.toml."""
    for name in list(os.environ):
        if name.upper().startswith("EXCHANGE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _write_toml(tmp_path: Path, text: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "settings.toml"
    path.write_text(text, encoding="utf-8")
    monkeypatch.setenv("EXCHANGE_CONFIG", str(path))
    return path


# --- defaults and precedence ---------------------------------------------------------------


def test_defaults(tmp_path: Path) -> None:
    settings = load_settings()

    assert settings.env is Environment.DEVELOPMENT
    assert settings.database_url is None
    assert settings.db_url == f"sqlite:///{tmp_path.resolve() / 'var' / 'registry.db'}"
    assert settings.kafka.bootstrap == "127.0.0.1:19092"
    assert settings.gateway.url == "http://127.0.0.1:18080"
    assert settings.linkage_key.get_secret_value() == DEV_LINKAGE_KEY
    assert settings.demo_api_key is not None
    assert settings.demo_api_key.get_secret_value() == DEV_DEMO_KEY


def test_db_url_follows_data_dir(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "elsewhere")

    assert settings.db_url == f"sqlite:///{tmp_path.resolve() / 'elsewhere' / 'registry.db'}"


def test_external_bootstrap_servers_win_over_the_local_broker() -> None:
    settings = load_settings(kafka={"bootstrap_servers": "k1:9092,k2:9092"})

    assert settings.kafka.bootstrap == "k1:9092,k2:9092"


def test_nested_env_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXCHANGE_KAFKA__PORT", "29092")

    settings = load_settings()

    assert settings.kafka.port == 29092
    assert settings.kafka.bootstrap == "127.0.0.1:29092"
    assert settings.kafka.host == "127.0.0.1"  # siblings keep their defaults


def test_toml_file_named_by_exchange_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_toml(
        tmp_path,
        'database_url = "sqlite:///from-toml.db"\n[kafka]\nhost = "10.0.0.5"\nport = 9093\n',
        monkeypatch,
    )

    settings = load_settings()

    assert settings.db_url == "sqlite:///from-toml.db"
    assert settings.kafka.bootstrap == "10.0.0.5:9093"


def test_exchange_toml_in_the_working_directory_is_read(tmp_path: Path) -> None:
    (tmp_path / "exchange.toml").write_text("[gateway]\nport = 18181\n", encoding="utf-8")

    assert load_settings().gateway.port == 18181


def test_env_wins_over_toml_and_keywords_win_over_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_toml(tmp_path, "[kafka]\nport = 1111\npartitions = 7\n", monkeypatch)
    monkeypatch.setenv("EXCHANGE_KAFKA__PORT", "2222")

    from_env = load_settings()
    from_keyword = load_settings(gateway={"port": 3333})

    assert from_env.kafka.port == 2222
    assert from_env.kafka.partitions == 7
    assert from_keyword.gateway.port == 3333


def test_invalid_value_raises_config_error_naming_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXCHANGE_KAFKA__PORT", "not-a-port")

    with pytest.raises(ConfigError, match=r"kafka\.port"):
        load_settings()


# --- unknown keys --------------------------------------------------------------------------


def test_unknown_nested_env_key_raises_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXCHANGE_KAFKA__PROT", "19092")

    with pytest.raises(ConfigError, match=r"kafka\.prot"):
        load_settings()


def test_unknown_top_level_env_key_raises_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXCHANGE_DATABSE_URL", "postgresql://db/registry")

    with pytest.raises(ConfigError, match="databse_url"):
        load_settings()


def test_unknown_top_level_toml_key_raises_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_toml(tmp_path, 'databse_url = "sqlite:///x.db"\n', monkeypatch)

    with pytest.raises(ConfigError, match="databse_url"):
        load_settings()


def test_unknown_toml_key_in_a_section_raises_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_toml(tmp_path, "[gateway]\nprot = 8080\n", monkeypatch)

    with pytest.raises(ConfigError, match=r"gateway\.prot"):
        load_settings()


def test_exchange_config_naming_a_missing_file_raises_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "nope.toml"
    monkeypatch.setenv("EXCHANGE_CONFIG", str(missing))

    with pytest.raises(ConfigError, match=r"nope\.toml"):
        load_settings()


# --- secrets -------------------------------------------------------------------------------


def test_production_refuses_the_default_linkage_key() -> None:
    with pytest.raises(ConfigError, match="linkage_key"):
        load_settings(env="production")


def test_production_with_own_linkage_key_has_no_demo_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXCHANGE_ENV", "production")
    monkeypatch.setenv("EXCHANGE_LINKAGE_KEY", "a-real-production-key")
    monkeypatch.setenv("EXCHANGE_DEMO_API_KEY", DEV_DEMO_KEY)

    settings = load_settings()

    assert settings.env is Environment.PRODUCTION
    assert settings.demo_api_key is None


def test_masked_hides_every_secret_value() -> None:
    linkage = "linkage-secret-4f1c9e"
    demo = "dx_demo_secret_77aa01"
    password = "pg-password-b3e2"
    settings = load_settings(
        linkage_key=linkage,
        demo_api_key=demo,
        database_url=f"postgresql+psycopg://exchange:{password}@db.internal:5432/registry",
    )

    masked = settings.masked()
    text = str(masked)

    for secret in (linkage, demo, password):
        assert secret not in text
    assert masked["linkage_key"] != linkage
    assert masked["demo_api_key"] != demo
    assert masked["database_url"] == "postgresql+psycopg://exchange:***@db.internal:5432/registry"
    # The secrets themselves are intact, only their rendering is masked.
    assert settings.linkage_key.get_secret_value() == linkage


def test_masked_hides_a_password_given_as_a_query_parameter() -> None:
    password = "pg-password-in-query"
    settings = load_settings(
        database_url=f"postgresql+psycopg://exchange@db.internal/registry?password={password}"
    )

    assert password not in str(settings.masked())


def test_masked_hides_the_default_secrets_too() -> None:
    text = str(load_settings().masked())

    assert DEV_LINKAGE_KEY not in text
    assert DEV_DEMO_KEY not in text


def test_masked_keeps_non_secret_settings() -> None:
    masked = load_settings(kafka={"port": 29092}).masked()

    assert masked["kafka"]["port"] == 29092
    assert masked["env"] == "development"
