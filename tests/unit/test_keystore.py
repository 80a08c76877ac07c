"""The keystore: data keys, rotation, crypto-shredding, signing keys, the master key."""

from __future__ import annotations

import base64
import logging
import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.orm import Session, sessionmaker

from exchange.core.config import load_settings
from exchange.core.db import Base, make_engine, migrate, session_factory
from exchange.core.errors import ConfigError
from exchange.security import crypto
from exchange.security.crypto import DecryptionError
from exchange.security.keystore import (
    DataKey,
    FieldCipher,
    KeyDestroyedError,
    KeyNotFoundError,
    LocalKeyStore,
    master_key_from_settings,
    period_of,
)

MASTER = bytes(range(100, 132))
KEY_TABLES = {"key_encryption_keys", "data_keys", "signing_keys"}


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[sa.Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'keys.db'}")
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: sa.Engine) -> sessionmaker[Session]:
    return session_factory(engine)


@pytest.fixture
def store(sessions: sessionmaker[Session]) -> LocalKeyStore:
    return LocalKeyStore(sessions, MASTER)


def _rows(engine: sa.Engine, table: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.text(f"SELECT * FROM {table}"))]


def _all_values(engine: sa.Engine) -> Iterator[object]:
    for table in sa.inspect(engine).get_table_names():
        for row in _rows(engine, table):
            yield from row.values()


# --- schema ---------------------------------------------------------------------------------


def test_migration_creates_exactly_the_key_tables_of_the_models(engine: sa.Engine) -> None:
    assert set(sa.inspect(engine).get_table_names()) >= KEY_TABLES
    assert _schema_diff(engine) == []


def _schema_diff(engine: sa.Engine) -> list[Any]:
    """Alembic's autogenerate comparison of the database with the models, for the key tables."""

    def mine(obj: Any, name: str | None, type_: str, reflected: bool, other: Any) -> bool:
        table = name if type_ == "table" else getattr(getattr(obj, "table", None), "name", None)
        return table in KEY_TABLES

    opts = {"compare_type": True, "include_object": mine}
    with engine.connect() as conn:
        return list(compare_metadata(MigrationContext.configure(conn, opts=opts), Base.metadata))


def test_the_schema_comparison_sees_a_missing_migration(tmp_path: Path) -> None:
    old = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    with old.begin() as conn:
        conn.execute(sa.text("CREATE TABLE data_keys (id INTEGER PRIMARY KEY)"))
    try:
        diff = _schema_diff(old)
    finally:
        old.dispose()
    kinds = {d[0] if isinstance(d, tuple) else d[0][0] for d in diff}  # lists hold modify_*
    assert kinds >= {"add_table", "add_column"}


# --- data keys ------------------------------------------------------------------------------


def test_data_key_is_one_per_dataset_and_period(store: LocalKeyStore) -> None:
    key = store.data_key("person", "2026-11")

    assert len(key.key_id) == 32
    int(key.key_id, 16)
    assert len(key.key) == 32
    assert store.data_key("person", "2026-11") == key
    assert store.data_key("person", "2026-12").key != key.key
    assert store.data_key("vehicle", "2026-11").key_id != key.key_id
    assert store.data_key_by_id(key.key_id) == key.key
    assert key.key.hex() not in repr(key)


def test_keys_persist_across_keystore_instances(sessions: sessionmaker[Session]) -> None:
    first = LocalKeyStore(sessions, MASTER)
    token = FieldCipher(first).encrypt("person", "name", "P-1", b"Ada Lovelace", period="2026-11")
    key = first.data_key("person", "2026-11")

    second = LocalKeyStore(sessions, MASTER)
    assert FieldCipher(second).decrypt("person", "name", "P-1", token) == b"Ada Lovelace"
    assert second.data_key("person", "2026-11") == key


def test_unknown_key_id(store: LocalKeyStore) -> None:
    with pytest.raises(KeyNotFoundError) as info:
        store.data_key_by_id("0" * 32)
    assert info.value.code == "key_not_found"


@pytest.mark.parametrize(
    ("dataset", "period"), [("", "2026-11"), ("person", ""), ("x" * 101, "2026-11")]
)
def test_bad_names_are_refused(store: LocalKeyStore, dataset: str, period: str) -> None:
    with pytest.raises(ValueError, match="characters"):
        store.data_key(dataset, period)


