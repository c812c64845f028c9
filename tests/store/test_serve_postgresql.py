"""A real ``openflr serve`` whose database is PostgreSQL: log on, list, mount, browse, download; the
users, the logon counters and the audit log are all in PostgreSQL, none in the data directory."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import psycopg

from tests.api.flr import headers, list_all, mount, point_href, roots
from tests.imagebuilder import Fixtures
from tests.store.postgres import new_database
from tests.support import Api, cli, datastore_config, plain_client, run_server


def test_logon_list_mount_browse_and_download(postgres_url: str, fixtures: Fixtures, tmp_path: Path) -> None:
    url = new_database(postgres_url)
    env = {"OPENFLR_STORE_URL": url}
    data = tmp_path / "data"
    cli(data, "users", "add", "flrop", "--role", "RestoreOperator", stdin="Secret1\n", env=env)
    with (
        run_server(data, https=False, config=datastore_config(fixtures, ("qcow2",)), env=env) as server,
        plain_client() as http,
    ):
        api = Api(http, server.base, "http")
        bad = api.post("/api/sessionMngr/?v=latest", auth=("flrop", "wrong"))
        assert bad.status_code == 401
        token = api.logon("flrop")
        replicas = api.get("/api/replicas?format=Entity", headers=headers(token)).json()["Replicas"]
        assert any(r["Name"].startswith("lin-web01") for r in replicas)
        mounted = mount(api, token, point_href(api, token, "KVM", "lin-web01"))
        top = roots(api, token, mounted)
        assert list(top) == ["/", "/scratch", "/srv"]
        _files, dirs = list_all(api, token, top["/"])
        assert "etc" in {d["Name"] for d in dirs}
        download = api.get(f"{mounted}/{quote('etc/hostname')}?action=download", headers=headers(token))
        assert download.status_code == 200 and download.content.startswith(b"lin-web01")
    assert not (data / "openflr.db").exists()
    with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
        assert conn.execute("SELECT name FROM users").fetchall() == [("flrop",)]
        failures = conn.execute("SELECT kind, failures FROM logon_failures ORDER BY kind").fetchall()
        assert ("account", 1) in failures  # the wrong password, counted in PostgreSQL
        audit = conn.execute('SELECT "user", action, path, result FROM audit').fetchall()
        assert [(u, a, r) for u, a, _path, r in audit] == [("flrop", "download", "success")]
        assert audit[0][2].endswith("hostname")
