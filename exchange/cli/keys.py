"""``exchange keys ...``: rotate, list and destroy the keys of the keystore.

Never prints key material: data keys are shown by id, dataset, period and state; signing
keys by id and public key.
"""

from __future__ import annotations

import base64
from typing import Annotated

import typer
from rich.table import Table

from exchange.cli.context import state
from exchange.security.keystore import DataKeyInfo

app = typer.Typer(help="Data keys, key-encryption keys and signing keys.", no_args_is_help=True)
signing_app = typer.Typer(help="The departments' signing keys.", no_args_is_help=True)
app.add_typer(signing_app, name="signing")


def _when(info: DataKeyInfo) -> str:
    return info.created_at.strftime("%Y-%m-%d %H:%M:%S UTC")


def _table(keys: list[DataKeyInfo]) -> Table:
    table = Table("dataset", "period", "generation", "state", "created", "key id")
    for k in keys:
        table.add_row(k.dataset, k.period, str(k.generation), k.state, _when(k), k.key_id)
    return table


@app.command("list")
def list_keys(
    ctx: typer.Context,
    dataset: Annotated[str | None, typer.Option(help="Only this dataset.")] = None,
) -> None:
    """The data keys: dataset, period, generation, state (current, retired, destroyed)."""
    cli = state(ctx)
    keys = cli.keystore.list_data_keys(dataset)
    if not keys:
        cli.console.print("no data keys")
        return
    cli.console.print(_table(keys))


@app.command("rotate")
def rotate(
    ctx: typer.Context,
    dataset: Annotated[str | None, typer.Option(help="Only this dataset. Default: all.")] = None,
) -> None:
    """Retire the current data keys: new encryptions get new keys, old data still decrypts."""
    cli = state(ctx)
    count = cli.keystore.rotate_data_keys(dataset)
    cli.console.print(f"retired {count} data key(s) of {dataset or 'every dataset'}")


@app.command("rotate-kek")
def rotate_kek(ctx: typer.Context) -> None:
    """Re-wrap every live key under a new key-encryption key and delete the old one."""
    cli = state(ctx)
    count = cli.keystore.rotate_kek()
    cli.console.print(f"new key-encryption key; {count} key(s) re-wrapped, the old KEK deleted")


@app.command("destroy")
def destroy(
    ctx: typer.Context,
    dataset: Annotated[str, typer.Argument(help="The dataset whose data keys to destroy.")],
    period: Annotated[str | None, typer.Option(help="Only this period, e.g. 2026-11.")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Really destroy: this cannot be undone.")] = (
        False
    ),
) -> None:
    """Crypto-shred a dataset (or one period of it): its encrypted fields become unreadable.

    Then rotates the key-encryption key, so that copies of the erased wrapped keys the
    database may still hold (free pages, WAL, dead tuples) are wrapped under a KEK that no
    longer exists. Backups taken before still hold both; they need their own disposal.
    """
    cli = state(ctx)
    keystore = cli.keystore
    doomed = [k for k in keystore.list_data_keys(dataset, period) if k.state != "destroyed"]
    what = f"{dataset} {period}" if period else f"{dataset} (every period)"
    if not doomed:
        cli.console.print(f"no live data keys of {what}: nothing to destroy")
        return
    cli.console.print(
        f"Destroying these {len(doomed)} data key(s) makes every field of {what} they "
        "encrypted unreadable, for good:"
    )
    cli.console.print(_table(doomed))
    if not yes:
        cli.console.print("refused: nothing was destroyed; pass --yes to destroy them")
        raise typer.Exit(1)
    count = keystore.destroy(dataset, period)
    rewrapped = keystore.rotate_kek()
    cli.console.print(f"destroyed {count} data key(s) of {what}")
    cli.console.print(f"rotated the key-encryption key ({rewrapped} live key(s) re-wrapped)")


@signing_app.command("rotate")
def signing_rotate(
    ctx: typer.Context,
    department: Annotated[str, typer.Argument(help="The department, e.g. revenue.")],
) -> None:
    """Make a new signing key; the old public key stays for verifying what was published."""
    cli = state(ctx)
    key_id = cli.keystore.rotate_signing_key(department)
    cli.console.print(f"new signing key of {department}: {key_id}")


@signing_app.command("list")
def signing_list(
    ctx: typer.Context,
    department: Annotated[str, typer.Argument(help="The department, e.g. revenue.")],
) -> None:
    """The department's public keys (current last), base64."""
    cli = state(ctx)
    keys = cli.keystore.public_keys(department)
    if not keys:
        cli.console.print(f"no signing keys of {department}")
        return
    table = Table("key id", "public key (Ed25519, base64)")
    for key_id, public in keys.items():
        table.add_row(key_id, base64.b64encode(public).decode())
    cli.console.print(table)


__all__ = ["app"]
