"""Settings: defaults, a TOML file, then ``OPENFLR_*`` environment variables (highest precedence).

The TOML file is ``--config``, else ``OPENFLR_CONFIG``, else ``openflr.toml`` in the data directory
when it exists (``OPENFLR_DATA_DIR`` or the platform's default).

Every setting lives in a section of the TOML file (``[server] port = 9398``) and can be overridden by
``OPENFLR_<SECTION>_<NAME>`` (``OPENFLR_SERVER_PORT=9443``). ``OPENFLR_DATA_DIR`` and
``OPENFLR_CONFIG`` are the two short forms every command honours.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import os
import socket
import tempfile
import tomllib
import types
import typing
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

ENV_PREFIX = "OPENFLR_"


class ConfigError(ValueError):
    """The configuration file or an environment override is invalid."""


@dataclass
class ServerSettings:
    host: str = "0.0.0.0"
    port: int = 9398
    http: bool = False
    """Serve plain HTTP instead of HTTPS."""
    tls_cert: str = ""
    """PEM certificate (chain) to serve; empty means a self-signed one kept in the data directory."""
    tls_key: str = ""
    max_body_bytes: int = 1024 * 1024
    """Largest request body accepted (413 above it)."""
    http_impl: str = "httptools"
    """uvicorn HTTP/1.1 implementation: ``httptools`` (fast) or ``h11``."""
    log_level: str = "info"
    log_format: str = "text"
    """``text`` (one escaped line per record) or ``json`` (one JSON object per line)."""
    public_url: str = ""
    """The address clients use (``https://flr.example.com``, with a path prefix if the proxy adds one):
    every Href and Location is built on it. Empty: on the scheme and Host of each request."""
    trusted_proxies: str = ""
    """Comma-separated addresses of reverse proxies whose ``X-Forwarded-For`` names the client (for
    logs and logon throttling). Empty: the TCP peer is the client, whatever headers say."""
    grace_seconds: float = 30.0
    """On SIGTERM: seconds running requests (downloads) and restores may take to finish; then they are
    cut, and restores still running end Failed with a message saying the node stopped."""


@dataclass
class SessionSettings:
    idle_timeout: float = 900.0
    """Seconds without a request after which a logon session (and its mounts) ends."""
    sweep_interval: float = 5.0
    """How often expired sessions are looked for and torn down, in seconds."""
    max_per_user: int = 50
    recheck_seconds: float = 5.0
    """How long a node trusts its cached copy of a session before reading it from the database again:
    a logout or expiry on another node is seen here within this many seconds."""


@dataclass
class ApiSettings:
    json_casing: str = "pascal"
    """``pascal`` (EM 12 and older: ``SessionId``) or ``camel`` (EM 13: ``sessionId``)."""
    default_page_size: int = 100
    max_page_size: int = 5000
    """Largest ``pageSize`` honoured for listings and queries; larger values are clamped."""


@dataclass
class MountSettings:
    keep_idle: int = 8
    """Opened points kept ready after their last unmount (a remount then costs nothing)."""
    keep_idle_seconds: float = 300.0
    max_per_session: int = 64
    folder_readers: int = 2
    """Worker processes that read big folders for paged listings, on other cores than the server's
    (0: read them in the server process)."""
    folder_reader_min_entries: int = 5000
    """Folders known to hold at least this many entries go to a folder reader."""


@dataclass
class GuestAccess:
    """How openflr writes into a VM's guest for restores to the original location."""

    vm: str = "*"
    """VM name pattern (fnmatch, case-insensitive) matching the source or the replica name."""
    username: str = ""
    """``DOMAIN\\user`` for SMB, the SSH user for SFTP; a request's GuestCredentials win over it."""
    password: str = ""
    """Prefer ``password_env`` or ``password_file``: this file is then not a secret."""
    password_env: str = ""
    """Name of an environment variable holding the password."""
    password_file: str = ""
    """A file whose first line is the password."""
    targets: dict[str, str] = field(default_factory=dict)
    """Guest root (``C:``, ``/``, ``/srv``) -> ``smb://host/C$``, ``sftp://host/``, ``file:///path``."""

    def resolve_password(self) -> str:
        if self.password_env:
            return os.environ.get(self.password_env, "")
        if self.password_file:
            try:
                return Path(self.password_file).expanduser().read_text(encoding="utf-8").splitlines()[0]
            except (OSError, IndexError):
                return ""
        return self.password


@dataclass
class RestoreSettings:
    known_hosts: str = ""
    """OpenSSH known_hosts file for SFTP targets; empty means ``<data_dir>/known_hosts``."""
    check_host_keys: bool = True
    """Turning this off accepts any SSH host key (every connection then logs a warning)."""
    connect_timeout: float = 15.0
    max_parallel: int = 4
    """Restores to original locations running at once; more wait their turn."""


@dataclass
class SecuritySettings:
    """Logon abuse defences (``[security]``)."""

    logon_free_failures: int = 3
    """Failed logons per account or address before each further attempt is delayed."""
    logon_max_delay: float = 5.0
    """Cap of the growing delay (seconds) after failed logons."""
    lock_after: int = 10
    """Failed logons of one account from one address before that pair is locked."""
    lock_seconds: float = 900.0
    """How long a lock lasts (``openflr users unlock`` lifts it sooner)."""
    logon_base_delay: float = 0.25
    """First delay after the free failures; each further failure doubles it (up to the cap)."""
    spray_lock_accounts: int = 10
    """Different account names that failed from one address before that address is locked
    (password spraying); the lock then refuses every account from that address."""
    failure_window: float = 900.0
    """Seconds without a failed logon after which an account's or address's count starts afresh."""


@dataclass
class LimitSettings:
    """Request and work limits (``[limits]``)."""

    max_url_bytes: int = 8192
    max_header_bytes: int = 16384
    max_query_params: int = 64
    max_concurrent_mounts: int = 64
    """Mounts being opened at once, server-wide; more get 503 with Retry-After."""
    max_concurrent_downloads: int = 64
    """Downloads streaming at once, server-wide; more get 503 with Retry-After."""
    header_timeout: float = 10.0
    """Seconds a request's line and headers may take (from their first byte), and a new connection
    may stay silent; then 408 and the connection is closed. Bodies and downloads are not limited."""
    max_connections_per_address: int = 256
    """Connections one client address may hold at once; more are answered 503 and closed."""
    mount_timeout: float = 120.0
    """A mount that takes longer fails its task (hostile or broken images)."""


@dataclass
class DatastoreSettings:
    name: str
    """Stable name; replica and point ids derive from it (not from the path), so a datastore can move."""
    path: Path
    job: str = ""
    """The replication job whose replicas live here (shown as the replica's JobName)."""
    replica_suffix: str = "_replica"
    """Suffix the replication job appends to replica VM names; removed to show the source VM name."""
    guests: list[GuestAccess] = field(default_factory=list)
    """Restore targets and credentials of the VMs in this datastore ([[datastores.guests]])."""


@dataclass
class InventorySettings:
    rescan_interval: float = 300.0
    """Seconds between background rescans of the datastores (0 turns them off)."""
    server_name: str = ""
    """Name of this node as the EM backup server; empty means the host name."""
    max_depth: int = 4
    """How many folder levels below a datastore root are searched for VM folders."""


@dataclass
class CatalogSettings:
    """The file catalog (docs/CATALOG.md): what each point holds, for search, versions and diffs."""

    enabled: bool = True
    """Build catalogs in the background after each scan that finds new points."""
    workers: int = 1
    """Builder processes at a time (each uses up to one core, at a lower priority than the server)."""
    directory: str = ""
    """Where catalog files live; empty means ``catalog/`` in the data directory."""


@dataclass
class StoreSettings:
    """The database (``[store]``): SQLite in the data directory unless ``url`` names another."""

    url: str = field(default="", repr=False)  # it may hold a password
    """SQLAlchemy URL, e.g. ``postgresql+psycopg://user:password@host/db``; empty means the SQLite file
    ``openflr.db`` in the data directory. The password is never logged."""
    auto_upgrade: bool = True
    """Upgrade a PostgreSQL schema at start-up (SQLite always is); off: ``openflr db upgrade`` does it."""


@dataclass
class ClusterSettings:
    """Nodes sharing one database (``[cluster]``, docs/DEPLOYMENT.md "Several nodes")."""

    node_name: str = ""
    """This node's name in the database; empty: the host name and the port (``flr1:9398``)."""
    heartbeat_seconds: float = 5.0
    """How often this node writes its heartbeat (and looks at the others')."""
    dead_after_seconds: float = 30.0
    """A node whose heartbeat is older than this is taken as stopped: another node fails its running
    restore tasks and marks its running audit records interrupted."""


@dataclass
class MetricsSettings:
    """``/metrics`` in the Prometheus text format (docs/DEPLOYMENT.md, "Monitoring")."""

    enabled: bool = False
    allow: str = "127.0.0.1/32, ::1/128"
    """Comma-separated networks (CIDR) served without a logon; others need an administrator's session."""


@dataclass
class Settings:
    data_dir: Path = field(default_factory=lambda: Path(platformdirs.user_data_dir("openflr")))
    server: ServerSettings = field(default_factory=ServerSettings)
    sessions: SessionSettings = field(default_factory=SessionSettings)
    api: ApiSettings = field(default_factory=ApiSettings)
    inventory: InventorySettings = field(default_factory=InventorySettings)
    mounts: MountSettings = field(default_factory=MountSettings)
    restore: RestoreSettings = field(default_factory=RestoreSettings)
    security: SecuritySettings = field(default_factory=SecuritySettings)
    limits: LimitSettings = field(default_factory=LimitSettings)
    catalog: CatalogSettings = field(default_factory=CatalogSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    cluster: ClusterSettings = field(default_factory=ClusterSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    datastores: list[DatastoreSettings] = field(default_factory=list)
    config_file: Path | None = None

    @property
    def database_url(self) -> str:
        return self.store.url or f"sqlite:///{self.data_dir / 'openflr.db'}"

    @property
    def node_name(self) -> str:
        """``[cluster] node_name``, or the host name and the port."""
        return self.cluster.node_name.strip() or f"{socket.gethostname()}:{self.server.port}"

    @property
    def catalog_dir(self) -> Path:
        return (
            Path(self.catalog.directory).expanduser() if self.catalog.directory else self.data_dir / "catalog"
        )

    @property
    def tls_dir(self) -> Path:
        return self.data_dir / "tls"

    @property
    def known_hosts(self) -> Path:
        return (
            Path(self.restore.known_hosts).expanduser()
            if self.restore.known_hosts
            else (self.data_dir / "known_hosts")
        )


_SECTIONS = {
    "server": ServerSettings,
    "sessions": SessionSettings,
    "api": ApiSettings,
    "inventory": InventorySettings,
    "mounts": MountSettings,
    "restore": RestoreSettings,
    "security": SecuritySettings,
    "limits": LimitSettings,
    "catalog": CatalogSettings,
    "metrics": MetricsSettings,
    "cluster": ClusterSettings,
    "store": StoreSettings,
}


def _coerce(value: Any, target: Any, where: str) -> Any:
    """Convert a TOML or environment value to the declared field type."""
    if isinstance(target, types.UnionType) or typing.get_origin(target) is typing.Union:
        target = next(t for t in typing.get_args(target) if t is not type(None))
    if target is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on"):
            return True
        if isinstance(value, str) and value.strip().lower() in ("0", "false", "no", "off", ""):
            return False
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if target in (int, float):
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        try:
            return target(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected a number, got {value!r}") from None
    if target is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    if target is Path:
        return Path(str(value)).expanduser()
    return value


def _port(value: Any, where: str) -> None:
    if not 1 <= value <= 65535:
        raise ConfigError(f"{where}: expected a TCP port from 1 to 65535, got {value!r}")


def _public_url(url: Any, where: str) -> None:
    parts = urllib.parse.urlsplit(url)
    if url and (parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment):
        raise ConfigError(f"{where}: expected an http:// or https:// address without a query, got {url!r}")


def _workers(value: Any, where: str) -> None:
    if not 0 <= value <= 64:
        raise ConfigError(f"{where}: expected a number of processes from 0 to 64, got {value!r}")


def _store_url(url: Any, where: str) -> None:
    # The message never repeats the URL: it may hold a password.
    scheme = url.partition(":")[0].lower()
    if url and (not url.partition("://")[1] or scheme.split("+")[0] not in ("sqlite", "postgresql")):
        raise ConfigError(f"{where}: expected a postgresql+psycopg://... or sqlite:///... URL")


def _log_format(value: Any, where: str) -> None:
    if value not in ("text", "json"):
        raise ConfigError(f"{where}: expected text or json, got {value!r}")


def _networks(value: Any, where: str) -> None:
    for part in value.split(","):
        try:
            ipaddress.ip_network(part.strip(), strict=False)
        except ValueError:
            raise ConfigError(f"{where}: {part.strip()!r} is not an address or network (CIDR)") from None


_CHECKS: dict[tuple[type, str], Callable[[Any, str], None]] = {
    (ServerSettings, "log_format"): _log_format,
    (MetricsSettings, "allow"): _networks,
    (StoreSettings, "url"): _store_url,
    (ServerSettings, "port"): _port,
    (CatalogSettings, "workers"): _workers,
    (ServerSettings, "public_url"): _public_url,
}
"""Settings whose values must pass more than their type: each check raises a ConfigError."""


def _set(obj: Any, key: str, value: Any, hint: Any, where: str) -> None:
    value = _coerce(value, hint, where)
    check = _CHECKS.get((type(obj), key))
    if check is not None:
        check(value, where)
    setattr(obj, key, value)


def _apply_section(obj: Any, values: dict[str, Any], where: str) -> None:
    hints = typing.get_type_hints(type(obj))
    names = {f.name for f in dataclasses.fields(obj)}
    for key, value in values.items():
        if key not in names:
            raise ConfigError(f"{where}: unknown setting {key!r}")
        _set(obj, key, value, hints[key], f"{where}.{key}")


def _apply_environment(settings: Settings, section: str, name: str, value: str, variable: str) -> None:
    """One ``OPENFLR_<SECTION>_<NAME>`` override; errors name the variable, not a file position."""
    obj = getattr(settings, section)
    where = f"environment variable {variable}"
    if name not in {f.name for f in dataclasses.fields(obj)}:
        raise ConfigError(f"{where}: unknown setting {name!r} of [{section}]")
    _set(obj, name, value, typing.get_type_hints(type(obj))[name], where)


def load_settings(config_file: str | Path | None = None, env: dict[str, str] | None = None) -> Settings:
    """Build the settings from defaults, the TOML file (if any) and the environment."""
    env = dict(os.environ) if env is None else env
    settings = Settings()
    path = config_file or env.get(ENV_PREFIX + "CONFIG") or _data_dir_config(env)
    if path:
        settings.config_file = Path(path).expanduser()
        try:
            raw = tomllib.loads(settings.config_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"configuration file {settings.config_file} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{settings.config_file}: {exc}") from None
        apply_mapping(settings, raw, str(settings.config_file))
    for key, value in env.items():
        if not key.startswith(ENV_PREFIX) or key == ENV_PREFIX + "CONFIG":
            continue
        rest = key[len(ENV_PREFIX) :].lower()
        if rest == "data_dir":
            settings.data_dir = Path(value).expanduser()
            continue
        section, _, name = rest.partition("_")
        if section in _SECTIONS and name:
            _apply_environment(settings, section, name, value, key)
    settings.data_dir = settings.data_dir.expanduser().absolute()
    return settings


DATA_DIR_CONFIG = "openflr.toml"
"""Read from the data directory when no configuration file is named (``openflr demo`` writes one)."""


def _data_dir_config(env: dict[str, str]) -> Path | None:
    data_dir = env.get(ENV_PREFIX + "DATA_DIR") or Settings().data_dir
    candidate = Path(data_dir).expanduser() / DATA_DIR_CONFIG
    try:
        return candidate if candidate.is_file() else None
    except OSError:
        return None


def make_private_dir(path: Path) -> None:
    """Make ``path`` (mode 0700) if it is missing, and take group and other access away if it has
    them: it holds password hashes, the audit log and secrets (logged when tightened)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    tighten_dir(path)


def tighten_dir(path: Path) -> None:
    """Take group and other access away from the data directory ``path``, saying so in the log."""
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        path.chmod(mode & 0o700)
        logging.getLogger(__name__).warning(
            "data directory %s was readable by other accounts (mode %o): now %o", path, mode, mode & 0o700
        )


def check_data_dir(path: Path) -> None:
    """Make the data directory if it is missing and check that files can be created in it, so that
    a bad one is a clear ConfigError before anything else runs (not a database error later)."""
    where = f"cannot use data directory {path}"
    try:
        if path.exists() and not path.is_dir():
            raise ConfigError(f"{where}: it is a file, not a directory")
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{where}: cannot create it: {exc.strerror or exc}") from None
    try:
        fd, probe = tempfile.mkstemp(prefix=".openflr-write-check-", dir=path)
    except OSError as exc:
        raise ConfigError(f"{where}: cannot create files in it: {exc.strerror or exc}") from None
    os.close(fd)
    os.unlink(probe)
    tighten_dir(path)


def apply_mapping(settings: Settings, raw: dict[str, Any], where: str) -> None:
    """Apply a parsed TOML document to ``settings`` (unknown sections or keys are errors)."""
    for key, value in raw.items():
        if key == "data_dir":
            settings.data_dir = Path(str(value)).expanduser()
        elif key == "datastores":
            settings.datastores = [
                _datastore(item, f"{where} [[datastores]]") for item in _table_list(value, where)
            ]
        elif key in _SECTIONS:
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: [{key}] must be a table")
            _apply_section(getattr(settings, key), value, f"{where} [{key}]")
        else:
            raise ConfigError(f"{where}: unknown section or setting {key!r}")


def _table_list(value: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ConfigError(f"{where}: expected an array of tables ([[...]])")
    return value


def _datastore(raw: dict[str, Any], where: str) -> DatastoreSettings:
    if "name" not in raw or "path" not in raw:
        raise ConfigError(f"{where}: every datastore needs a name and a path")
    store = DatastoreSettings(name=str(raw["name"]), path=Path(str(raw["path"])))
    here = f"{where} {store.name!r}"
    _apply_section(store, {k: v for k, v in raw.items() if k not in ("name", "guests")}, here)
    store.guests = [guest_access(g, f"{here} [[guests]]") for g in _table_list(raw.get("guests", []), here)]
    store.path = store.path.expanduser()
    return store


def guest_access(raw: dict[str, Any], where: str) -> GuestAccess:
    """A ``[[datastores.guests]]`` table (or a manifest's ``[restore]`` table) as ``GuestAccess``."""
    access = GuestAccess()
    targets = raw.get("targets", {})
    if not isinstance(targets, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in targets.items()
    ):
        raise ConfigError(f'{where}: targets must map guest roots to URLs ({{ "C:" = "smb://host/C$" }})')
    _apply_section(access, {k: v for k, v in raw.items() if k != "targets"}, where)
    access.targets = dict(targets)
    from openflr.restore.targets.base import TargetAddress

    for root, url in targets.items():
        try:
            TargetAddress.parse(url)
        except ValueError as exc:
            raise ConfigError(f"{where}: targets[{root!r}]: {exc}") from None
    return access