def test_period_of() -> None:
    from datetime import UTC, datetime, timedelta, timezone

    assert period_of(datetime(2026, 11, 30, 23, 30, tzinfo=UTC)) == "2026-11"
    east = timezone(timedelta(hours=2))
    assert period_of(datetime(2026, 12, 1, 1, 0, tzinfo=east)) == "2026-11"
    with pytest.raises(ValueError, match="naive"):
        period_of(datetime(2026, 11, 1))


def test_concurrent_creation_makes_one_current_key(sessions: sessionmaker[Session]) -> None:
    """Eight processes' keystores racing for the same key all end up with the same one."""
    stores = [LocalKeyStore(sessions, MASTER) for _ in range(8)]
    barrier = threading.Barrier(len(stores))
    results: list[DataKey] = []

    def create(s: LocalKeyStore) -> None:
        barrier.wait()
        results.append(s.data_key("person", "2026-11"))

    threads = [threading.Thread(target=create, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len(results) == 8
    assert len(set(results)) == 1
    with sessions() as session:
        assert session.scalar(sa.text("SELECT count(*) FROM data_keys")) == 1
        assert session.scalar(sa.text("SELECT count(*) FROM key_encryption_keys")) == 1


def test_losing_a_creation_race_retries_and_uses_the_winner(
    sessions: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    winner, loser = LocalKeyStore(sessions, MASTER), LocalKeyStore(sessions, MASTER)
    won: list[DataKey] = []
    current_kek = loser._current_kek

    def other_process_gets_there_first(session: Session) -> tuple[str, bytes]:
        if not won:  # between the loser's read and its insert
            won.append(winner.data_key("person", "2026-11"))
        return current_kek(session)

    monkeypatch.setattr(loser, "_current_kek", other_process_gets_there_first)
    caplog.set_level(logging.INFO, logger="exchange.security.keystore")

    assert loser.data_key("person", "2026-11") == won[0]
    assert "key write conflicted" in caplog.text
    assert len(winner.list_data_keys()) == 1


# --- field encryption -------------------------------------------------------------------------


def test_field_token_format(store: LocalKeyStore) -> None:
    cipher = FieldCipher(store)
    token = cipher.encrypt("person", "name", "P-1", b"Ada", period="2026-11")

    assert token[0] == 0x01
    assert token[1:17].hex() == store.data_key("person", "2026-11").key_id
    assert len(token) == 1 + 16 + 12 + 3 + 16
    assert token != cipher.encrypt("person", "name", "P-1", b"Ada", period="2026-11")


def test_field_token_bound_to_record_field_and_dataset(store: LocalKeyStore) -> None:
    cipher = FieldCipher(store)
    token = cipher.encrypt("person", "name", "P-1", b"Ada", period="2026-11")

    for dataset, field, record in [
        ("person", "name", "P-2"),
        ("person", "surname", "P-1"),
        ("vehicle", "name", "P-1"),
    ]:
        with pytest.raises(DecryptionError):
            cipher.decrypt(dataset, field, record, token)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: b"\x02" + t[1:],  # unknown version
        lambda t: t[:1] + bytes(16) + t[17:],  # unknown data key
        lambda t: t[:10],  # truncated
        lambda t: b"",
    ],
)
def test_malformed_field_tokens_fail_opaquely(store: LocalKeyStore, mangle: Any) -> None:
    cipher = FieldCipher(store)
    token = cipher.encrypt("person", "name", "P-1", b"Ada", period="2026-11")
    with pytest.raises(DecryptionError):
        cipher.decrypt("person", "name", "P-1", mangle(token))


# --- rotation ---------------------------------------------------------------------------------


def test_rotate_data_keys(store: LocalKeyStore) -> None:
    cipher = FieldCipher(store)
    old_person = store.data_key("person", "2026-11")
    old_vehicle = store.data_key("vehicle", "2026-11")
    token = cipher.encrypt("person", "name", "P-1", b"Ada", period="2026-11")

    assert store.rotate_data_keys("person") == 1

    new_person = store.data_key("person", "2026-11")
    assert new_person.key_id != old_person.key_id
    assert store.data_key("vehicle", "2026-11") == old_vehicle
    assert cipher.decrypt("person", "name", "P-1", token) == b"Ada"
    new_token = cipher.encrypt("person", "name", "P-1", b"Ada", period="2026-11")
    assert new_token[1:17].hex() == new_person.key_id

    assert store.rotate_data_keys() == 2  # person generation 2 and vehicle
    states = {(k.dataset, k.generation): k.state for k in store.list_data_keys()}
    assert states == {("person", 1): "retired", ("person", 2): "retired", ("vehicle", 1): "retired"}
    assert store.data_key("person", "2026-11").key_id not in {old_person.key_id, new_person.key_id}
    assert cipher.decrypt("person", "name", "P-1", new_token) == b"Ada"


def test_rotate_kek_rewraps_without_touching_ciphertext(
    store: LocalKeyStore, engine: sa.Engine, sessions: sessionmaker[Session]
) -> None:
    cipher = FieldCipher(store)
    tokens = {
        (ds, period): cipher.encrypt(ds, "name", "R-1", f"{ds}/{period}".encode(), period=period)
        for ds in ("person", "vehicle")
        for period in ("2026-10", "2026-11")
    }
    store.rotate_data_keys("vehicle")  # retired keys are re-wrapped too
    store.signing_key("revenue")
    store.destroy("person", "2026-10")  # destroyed keys have nothing to re-wrap
    old_kek = _rows(engine, "key_encryption_keys")
    before = {r["key_id"]: r for r in _rows(engine, "data_keys")}

    assert store.rotate_kek() == 3 + 1  # three live data keys, one signing key

    kek = _rows(engine, "key_encryption_keys")
    assert len(kek) == 1
    assert kek[0]["kek_id"] != old_kek[0]["kek_id"]
    assert kek[0]["wrapped"] != old_kek[0]["wrapped"]
    for row in _rows(engine, "data_keys"):
        if row["destroyed_at"] is None:
            assert row["wrapped"] != before[row["key_id"]]["wrapped"]
            assert row["kek_id"] == kek[0]["kek_id"]
        else:
            assert row["wrapped"] is None
    assert _rows(engine, "signing_keys")[0]["kek_id"] == kek[0]["kek_id"]

    fresh = FieldCipher(LocalKeyStore(sessions, MASTER))  # nothing cached: unwraps anew
    for (ds, period), token in tokens.items():
        if (ds, period) == ("person", "2026-10"):
            with pytest.raises(KeyDestroyedError):
                fresh.decrypt(ds, "name", "R-1", token)
        else:
            assert fresh.decrypt(ds, "name", "R-1", token) == f"{ds}/{period}".encode()
            assert cipher.decrypt(ds, "name", "R-1", token) == f"{ds}/{period}".encode()


def test_another_instance_keeps_working_after_a_kek_rotation(
    sessions: sessionmaker[Session],
) -> None:
    a = LocalKeyStore(sessions, MASTER, cache_ttl=0)
    b = LocalKeyStore(sessions, MASTER, cache_ttl=0)
    token = FieldCipher(a).encrypt("person", "name", "P-1", b"Ada", period="2026-11")

    b.rotate_kek()
    b.rotate_kek()

    assert FieldCipher(a).decrypt("person", "name", "P-1", token) == b"Ada"
    a.rotate_data_keys()
    FieldCipher(a).encrypt("person", "name", "P-2", b"Bob", period="2026-11")  # under new KEK
    assert len(_kek_ids(sessions)) == 1


def _kek_ids(sessions: sessionmaker[Session]) -> list[str]:
    with sessions() as session:
        return list(session.scalars(sa.text("SELECT kek_id FROM key_encryption_keys")))


def test_rotate_kek_on_an_empty_store_creates_the_first(store: LocalKeyStore) -> None:
    assert store.rotate_kek() == 0
    store.data_key("person", "2026-11")
    assert store.rotate_kek() == 1


# --- crypto-shredding ---------------------------------------------------------------------------


def test_destroy_shreds_one_dataset(
    store: LocalKeyStore, engine: sa.Engine, sessions: sessionmaker[Session]
) -> None:
    cipher = FieldCipher(store)
    person = [
        cipher.encrypt("person", "name", "P-1", b"Ada", period=p) for p in ("2026-10", "2026-11")
    ]
    vehicle = cipher.encrypt("vehicle", "plate", "V-1", b"AB12 CDE", period="2026-11")
    store.rotate_data_keys("person")
    cipher.encrypt("person", "name", "P-1", b"Ada", period="2026-11")  # a second generation

    assert store.destroy("person") == 3
    assert store.destroy("person") == 0  # already gone

    for token in person:
        with pytest.raises(KeyDestroyedError) as info:
            cipher.decrypt("person", "name", "P-1", token)
        assert info.value.code == "key_destroyed"
        with pytest.raises(KeyDestroyedError):
            FieldCipher(LocalKeyStore(sessions, MASTER)).decrypt("person", "name", "P-1", token)
    assert cipher.decrypt("vehicle", "plate", "V-1", vehicle) == b"AB12 CDE"
    for row in _rows(engine, "data_keys"):
        if row["dataset"] == "person":
            assert row["wrapped"] is None
            assert row["kek_id"] is None
            assert row["destroyed_at"] is not None
            assert not row["current"]
        else:
            assert row["wrapped"] is not None
    # New data of the dataset gets a new key.
    fresh = cipher.encrypt("person", "name", "P-9", b"Eve", period="2026-11")
    assert cipher.decrypt("person", "name", "P-9", fresh) == b"Eve"


def test_destroy_one_period(store: LocalKeyStore) -> None:
    cipher = FieldCipher(store)
    october = cipher.encrypt("person", "name", "P-1", b"Ada", period="2026-10")
    november = cipher.encrypt("person", "name", "P-1", b"Ada", period="2026-11")

    assert store.destroy("person", "2026-10") == 1

    with pytest.raises(KeyDestroyedError):
        cipher.decrypt("person", "name", "P-1", october)
    assert cipher.decrypt("person", "name", "P-1", november) == b"Ada"


def test_other_instances_stop_using_a_destroyed_key_when_their_cache_expires(
    sessions: sessionmaker[Session],
) -> None:
    now = [0.0]
    gateway = LocalKeyStore(sessions, MASTER, cache_ttl=30, clock=lambda: now[0])
    operator = LocalKeyStore(sessions, MASTER)
    token = FieldCipher(gateway).encrypt("person", "name", "P-1", b"Ada", period="2026-11")

    operator.destroy("person")

    now[0] = 29.0
    assert FieldCipher(gateway).decrypt("person", "name", "P-1", token) == b"Ada"
    now[0] = 30.0
    with pytest.raises(KeyDestroyedError):
        FieldCipher(gateway).decrypt("person", "name", "P-1", token)


# --- the master key -----------------------------------------------------------------------------


def test_no_key_is_stored_in_the_clear(
    store: LocalKeyStore, engine: sa.Engine, tmp_path: Path
) -> None:
    cipher = FieldCipher(store)
    cipher.encrypt("person", "name", "P-1", b"Ada", period="2026-11")
    store.rotate_data_keys()
    cipher.encrypt("person", "name", "P-1", b"Ada", period="2026-11")
    _, private = store.signing_key("revenue")
    store.rotate_kek()
    secrets = [MASTER, private, *(store.data_key_by_id(k.key_id) for k in store.list_data_keys())]
    kek_ids = [r["kek_id"] for r in _rows(engine, "key_encryption_keys")]
    secrets += [store._keks[k] for k in kek_ids]
    forms = [f for s in secrets for f in (s, s.hex(), base64.b64encode(s).decode())]

    for value in _all_values(engine):
        for form in forms:
            if type(value) is type(form):  # bytes in bytes, str in str
                assert form not in value  # type: ignore[operator]
    engine.dispose()  # checkpoint the WAL, then look at the raw files too
    for path in tmp_path.glob("keys.db*"):
        raw = path.read_bytes()
        for s in secrets:
            assert s not in raw


def test_a_wrong_master_key_cannot_unwrap(
    store: LocalKeyStore, sessions: sessionmaker[Session]
) -> None:
    key = store.data_key("person", "2026-11")
    thief = LocalKeyStore(sessions, bytes(32))

    with pytest.raises(DecryptionError):
        thief.data_key_by_id(key.key_id)
    with pytest.raises(DecryptionError):
        thief.data_key("person", "2026-11")


def test_a_wrong_master_key_cannot_rotate_and_changes_nothing(
    store: LocalKeyStore, sessions: sessionmaker[Session], engine: sa.Engine
) -> None:
    store.data_key("person", "2026-11")
    before = _rows(engine, "key_encryption_keys"), _rows(engine, "data_keys")

    with pytest.raises(DecryptionError):
        LocalKeyStore(sessions, bytes(32)).rotate_kek()

    assert (_rows(engine, "key_encryption_keys"), _rows(engine, "data_keys")) == before


def test_the_master_key_must_be_32_bytes(sessions: sessionmaker[Session]) -> None:
    with pytest.raises(ConfigError):
        LocalKeyStore(sessions, b"short")


# --- signing keys -------------------------------------------------------------------------------


def test_signing_keys(store: LocalKeyStore, engine: sa.Engine) -> None:
    key_id, private = store.signing_key("revenue")
    assert store.signing_key("revenue") == (key_id, private)
    assert store.signing_key("health")[0] != key_id
    signature = crypto.sign(private, b"batch 1")
    crypto.verify(store.public_keys("revenue")[key_id], b"batch 1", signature)

    new_id = store.rotate_signing_key("revenue")

    assert new_id != key_id
    new_key_id, new_private = store.signing_key("revenue")
    assert new_key_id == new_id
    catalogue = store.public_keys("revenue")
    assert list(catalogue) == [key_id, new_id]
    crypto.verify(catalogue[key_id], b"batch 1", signature)  # old publications still verify
    crypto.verify(catalogue[new_id], b"batch 2", crypto.sign(new_private, b"batch 2"))
    with pytest.raises(crypto.SignatureError):
        crypto.verify(catalogue[new_id], b"batch 1", signature)
    retired = next(r for r in _rows(engine, "signing_keys") if r["key_id"] == key_id)
    assert retired["wrapped_private"] is None  # the retired private key is erased
    assert retired["retired_at"] is not None
    assert store.public_keys("nobody") == {}


def test_signing_keys_persist(store: LocalKeyStore, sessions: sessionmaker[Session]) -> None:
    first = store.signing_key("revenue")
    assert LocalKeyStore(sessions, MASTER).signing_key("revenue") == first


def test_rotate_signing_key_of_a_new_department_creates_one(store: LocalKeyStore) -> None:
    key_id = store.rotate_signing_key("transport")
    assert list(store.public_keys("transport")) == [key_id]


# --- master_key_from_settings --------------------------------------------------------------------


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("EXCHANGE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


PROD = {"env": "production", "linkage_key": "a-production-linkage-key"}


@pytest.mark.usefixtures("clean_env")
class TestMasterKeyFromSettings:
    def test_from_the_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("EXCHANGE_MASTER_KEY", base64.b64encode(MASTER).decode())
        settings = load_settings(**PROD)

        assert master_key_from_settings(settings) == MASTER
        assert base64.b64encode(MASTER).decode() not in str(settings.masked())
        assert base64.b64encode(MASTER).decode() not in repr(settings)

    def test_from_a_file(self, tmp_path: Path) -> None:
        path = tmp_path / "master.key"
        path.write_text(base64.b64encode(MASTER).decode() + "\n")
        path.chmod(0o600)

        assert master_key_from_settings(load_settings(master_key_file=path, **PROD)) == MASTER

    def test_master_key_wins_over_the_file(self, tmp_path: Path) -> None:
        path = tmp_path / "master.key"
        path.write_text(base64.b64encode(bytes(32)).decode())
        settings = load_settings(master_key=base64.b64encode(MASTER).decode(), master_key_file=path)
        assert master_key_from_settings(settings) == MASTER

    def test_development_creates_a_private_key_file_once(self, tmp_path: Path) -> None:
        settings = load_settings(data_dir=tmp_path / "var")

        key = master_key_from_settings(settings)

        path = tmp_path / "var" / "keys" / "master.key"
        assert len(key) == 32
        assert base64.b64decode(path.read_text()) == key
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert master_key_from_settings(settings) == key
        assert list(path.parent.iterdir()) == [path]  # no temporary file left behind

    def test_production_refuses_to_make_one(self, tmp_path: Path) -> None:
        settings = load_settings(data_dir=tmp_path / "var", **PROD)
        with pytest.raises(ConfigError, match="set master_key or master_key_file"):
            master_key_from_settings(settings)
        assert not (tmp_path / "var" / "keys").exists()

    @pytest.mark.parametrize(
        "value", ["not base64!", base64.b64encode(b"16 bytes only!!!").decode(), ""]
    )
    def test_bad_values(self, value: str, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match="master_key") as info:
            master_key_from_settings(load_settings(master_key=value))
        assert value not in info.value.message or not value

        path = tmp_path / "bad.key"
        path.write_text(value)
        with pytest.raises(ConfigError, match="master key file"):
            master_key_from_settings(load_settings(master_key_file=path))

    def test_a_missing_file(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match="cannot read"):
            master_key_from_settings(load_settings(master_key_file=tmp_path / "none"))
