"""Settings: defaults, TOML file, environment overrides, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from openflr.config import ConfigError, load_settings


def test_defaults(tmp_path: Path) -> None:
    s = load_settings(env={"OPENFLR_DATA_DIR": str(tmp_path)})
    assert s.server.port == 9398 and not s.server.http
    assert s.sessions.idle_timeout == 900
    assert s.data_dir.is_absolute()
    assert s.database_url.endswith("openflr.db")


def test_file_then_environment(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        f'data_dir = "{tmp_path / "d"}"\n[server]\nport = 1234\nhttp = true\n'
        '[sessions]\nidle_timeout = 60\n[api]\njson_casing = "camel"\n'
    )
    s = load_settings(
        env={
            "OPENFLR_CONFIG": str(cfg),
            "OPENFLR_SERVER_PORT": "4321",
            "OPENFLR_SESSIONS_IDLE_TIMEOUT": "2.5",
        }
    )
    assert s.server.port == 4321 and s.server.http
    assert s.sessions.idle_timeout == 2.5
    assert s.api.json_casing == "camel"
    assert s.data_dir == tmp_path / "d"
    s2 = load_settings(cfg, env={"OPENFLR_DATA_DIR": str(tmp_path / "e")})
    assert s2.data_dir == tmp_path / "e"


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ("[server]\nport = 'x'\n", {}, "expected a number"),
        ("[server]\nnope = 1\n", {}, "unknown setting"),
        ("[bogus]\n", {}, "unknown section"),
        ("[server\n", {}, "c.toml"),
        ("", {"OPENFLR_SERVER_HTTP": "maybe"}, "true or false"),
    ],
)
def test_errors(tmp_path: Path, text: str, env: dict[str, str], message: str) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_settings(cfg, env=env)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "OPENFLR_SERVER_PORT",
            "abc",
            "environment variable OPENFLR_SERVER_PORT: expected a number, got 'abc'",
        ),
        (
            "OPENFLR_SERVER_HTTP",
            "maybe",
            "environment variable OPENFLR_SERVER_HTTP: expected true or false, got 'maybe'",
        ),
        (
            "OPENFLR_SERVER_PORT",
            "99999",
            "environment variable OPENFLR_SERVER_PORT: expected a TCP port from 1 to 65535, got 99999",
        ),
        (
            "OPENFLR_SERVER_NOPE",
            "1",
            "environment variable OPENFLR_SERVER_NOPE: unknown setting 'nope' of [server]",
        ),
    ],
)
def test_environment_errors_name_the_variable(
    tmp_path: Path, variable: str, value: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(env={"OPENFLR_DATA_DIR": str(tmp_path), variable: value})
    assert str(caught.value) == message


@pytest.mark.parametrize("port", [0, -1, 65536, 99999])
def test_ports_outside_1_to_65535_are_refused(tmp_path: Path, port: int) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f"[server]\nport = {port}\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(cfg, env={})
    assert str(caught.value) == f"{cfg} [server].port: expected a TCP port from 1 to 65535, got {port}"
    for edge in ("1", "65535"):
        env = {"OPENFLR_DATA_DIR": str(tmp_path), "OPENFLR_SERVER_PORT": edge}
        assert load_settings(env=env).server.port == int(edge)


def test_data_directory_checks(tmp_path: Path) -> None:
    from openflr.config import check_data_dir

    check_data_dir(tmp_path / "new" / "data")
    assert (tmp_path / "new" / "data").is_dir()
    assert list((tmp_path / "new" / "data").iterdir()) == []  # the write check leaves nothing behind
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    for path, problem in [
        (a_file, "it is a file, not a directory"),
        (a_file / "data", "cannot create it: Not a directory"),
        (Path("/proc/openflr"), "cannot create it: No such file or directory"),
    ]:
        with pytest.raises(ConfigError) as caught:
            check_data_dir(path)
        assert str(caught.value) == f"cannot use data directory {path}: {problem}"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "none.toml", env={})


def test_guest_access_in_datastores(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("from-a-file\nsecond line ignored\n")
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        f"""
[restore]
check_host_keys = false
connect_timeout = 3

[[datastores]]
name = "prod"
path = "{tmp_path}"

[[datastores.guests]]
vm = "fs*"
username = "CORP\\\\restore"
password_env = "FS_PASSWORD"
targets = {{ "C:" = "smb://fs01.corp/C$", "D:" = "smb://fs01.corp:4450/D$/data" }}

[[datastores.guests]]
vm = "web01"
username = "restore"
password_file = "{secret}"
targets = {{ "/" = "sftp://web01:2222/", "/srv" = "file:///mnt/web01-srv" }}
"""
    )
    s = load_settings(cfg, env={"FS_PASSWORD": "from-the-env"})
    assert not s.restore.check_host_keys and s.restore.connect_timeout == 3
    assert s.known_hosts == s.data_dir / "known_hosts"
    fs, web = s.datastores[0].guests
    assert (fs.vm, fs.username, fs.targets["D:"]) == ("fs*", "CORP\\restore", "smb://fs01.corp:4450/D$/data")
    import os

    os.environ["FS_PASSWORD"] = "from-the-env"
    try:
        assert fs.resolve_password() == "from-the-env"
    finally:
        del os.environ["FS_PASSWORD"]
    assert web.resolve_password() == "from-a-file"
    assert web.targets == {"/": "sftp://web01:2222/", "/srv": "file:///mnt/web01-srv"}


@pytest.mark.parametrize(
    ("guest", "message"),
    [
        ('targets = { "C:" = "ftp://x/" }', "scheme must be smb://, sftp:// or file://"),
        ('targets = { "C:" = "smb://user:pw@x/C$" }', "not in the URL"),
        ('targets = { "C:" = "smb://host" }', "name the share"),
        ('targets = { "C:" = "file://host/x" }', "file:// targets are local"),
        ('targets = { "C:" = "smb://x/C$/../Windows" }', "not a valid file or folder name"),
        ('targets = "smb://x/C$"', "targets must map guest roots"),
        ('colour = "blue"', "unknown setting 'colour'"),
    ],
)
def test_bad_guest_access(tmp_path: Path, guest: str, message: str) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[[datastores]]\nname = "d"\npath = "/x"\n[[datastores.guests]]\nvm = "a"\n{guest}\n')
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("*", r"\*")):
        load_settings(cfg, env={})


def test_the_data_directory_holds_the_default_configuration(tmp_path: Path) -> None:
    (tmp_path / "openflr.toml").write_text("[server]\nport = 1111\n")
    s = load_settings(env={"OPENFLR_DATA_DIR": str(tmp_path)})
    assert s.server.port == 1111 and s.config_file == tmp_path / "openflr.toml"
    named = tmp_path / "other.toml"
    named.write_text("[server]\nport = 2222\n")
    assert load_settings(named, env={"OPENFLR_DATA_DIR": str(tmp_path)}).server.port == 2222
    by_env = load_settings(env={"OPENFLR_DATA_DIR": str(tmp_path), "OPENFLR_CONFIG": str(named)})
    assert by_env.server.port == 2222
    assert load_settings(env={"OPENFLR_DATA_DIR": str(tmp_path / "none")}).config_file is None
