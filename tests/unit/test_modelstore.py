"""The linkage model store: versions per kind, one active version, the shipped default.

On a SQLite registry (no services); `exchange registry model list/show` through typer's
CliRunner. Relinking and the audit trail of a switch are in
tests/integration/test_linkage_models.py (SQLite and PostgreSQL).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from exchange.cli.main import app
from exchange.cli.model import BAR_WIDTH, weight_bar
from exchange.core.db import transaction
from exchange.core.errors import LinkageModelError, NotFoundError
from exchange.core.models import ActiveLinkageModel, LinkageModel
from exchange.registry import modelstore
from exchange.registry.linkage import Model, default_model
from tests.support.cli import WIDE, cli_database, isolate

runner = CliRunner()


@pytest.fixture
def sessions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[sessionmaker[Session]]:
    isolate(tmp_path, monkeypatch)  # the command line's database is this one
    with cli_database() as (_, made):
        yield made


def _stored(model: Model) -> Model:
    """What reading a stored model back gives (the JSON rounds to 6 decimals)."""
    return Model.from_json(model.to_json())


def test_without_a_stored_model_the_shipped_ones_link(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        assert modelstore.active_versions(session) == {"person": 0, "organisation": 0}
        assert modelstore.active_models(session) == {
            "person": default_model("person"),
            "organisation": default_model("organisation"),
        }
        [shipped] = modelstore.versions(session, "person")
    assert shipped.shipped
    assert shipped.active
    assert shipped.created_by is None


def test_versions_count_per_kind_and_a_new_one_is_not_active(
    sessions: sessionmaker[Session],
) -> None:
    strict = default_model("person").with_thresholds(link=25, review=15)
    with transaction(sessions) as session:
        assert modelstore.add(session, strict, created_by="alice", description="strict") == 1
        assert modelstore.add(session, default_model("person"), created_by="bob") == 2
        assert modelstore.add(session, default_model("organisation"), created_by="bob") == 1
    with sessions() as session:
        assert modelstore.active_versions(session) == {"person": 0, "organisation": 0}
        found = modelstore.versions(session, "person")
        assert [(v.version, v.active, v.created_by) for v in found] == [
            (0, True, None),
            (1, False, "alice"),
            (2, False, "bob"),
        ]
        assert found[1].description == "strict"
        assert modelstore.model_of(session, "person", 1) == _stored(strict)


def test_activating_a_version_makes_it_the_one_that_links(
    sessions: sessionmaker[Session],
) -> None:
    strict = default_model("person").with_thresholds(link=25, review=15)
    with transaction(sessions) as session:
        modelstore.add(session, strict, created_by="alice")
        assert modelstore.activate(session, "person", 1, by="carol") == 0
    with transaction(sessions) as session:
        assert modelstore.active_versions(session) == {"person": 1, "organisation": 0}
        models = modelstore.active_models(session)
        assert models["person"] == _stored(strict)
        assert models["person"].link == 25
        assert models["organisation"] == default_model("organisation")
        # back to the shipped model: version 0
        assert modelstore.activate(session, "person", 0, by="carol") == 1
    with sessions() as session:
        assert modelstore.active_model(session, "person") == default_model("person")
        assert session.get(ActiveLinkageModel, "person") is not None  # one row a kind


def test_an_unknown_version_is_refused_and_nothing_changes(
    sessions: sessionmaker[Session],
) -> None:
    with (
        pytest.raises(NotFoundError, match="no person model version 7"),
        transaction(sessions) as session,
    ):
        modelstore.activate(session, "person", 7, by="carol")
    with sessions() as session:
        assert modelstore.active_version(session, "person") == 0


def test_a_stored_model_that_no_longer_fits_is_never_used(
    sessions: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    data = default_model("person").to_dict()
    data["fields"][1]["m"].pop("homophone")  # as if a level had been added since the fit
    data["fields"][1]["u"].pop("homophone")
    with transaction(sessions) as session:
        modelstore.add(session, default_model("person"), created_by="alice")
        session.execute(update(LinkageModel).values(model=json.dumps(data)))
    with (
        pytest.raises(LinkageModelError, match="version 1 does not fit"),
        transaction(sessions) as session,
    ):
        modelstore.activate(session, "person", 1, by="carol")
    # Made active behind the store's back (an upgrade changed the comparators): the
    # shipped model links instead, and the log says why.
    with transaction(sessions) as session:
        session.add(ActiveLinkageModel(kind="person", version=1, activated_by="x"))
    with sessions() as session, caplog.at_level(logging.WARNING):
        assert modelstore.active_model(session, "person") == default_model("person")
        listed = modelstore.versions(session, "person")
    assert "the active person model cannot be used" in caplog.text
    assert listed[1].model is None
    assert listed[1].problem is not None


def test_an_unknown_kind_is_refused(sessions: sessionmaker[Session]) -> None:
    with sessions() as session, pytest.raises(Exception, match="kind must be one of"):
        modelstore.active_version(session, "vehicle")


@given(st.floats(min_value=-40, max_value=40), st.floats(min_value=0.5, max_value=40))
def test_a_weight_bar_is_as_long_as_the_weight_on_its_side(weight: float, scale: float) -> None:
    bar = weight_bar(weight, scale).plain
    assert len(bar) == 2 * BAR_WIDTH + 1
    assert bar[BAR_WIDTH] == "│"
    left, right = bar[:BAR_WIDTH], bar[BAR_WIDTH + 1 :]
    cells = round(min(abs(weight), scale) / scale * BAR_WIDTH)
    if weight < 0:
        assert left.count("█") == cells
        assert "█" not in right
        assert left.endswith("█" * cells)
    else:
        assert right.count("█") == cells
        assert "█" not in left
        assert right.startswith("█" * cells)


def test_model_show_prints_parameters_and_every_level_with_its_weight(
    sessions: sessionmaker[Session],
) -> None:
    result = runner.invoke(app, ["registry", "model", "show"], env=WIDE)
    assert result.exit_code == 0, result.output
    out = result.output
    shipped = default_model("person")
    assert "person version 0 (active)" in out
    assert f"link {shipped.link:g}, review {shipped.review:g}" in out
    assert re.search(r"sibling guard\s+on", out)
    for f in shipped.fields:
        assert f.name in out
        for i, level in enumerate(f.levels[1:], start=1):
            assert level in out
            assert f"{f.weights[i]:+.1f}" in out
    assert "█" in out


def test_model_show_json_is_the_models_json(sessions: sessionmaker[Session]) -> None:
    strict = default_model("organisation").with_thresholds(link=20, review=10)
    with transaction(sessions) as session:
        modelstore.add(session, strict, created_by="alice")
    result = runner.invoke(
        app, ["registry", "model", "show", "1", "--kind", "organisation", "--json"], env=WIDE
    )
    assert result.exit_code == 0, result.output
    assert Model.from_json(result.output) == _stored(strict)


def test_model_list_marks_the_active_version(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        modelstore.add(session, default_model("person"), created_by="alice", description="copy")
        modelstore.activate(session, "person", 1, by="carol")
    result = runner.invoke(app, ["registry", "model", "list"], env=WIDE)
    assert result.exit_code == 0, result.output
    [row] = [line for line in result.output.splitlines() if "copy" in line]
    assert "*" in row
    assert "alice" in row
    [shipped] = [line for line in result.output.splitlines() if "shipped" in line]
    assert "*" not in shipped


def test_model_show_of_a_missing_version_fails_cleanly(sessions: sessionmaker[Session]) -> None:
    result = runner.invoke(app, ["registry", "model", "show", "3"], env=WIDE)
    assert result.exit_code == 2
    assert "no person model version 3" in result.output
    assert "Traceback" not in result.output


def test_model_fit_on_an_empty_registry_says_so(sessions: sessionmaker[Session]) -> None:
    result = runner.invoke(app, ["registry", "model", "fit"], env=WIDE)
    assert result.exit_code == 2
    assert "model_fit_failed" in result.output
    assert "no live person records" in result.output
    with sessions() as session:
        assert len(modelstore.versions(session, "person")) == 1  # nothing stored


def test_model_add_stores_an_edited_model_as_a_new_version(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    shown = runner.invoke(app, ["registry", "model", "show", "0", "--json"], env=WIDE)
    data = json.loads(shown.output)
    data["link"], data["review"] = 20.0, 14.0
    (tmp_path / "edited.json").write_text(json.dumps(data), encoding="utf-8")
    result = runner.invoke(
        app, ["registry", "model", "add", "edited.json", "--by", "alice"], env=WIDE
    )
    assert result.exit_code == 0, result.output
    assert "stored person model version 1 (not active)" in result.output
    with sessions() as session:
        assert modelstore.model_of(session, "person", 1).link == 20.0
        assert modelstore.active_version(session, "person") == 0
    data["fields"].pop()  # a field missing: refused, nothing stored
    (tmp_path / "broken.json").write_text(json.dumps(data), encoding="utf-8")
    result = runner.invoke(app, ["registry", "model", "add", "broken.json"], env=WIDE)
    assert result.exit_code == 2
    assert "linkage_model_invalid" in result.output
    with sessions() as session:
        assert len(modelstore.versions(session, "person")) == 2
