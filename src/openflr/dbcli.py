"""The database on the command line: ``openflr db current`` and ``openflr db upgrade``.

The server upgrades the schema itself at start-up (SQLite always, PostgreSQL unless ``[store]
auto_upgrade`` is off); these commands show the revision and upgrade on demand, for instance
before starting several servers on one PostgreSQL database.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from openflr.cli import config_option, main, settings_from
from openflr.logs import setup_logging

if TYPE_CHECKING:  # the database modules load when a db command runs, not with every command line
    from openflr.store.db import Database
    from openflr.store.migrate import SchemaState


@main.group()
def db() -> None:
    """The database: its schema revision, and upgrading it."""


def _open(config_file: Path | None) -> Database:
    from openflr.store.db import Database

    settings = settings_from(config_file)
    return Database(settings.database_url, check_schema=False)


def _describe(st: SchemaState) -> str:
    if st.up_to_date:
        return f"schema revision {st.head} (up to date)"
    if not st.known:
        return (
            f"schema revision {st.current}, newer than this openflr's {st.head}: a newer openflr upgraded it"
        )
    if st.legacy:
        return f"no schema revision (made before migrations); 'openflr db upgrade' adopts it as {st.head}"
    if st.current is None:
        return f"no schema revision (empty); 'openflr db upgrade' creates revision {st.head}"
    return f"schema revision {st.current}, behind this openflr's {st.head}: run 'openflr db upgrade'"


@db.command("current")
@config_option
def db_current(config_file: Path | None) -> None:
    """Show the database's schema revision and whether it is the one this openflr needs.

    Exit status 0 when up to date, 1 otherwise."""
    database = _open(config_file)
    try:
        st = database.schema()
    finally:
        database.close()
    click.echo(f"{database.safe_url} ({database.dialect}): {_describe(st)}")
    if not st.up_to_date:
        raise SystemExit(1)


@db.command("upgrade")
@config_option
def db_upgrade(config_file: Path | None) -> None:
    """Upgrade the database's schema to the revision this openflr needs (whatever auto_upgrade says)."""
    from openflr.store.db import SchemaError

    setup_logging("warning")
    database = _open(config_file)
    try:
        before, after = database.upgrade()
    except SchemaError as exc:
        raise click.ClickException(exc.message) from None
    finally:
        database.close()
    if before.up_to_date:
        click.echo(f"{database.safe_url}: already at schema revision {after.current} (up to date)")
    else:
        was = before.current or "(none)"
        click.echo(f"{database.safe_url}: upgraded from schema revision {was} to {after.current}")
