"""The ``openflr`` command line: serve, demo, scan, users, audit (find, versions, diff and catalog:
``catalogcli.py``; db: ``dbcli.py``)."""

from __future__ import annotations

import json
import secrets
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from openflr import __version__
from openflr.config import ConfigError, Settings, check_data_dir, load_settings
from openflr.core.audit import RESULTS as AUDIT_RESULTS
from openflr.core.roles import Role
from openflr.errors import OpenflrError
from openflr.logs import setup_logging

F = TypeVar("F", bound=Callable[..., Any])
# Piped output (scripts, logs) is not cut at 80 columns: tables stay one record per line.
console = Console(stderr=False, soft_wrap=True, width=None if sys.stdout.isatty() else 240)
err_console = Console(stderr=True, soft_wrap=True)


def config_option(fn: F) -> F:
    return click.option(
        "--config",
        "config_file",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="TOML configuration file (also OPENFLR_CONFIG).",
    )(fn)


def serving_options(fn: F) -> F:
    fn = click.option(
        "--http", "plain_http", is_flag=True, default=None, help="Serve plain HTTP, not HTTPS."
    )(fn)
    fn = click.option(
        "--port", type=click.IntRange(1, 65535), default=None, help="TCP port, 1-65535 (default 9398)."
    )(fn)
    fn = click.option(
        "--host", default=None, help="Address to listen on (default 0.0.0.0; 127.0.0.1 for the demo)."
    )(fn)
    return config_option(fn)


def settings_from(config_file: Path | None, data_dir: bool = True) -> Settings:
    """The settings; with ``data_dir`` the data directory is made and known to be writable."""
    try:
        settings = load_settings(config_file)
        if data_dir:
            check_data_dir(settings.data_dir)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.meta[_SETTINGS] = settings  # shared by every context of the command line
    return settings


_SETTINGS = "openflr.settings"


def apply_serving(settings: Settings, host: str | None, port: int | None, plain_http: bool | None) -> None:
    """Apply the serving options, then check that the address can be listened on (before any
    start-up work: a port in use is one line, not a traceback after the start-up)."""
    from openflr.server import ListenError, check_listen

    if host is not None:
        settings.server.host = host
    if port is not None:
        settings.server.port = port
    if plain_http:
        settings.server.http = True
    try:
        check_listen(settings.server.host, settings.server.port)
    except ListenError as exc:
        raise click.ClickException(exc.message) from None


