"""Settings: defaults, TOML file, environment overrides, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from openflr.config import ConfigError, load_settings


def test_defaults(tmp_path: Path) -> None:
    s = load_settings(env={})
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


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "none.toml", env={})
