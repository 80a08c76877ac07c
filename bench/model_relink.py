"""How long `exchange registry model use` takes to relink a registry, and what it moves.

Run from the project root::

    .venv/bin/python -m bench.model_relink [--people N] [--seed S]

Builds a SQLite registry in a temporary directory from :func:`bench.population.persons`
(``N`` true people as four departments hold them, corrupted), applied and linked
in batches of 2,000 as the builder applies them, with the shipped model. Then
stores and activates two models and relinks every record with each
(:func:`exchange.registry.relink.relink`), timing it: a copy of the shipped model
(nothing may move; every entity keeps its id) and the shipped model with the link
threshold raised to 25 (some probabilistic links split). Prints the records, the
wall times and each relink's report. No Kafka: records are applied directly.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from bench.population import persons
from exchange.core.db import make_engine, migrate, session_factory, transaction
from exchange.registry import modelstore
from exchange.registry.entities import EntityResolver
from exchange.registry.linkage import Model, default_model
from exchange.registry.records import Incoming, apply
from exchange.registry.relink import relink
from schemas.standards import load_standard
from schemas.store import SchemaStore

BATCH = 2_000


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Relink time of `registry model use`.")
    parser.add_argument("--people", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(f"sqlite:///{Path(folder) / 'registry.db'}")
        try:
            migrate(engine)
            sessions = session_factory(engine)
            wire = load_standard("person").wire
            schema_id = SchemaStore(sessions).register(wire.subject, wire.schema)
            items = []
            for n, rec in enumerate(persons(args.people, seed=args.seed), start=1):
                payload = json.loads(json.dumps(rec.payload, default=str))
                digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode())
                items.append(
                    Incoming(
                        "person", rec.department, f"{rec.ref.rsplit('/', 1)[-1]}-{n}",
                        digest.hexdigest(), schema_id, payload, None, "std.person.v1", 0, n,
                        datetime.now(UTC),
                    )
                )  # fmt: skip
            started = time.monotonic()
            resolver = EntityResolver()
            for start in range(0, len(items), BATCH):
                with transaction(sessions) as session:
                    resolver.link(session, apply(session, items[start : start + BATCH]).changed)
            print(f"built {len(items):,} records in {time.monotonic() - started:.1f} s")
            shipped = default_model("person")
            trials: list[tuple[str, Model]] = [
                ("copy of the shipped model", shipped),
                ("link 25, review 18", shipped.with_thresholds(link=25, review=18)),
            ]
            for label, model in trials:
                with transaction(sessions) as session:
                    version = modelstore.add(session, model, created_by="bench")
                    modelstore.activate(session, "person", version, by="bench")
                    models = modelstore.active_models(session)
                started = time.monotonic()
                report = relink(sessions, "person", models)
                seconds = time.monotonic() - started
                print(
                    f"{label}: relinked {report.records:,} records in {seconds:.1f} s "
                    f"({report.records / seconds:,.0f}/s); entities {report.entities_before:,}"
                    f" -> {report.entities_after:,}, {report.kept_ids:,} ids kept, "
                    f"{report.moved_records:,} records moved"
                )
        finally:
            engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