class _Main(click.Group):
    """The command group; a database that cannot be opened is one line, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        from sqlalchemy.exc import OperationalError

        try:
            return super().invoke(ctx)
        except OpenflrError as exc:
            from openflr.store.db import SchemaError

            if isinstance(exc, SchemaError):  # newer than this openflr, or behind with auto_upgrade off
                raise click.ClickException(exc.message) from None
            raise
        except OperationalError as exc:
            from openflr.store.db import safe_url

            # The data directory was checked; the database file in it (or the server) may still be unusable.
            settings = ctx.meta.get(_SETTINGS)
            where = f" {safe_url(settings.database_url)}" if isinstance(settings, Settings) else ""
            reason = str(exc.orig) if exc.orig is not None else str(exc).splitlines()[0]
            raise click.ClickException(f"cannot use the database{where}: {reason}") from None


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="openflr")
def main() -> None:
    """openflr: file-level restore from VM replicas, through the Enterprise Manager REST API."""


@main.command()
@serving_options
def serve(config_file: Path | None, host: str | None, port: int | None, plain_http: bool | None) -> None:
    """Serve the API (HTTPS on port 9398 unless told otherwise)."""
    from openflr.server import serve as run

    settings = settings_from(config_file)
    apply_serving(settings, host, port, plain_http)
    setup_logging(settings.server.log_level, settings.server.log_format)
    run(settings)


DEMO_USER = "demo"


@main.command()
@serving_options
def demo(config_file: Path | None, host: str | None, port: int | None, plain_http: bool | None) -> None:
    """Set up a demo (data directory, user, datastore, restore targets) and serve it on 127.0.0.1."""
    from openflr import demo as demo_data
    from openflr.core.service import Service
    from openflr.server import serve as run

    settings = settings_from(config_file)
    # A printed password must not be reachable from the network unless asked for.
    apply_serving(settings, host or "127.0.0.1", port, plain_http)
    setup_logging(settings.server.log_level, settings.server.log_format)
    setup = demo_data.set_up(settings.data_dir)
    store = setup.datastore
    settings.datastores = [s for s in settings.datastores if s.name != store.name] + [store]
    service = Service(settings)
    password = secrets.token_urlsafe(12)
    if service.users.get(DEMO_USER) is None:
        service.users.add(DEMO_USER, password, Role.RESTORE_OPERATOR)
    else:
        service.users.set_password(DEMO_USER, password)
    service.db.close()
    scheme = "http" if settings.server.http else "https"
    shown_host = "127.0.0.1" if settings.server.host in ("0.0.0.0", "::") else settings.server.host
    if ":" in shown_host:
        shown_host = f"[{shown_host}]"
    insecure = "" if settings.server.http else "-k "
    if setup.config_file is not None:
        config_line = f"  configuration: {setup.config_file} (openflr scan, users and audit use it too)\n"
    else:
        config_line = (
            f"  note: {settings.data_dir / 'openflr.toml'} is your own configuration; the demo datastore "
            "is served but not added to it\n"
        )
    console.print(
        f"[bold]openflr demo[/bold]  data directory: {escape(str(settings.data_dir))}\n"
        f"  datastore: {escape(str(store.path))} (two VMs, three replica points each)\n"
        f"  restores to the original location land in: {escape(str(setup.restored))}\n"
        f"{escape(config_line)}"
        f"  user: [bold]{DEMO_USER}[/bold]  password: [bold]{password}[/bold]\n"
        f"  web page: {scheme}://{shown_host}:{settings.server.port}/  (log on as {DEMO_USER})\n"
        f"  try:  curl {insecure}-i -u {DEMO_USER}:{password} -X POST "
        f"'{scheme}://{shown_host}:{settings.server.port}/api/sessionMngr/?v=latest'",
        highlight=False,
    )
    run(settings)


@main.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def scan(config_file: Path | None, as_json: bool) -> None:
    """Scan the configured datastores and print the VMs, points, disks and problems found.

    Exits with status 1 when a problem was found (the report is printed in full either way)."""
    import json

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from openflr.inventory.scanner import scan as run_scan

    settings = settings_from(config_file, data_dir=False)
    setup_logging("error")
    if not settings.datastores:
        raise click.ClickException("no datastores configured (add [[datastores]] to the configuration file)")
    with Progress(
        TextColumn("scanning"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}", markup=False),  # a folder name
        console=err_console,
        transient=True,
        disable=as_json,
    ) as bar:
        task = bar.add_task("", total=None)

        def progress(folder: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, description=Path(folder).name if folder else "")

        inv = run_scan(settings, progress)
    if as_json:
        doc = {
            "replicas": [
                {
                    "id": r.id,
                    "datastore": r.datastore,
                    "vm_name": r.vm_name,
                    "display_name": r.display_name,
                    "platform": r.platform,
                    "folder": str(r.folder),
                    "points": [
                        {
                            "id": p.id,
                            "time": p.created.isoformat(),
                            "label": p.label,
                            "disks": [[str(f) for f in d.files] for d in p.disks],
                        }
                        for p in r.points
                    ],
                }
                for r in inv.replicas.values()
            ],
            "problems": [
                {"datastore": p.datastore, "folder": str(p.folder), "message": p.message}
                for p in inv.problems
            ],
        }
        click.echo(json.dumps(doc, indent=1, ensure_ascii=False))
        if inv.problems:
            sys.exit(1)
        return
    # Names, folders and messages come from the datastores: printed as text, never as Rich markup.
    for r in sorted(inv.replicas.values(), key=lambda r: (r.datastore, r.display_name.casefold())):
        console.print(
            Text.assemble(
                (r.display_name, "bold"),
                f"  (replica VM {r.vm_name!r}, {r.platform}, datastore {r.datastore}, {r.folder})",
            ),
            highlight=False,
        )
        for p in r.points:
            disks = ", ".join(f"{d.files[0].name} ({plural(len(d.files), 'layer')})" for d in p.disks)
            label = f"  {p.label}" if p.label else ""
            console.print(
                f"  {p.created:%Y-%m-%d %H:%M:%S} UTC{label}  disks: {disks}", markup=False, highlight=False
            )
        if not r.points:
            console.print("  (no points)", markup=False)
    console.print(
        f"{plural(len(inv.replicas), 'VM')}, {plural(len(inv.points), 'point')}, "
        f"{plural(len(inv.problems), 'problem')}",
        markup=False,
        highlight=False,
    )
    for problem in inv.problems:
        err_console.print(
            Text.assemble(
                ("problem", "yellow"), f" {problem.datastore}: {problem.folder}: {problem.message}"
            ),
            highlight=False,
        )
    if inv.problems:
        sys.exit(1)


def plural(count: int, noun: str) -> str:
    """``1 VM``, ``2 VMs``, ``0 problems``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


@main.group()
def users() -> None:
    """Manage local user accounts."""


def _service(config_file: Path | None) -> Any:
    from openflr.core.service import Service

    return Service(settings_from(config_file))


def read_password(confirm: bool = True) -> str:
    """First line of stdin when it is not a terminal; an interactive prompt otherwise."""
    if not sys.stdin.isatty():
        line = sys.stdin.readline()
        password = line.rstrip("\r\n")
        if not password:
            raise click.ClickException("no password on standard input")
        return password
    value: str = click.prompt("Password", hide_input=True, confirmation_prompt=confirm)
    return value


def restriction_options(fn: F) -> F:
    """The per-user restore restrictions (docs/RESTORE.md), shared by ``users add`` and ``users set``."""
    fn = click.option(
        "--scope",
        multiple=True,
        help="VM name pattern (fnmatch, e.g. 'fs*') the user may see; repeat or comma-separate; '' = all.",
    )(fn)
    fn = click.option(
        "--extensions",
        default=None,
        help="Only these file types may be restored or downloaded, e.g. 'docx,xlsx,pdf'; '' = any.",
    )(fn)
    return click.option(
        "--inplace-only/--downloads-allowed",
        "inplace_only",
        default=None,
        help="Restore to the original location only: no direct downloads.",
    )(fn)


def _split_list(values: tuple[str, ...] | str | None) -> list[str] | None:
    if values is None or values == ():
        return None
    items = [values] if isinstance(values, str) else list(values)
    return [p.strip() for v in items for p in v.split(",") if p.strip()]


@users.command("add")
@click.argument("name")
@click.option("--role", required=True, help="PortalAdministrator, RestoreOperator or PortalUser.")
@restriction_options
@config_option
def users_add(
    name: str,
    role: str,
    inplace_only: bool | None,
    extensions: str | None,
    scope: tuple[str, ...],
    config_file: Path | None,
) -> None:
    """Add a user; the password comes from stdin (first line) or a prompt."""
    try:
        parsed = Role.parse(role)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--role") from None
    service = _service(config_file)
    try:
        service.users.add(name, read_password(), parsed)
        service.users.set_restrictions(name, inplace_only, _split_list(extensions), _split_list(scope))
    except OpenflrError as exc:
        raise click.ClickException(exc.message) from None
    console.print(f"added user {name} ({parsed.value})", markup=False, highlight=False)


@users.command("set")
@click.argument("name")
@click.option("--role", default=None, help="PortalAdministrator, RestoreOperator or PortalUser.")
@restriction_options
@config_option
def users_set(
    name: str,
    role: str | None,
    inplace_only: bool | None,
    extensions: str | None,
    scope: tuple[str, ...],
    config_file: Path | None,
) -> None:
    """Change a user's role or restore restrictions (effective from the user's next logon)."""
    service = _service(config_file)
    try:
        if role is not None:
            try:
                service.users.set_role(name, Role.parse(role))
            except ValueError as exc:
                raise click.BadParameter(str(exc), param_hint="--role") from None
        user = service.users.set_restrictions(name, inplace_only, _split_list(extensions), _split_list(scope))
    except OpenflrError as exc:
        raise click.ClickException(exc.message) from None
    console.print(f"{user.name}: {user.role.value}; {_restrictions(user)}", markup=False, highlight=False)


def _restrictions(user: Any) -> str:
    parts = []
    if user.inplace_only:
        parts.append("in-place restore only")
    if user.allowed_extensions:
        parts.append("extensions: " + ",".join(user.allowed_extensions))
    parts.append("scope: " + (", ".join(user.restore_scope) if user.restore_scope else "all VMs"))
    return "; ".join(parts)


@users.command("passwd")
@click.argument("name")
@config_option
def users_passwd(name: str, config_file: Path | None) -> None:
    """Set a user's password (stdin or prompt)."""
    service = _service(config_file)
    try:
        service.users.set_password(name, read_password())
    except OpenflrError as exc:
        raise click.ClickException(exc.message) from None
    console.print(f"password of {name} changed", markup=False, highlight=False)


@users.command("remove")
@click.argument("name")
@config_option
def users_remove(name: str, config_file: Path | None) -> None:
    """Remove a user."""
    service = _service(config_file)
    try:
        service.users.remove(name)
    except OpenflrError as exc:
        raise click.ClickException(exc.message) from None
    console.print(f"removed user {name}", markup=False, highlight=False)


@users.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the users as JSON.")
@config_option
def users_list(as_json: bool, config_file: Path | None) -> None:
    """List users, their roles, restore restrictions and logon locks."""
    from openflr.core.users import account_key

    service = _service(config_file)
    accounts = service.users.list()
    all_locks = service.throttle.locks()
    locks: dict[str, list[Any]] = {}
    for lock in all_locks:
        if lock.kind == "pair":
            locks.setdefault(lock.account, []).append(lock)
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "name": u.name,
                        "role": u.role.value,
                        "inplace_only": u.inplace_only,
                        "allowed_extensions": list(u.allowed_extensions),
                        "restore_scope": list(u.restore_scope),
                        "created": u.created_at.isoformat(),
                        "locked": bool(locks.get(account_key(u.name))),
                        "locks": [
                            {"address": lock.address, "until": _epoch_iso(lock.until)}
                            for lock in locks.get(account_key(u.name), [])
                        ],
                    }
                    for u in accounts
                ],
                indent=1,
            )
        )
        return
    table = Table("name", "role", "in-place only", "extensions", "scope", "created (UTC)", "logon")
    for user in accounts:
        table.add_row(
            *_cells(
                user.name,
                user.role.value,
                "yes" if user.inplace_only else "no",
                ",".join(user.allowed_extensions) or "any",
                ", ".join(user.restore_scope) or "all VMs",
                user.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                _locked_text(locks.get(account_key(user.name), [])),
            )
        )
    console.print(table)
    for lock in all_locks:
        if lock.kind != "pair":
            console.print(
                f"address {lock.address} is locked for every account until {_epoch_time(lock.until)} UTC",
                markup=False,
                highlight=False,
            )


def _cells(*values: str) -> list[Text]:
    """Table cells shown as they are: user names, paths and messages are data, not Rich markup."""
    return [Text(v) for v in values]


def _epoch_iso(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).isoformat(timespec="seconds")


def _epoch_time(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _locked_text(locks: list[Any]) -> str:
    if not locks:
        return "ok"
    return "; ".join(f"locked from {lock.address} until {_epoch_time(lock.until)}" for lock in locks)


@users.command("unlock")
@click.argument("name", required=False)
@click.option(
    "--address",
    default=None,
    help="Only logons from this client address. Without NAME: the address's own lock "
    "(password spraying) and every account's lock from it.",
)
@config_option
def users_unlock(name: str | None, address: str | None, config_file: Path | None) -> None:
    """Lift the logon locks of NAME (from every address unless --address); works while serving."""
    from openflr.core.throttle import describe

    if name is None and address is None:
        raise click.UsageError("name a user, an --address, or both")
    service = _service(config_file)
    lifted = service.throttle.unlock(name, address)
    for lock in lifted:
        console.print(f"unlocked {describe(lock)}", markup=False, highlight=False)
    if not lifted:
        what = " from ".join(x for x in (f"account {name!r}" if name else "", address or "") if x)
        console.print(f"no logon locks on {what}", markup=False, highlight=False)
    if name is not None and service.users.get(name) is None:
        err_console.print(
            f"note: there is no user {name!r} (locks apply to any name tried)", markup=False, highlight=False
        )


@users.command("locks")
@click.option("--json", "as_json", is_flag=True, help="Print the locks as JSON.")
@config_option
def users_locks(as_json: bool, config_file: Path | None) -> None:
    """List logon locks in force, also of names that are no user and of whole addresses."""
    from openflr.core.throttle import describe

    locks = _service(config_file).throttle.locks()
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "kind": lock.kind,
                        "account": lock.account,
                        "address": lock.address,
                        "failures": lock.failures,
                        "until": _epoch_iso(lock.until),
                    }
                    for lock in locks
                ],
                indent=1,
            )
        )
        return
    if not locks:
        console.print("no logon locks", highlight=False)
    for lock in locks:
        console.print(
            f"{describe(lock)}: {lock.failures} failed logons, locked until {_epoch_time(lock.until)} UTC",
            markup=False,
            highlight=False,
        )


@main.command()
@click.option("--user", default=None, help="Only this user's records.")
@click.option("--action", type=click.Choice(["download", "restore", "restore-permissions"]), default=None)
@click.option("--result", type=click.Choice(list(AUDIT_RESULTS)), default=None)
@click.option("--vm", default=None, help="Only VMs whose name contains this text.")
@click.option("--since", type=click.DateTime(), default=None, help="Records started at or after (UTC).")
@click.option("--until", type=click.DateTime(), default=None, help="Records started before (UTC).")
@click.option("--limit", type=click.IntRange(1, 1_000_000), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the records as JSON.")
@config_option
def audit(
    user: str | None,
    action: str | None,
    result: str | None,
    vm: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    as_json: bool,
    config_file: Path | None,
) -> None:
    """Show the audit log of downloads and restores, newest first."""
    from openflr.core.audit import AuditFilter, AuditLog
    from openflr.store.db import Database

    settings = settings_from(config_file)
    log = AuditLog(Database(settings.database_url, auto_upgrade=settings.store.auto_upgrade))
    records = log.query(
        AuditFilter(
            user=user,
            action=action,
            result=result,
            vm=vm,
            since=since.replace(tzinfo=UTC) if since else None,
            until=until.replace(tzinfo=UTC) if until else None,
        ),
        limit=limit,
    )
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in records], indent=1, default=str, ensure_ascii=False))
        return
    table = Table(
        "started (UTC)",
        "user",
        "client",
        "action",
        "vm",
        "point (UTC)",
        "path",
        "target",
        "bytes",
        "items",
        "failed",
        "result",
        "seconds",
        "message",
    )
    for r in records:
        seconds = f"{(r.ended_at - r.started_at).total_seconds():.1f}" if r.ended_at else ""
        table.add_row(
            *_cells(
                r.started_at.strftime("%Y-%m-%d %H:%M:%S"),
                r.user,
                r.client,
                r.action,
                r.vm,
                r.point_time.strftime("%Y-%m-%d %H:%M:%S") if r.point_time else "",
                r.path,
                r.target,
                str(r.bytes),
                str(r.items),
                str(r.failed_items),
                r.result,
                seconds,
                r.message[:200],
            )
        )
    console.print(table)


# The file catalog's commands (find, versions, diff, catalog) live in their own module.
from openflr import catalogcli as _catalogcli  # noqa: E402, F401
from openflr import dbcli as _dbcli  # noqa: E402, F401
