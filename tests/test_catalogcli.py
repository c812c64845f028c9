"""``openflr find``, ``versions``, ``diff`` and ``catalog``, run as real processes over the fixture
datastore, against the ground truth of tests/imagebuilder/trees.py."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.imagebuilder import Fixtures
from tests.imagebuilder.trees import Tree, apply, windows_trees
from tests.support import cli, datastore_config

WIN = "Win File Server"
LIN = "lin-web01"


def _truth() -> list[Tree]:
    """The Windows VM's C: volume at points 1, 2 and 3."""
    trees, changes = windows_trees()
    p1 = trees["c"]
    p2 = apply(p1, changes["p2"])
    return [p1, p2, apply(p2, changes["p3"])]


TRUTH = _truth()


class Openflr:
    """The command line over one data directory and the qcow2 fixture datastore."""

    def __init__(self, data_dir: Path, config: Path) -> None:
        self.data_dir, self.config = data_dir, config

    def run(self, *args: str, check: bool = True) -> Any:
        return cli(self.data_dir, *args, env={"OPENFLR_CONFIG": str(self.config)}, check=check)

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "--json").stdout)

    def fails(self, *args: str) -> str:
        """The one error line of a command that must exit with status 1."""
        proc = self.run(*args, check=False)
        assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("Error: "), proc.stderr
        return str(lines[0].removeprefix("Error: "))


def _openflr(root: Path, fixtures: Fixtures) -> Openflr:
    root.mkdir(parents=True, exist_ok=True)
    config = root / "c.toml"
    config.write_text(datastore_config(fixtures, ("qcow2",)))
    return Openflr(root / "data", config)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, fixtures: Fixtures) -> Openflr:
    """Every point of the datastore catalogued by ``openflr catalog build``."""
    app = _openflr(tmp_path_factory.mktemp("catalogcli"), fixtures)
    out = app.run("catalog", "build")
    assert "catalogued 6 points" in out.stdout
    assert re.search(rf"{WIN} 2026-11-03 21:00:12 .* (\d+)/\1 Ready", out.stderr), out.stderr
    return app


def test_status_shows_every_point_ready(built: Openflr) -> None:
    doc = built.json("catalog", "status")
    points = doc["points"]
    assert [(p["vm_name"], p["index"], p["state"]) for p in points] == [
        (LIN, 1, "Ready"),
        (LIN, 2, "Ready"),
        (LIN, 3, "Ready"),
        (WIN, 1, "Ready"),
        (WIN, 2, "Ready"),
        (WIN, 3, "Ready"),
    ]
    assert [p["created"] for p in points[3:]] == [
        "2026-11-01T21:00:00Z",
        "2026-11-02T21:00:00Z",
        "2026-11-03T21:00:12.407000Z",
    ]
    # The Windows VM holds 10,000 files in Many/ alone, besides the rest of C: and the ESP.
    assert all(p["entries"] > 10_000 for p in points[3:])
    assert all(v["catalog_bytes"] > 0 for v in doc["vms"])
    one = built.json("catalog", "status", WIN.lower())
    assert [p["point_id"] for p in one["points"]] == [p["point_id"] for p in points[3:]]
    table = built.run("catalog", "status").stdout
    assert "6 of 6 points catalogued" in table and table.count("Ready") == 6


def _hits(doc: Any) -> dict[str, list[int]]:
    return {h["path"]: [p["index"] for p in h["points"]] for h in doc["hits"]}


def test_find_lists_each_hit_with_the_points_that_hold_it(built: Openflr) -> None:
    assert _hits(built.json("find", WIN, "new")) == {
        "C:/new_in_p2.txt": [2, 3],
        "C:/Documents/new in p3 新しい.txt": [3],
    }
    assert _hits(built.json("find", WIN, "todelete")) == {"C:/Documents/todelete.txt": [1]}
    quarterly = built.json("find", WIN, "QUARTERLY REPORT 2024.DOCX", "--exact")
    assert _hits(quarterly) == {"C:/Documents/Quarterly Report 2024.docx": [1, 2]}
    (hit,) = quarterly["hits"]
    spec = TRUTH[0].files["Documents/Quarterly Report 2024.docx"]
    assert (hit["vm_name"], hit["name"], hit["type"], hit["size"]) == (
        WIN,
        "Quarterly Report 2024.docx",
        "File",
        len(spec.data),
    )
    assert hit["modified"].startswith(re.sub(r"\+00:00$", "", _iso(spec.mtime)))
    # The newest version is shown; each point carries its own.
    report = built.json("find", WIN, "report.txt", "--exact")["hits"][0]
    assert report["size"] == len(TRUTH[2].files["Documents/report.txt"].data)
    assert [p["size"] for p in report["points"]] == [len(t.files["Documents/report.txt"].data) for t in TRUTH]


def _iso(seconds: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(seconds, UTC).isoformat()


def test_find_by_glob_in_one_point_below_a_folder(built: Openflr) -> None:
    """NTFS ignores case: the glob and the folder match whatever case they are given in."""
    doc = built.json("find", WIN, "*.TXT", "--glob", "--under", "C:/documents", "--point", "-1")
    truth = {
        "C:/" + path
        for path in TRUTH[2].files
        if path.startswith("Documents/") and path.casefold().endswith(".txt")
    }
    assert set(_hits(doc)) == truth and "C:/Documents/Mixed Case/ReadMe.TXT" in truth
    assert all(points == [3] for points in _hits(doc).values())
    lower_drive = built.json("find", WIN, "*.TXT", "--glob", "--under", "c:/DOCUMENTS", "--point", "-1")
    assert set(_hits(lower_drive)) == truth  # drive letters ignore case too
    first = built.json("find", WIN, "*.txt", "--glob", "--under", "C:/Documents", "--point", "1")
    assert "C:/Documents/todelete.txt" in _hits(first)
    assert "C:/Documents/new in p3 新しい.txt" not in _hits(first)
    # the id names the same point as its index
    point_1 = built.json("catalog", "status", WIN)["points"][0]["point_id"]
    by_id = built.json("find", WIN, "*.txt", "--glob", "--under", "C:/Documents", "--point", point_1)
    assert _hits(by_id) == _hits(first)
    # Linux file systems keep case
    assert _hits(built.json("find", LIN, "hostname", "--exact")) == {"/etc/hostname": [1, 2, 3]}
    assert _hits(built.json("find", LIN, "HOSTNAME", "--exact")) == {}


def test_find_prints_a_table_with_a_legend_of_the_points(built: Openflr) -> None:
    out = built.run("find", WIN, "new").stdout
    assert re.search(r"C:/new_in_p2\.txt\s+│ File\s+│ 20\s+│ 2026-11-02 20:30:00\s+│ 2,3", out), out
    assert "2 hits" in out
    assert re.search(r"point 3: 2026-11-03 21:00:12 UTC  [0-9a-f-]{36}", out)


def test_versions_with_hashes_match_the_truth(built: Openflr) -> None:
    doc = built.json("versions", WIN, "C:/documents/REPORT.txt", "--hashes")
    found = doc["versions"]
    specs = [t.files["Documents/report.txt"] for t in TRUTH]
    assert [v["index"] for v in found] == [1, 2, 3]
    assert [v["change"] for v in found] == ["Added", "Modified", "Unchanged"]
    assert [v["sha256"] for v in found] == [s.sha256 for s in specs]
    assert [v["size"] for v in found] == [len(s.data) for s in specs]
    assert {v["path"] for v in found} == {"C:/Documents/report.txt"}
    assert found[0]["file_id"] == found[1]["file_id"] is not None
    assert all(v["summary"] is None for v in found)
    # without --hashes the kept digests are still shown; a file never hashed has none
    again = built.json("versions", WIN, "C:/Documents/report.txt")["versions"]
    assert [v["sha256"] for v in again] == [s.sha256 for s in specs]
    assert built.json("versions", WIN, "C:/Documents/empty.txt")["versions"][0]["sha256"] is None
    table = built.run("versions", WIN, "C:/Documents/report.txt", "--hashes").stdout
    assert specs[1].sha256 in table and "Modified" in table


def test_versions_of_a_folder_summarise_the_changes_below_it(built: Openflr) -> None:
    found = built.json("versions", WIN, "C:/Documents")["versions"]
    assert [v["type"] for v in found] == ["Directory"] * 3
    zero = {"Added": 0, "Removed": 0, "Modified": 0, "MetadataChanged": 0}
    assert [v["summary"] for v in found] == [
        None,
        {**zero, "Removed": 1, "Modified": 1},
        {**zero, "Added": 1, "Removed": 1},
    ]
    gone = built.json("versions", WIN, "C:/Documents/todelete.txt")["versions"]
    assert [v["index"] for v in gone] == [1]
    spec = TRUTH[0].files["Documents/todelete.txt"]
    assert hashlib.sha256(spec.data).hexdigest() == spec.sha256  # the truth hashes what it writes


def _file_changes(doc: Any) -> dict[str, str]:
    return {c["path"]: c["change"] for c in doc["changes"] if c["type"] == "File"}


def test_diff_between_points_matches_the_truth(built: Openflr) -> None:
    doc = built.json("diff", WIN, "1", "2")
    assert (doc["vm_name"], doc["from"]["index"], doc["to"]["index"], doc["under"]) == (WIN, 1, 2, "")
    assert _file_changes(doc) == {
        "C:/Documents/report.txt": "Modified",
        "C:/Documents/todelete.txt": "Removed",
        "C:/new_in_p2.txt": "Added",
    }
    changes = {c["path"]: c for c in doc["changes"]}
    assert changes["C:/Documents/todelete.txt"]["after"] is None
    assert changes["C:/new_in_p2.txt"]["before"] is None
    modified = changes["C:/Documents/report.txt"]
    assert (modified["before"]["size"], modified["after"]["size"]) == tuple(
        len(t.files["Documents/report.txt"].data) for t in TRUTH[:2]
    )
    assert [c["path"] for c in doc["changes"]] == sorted(c["path"] for c in doc["changes"])
    last = built.json("diff", WIN, "-2", "-1")
    assert _file_changes(last) == {
        "C:/Program Files/App/config.ini": "Modified",
        "C:/Documents/Quarterly Report 2024.docx": "Removed",
        "C:/Documents/new in p3 新しい.txt": "Added",
    }
    below = built.json("diff", WIN, "1", "3", "--under", "C:/Documents")
    assert _file_changes(below) == {
        "C:/Documents/report.txt": "Modified",
        "C:/Documents/todelete.txt": "Removed",
        "C:/Documents/Quarterly Report 2024.docx": "Removed",
        "C:/Documents/new in p3 新しい.txt": "Added",
    }
    backwards = built.json("diff", WIN, "2", "1")
    assert _file_changes(backwards) == {
        "C:/Documents/report.txt": "Modified",
        "C:/Documents/todelete.txt": "Added",
        "C:/new_in_p2.txt": "Removed",
    }
    assert built.json("diff", WIN, "2", "2")["changes"] == []


def test_diff_prints_a_table_and_the_counts(built: Openflr) -> None:
    out = built.run("diff", WIN, "2", "-1").stdout
    assert re.search(r"Removed\s+│ File\s+│ C:/Documents/Quarterly Report 2024\.docx\s+│ 50,000", out), out
    assert re.search(r"Modified\s+│ File\s+│ C:/Program Files/App/config\.ini", out)
    assert (
        "from point 2 (2026-11-02 21:00:00 UTC) to point 3 (2026-11-03 21:00:12 UTC): "
        "1 Added, 1 Removed, 2 Modified, 0 MetadataChanged" in out
    )


def test_errors_are_one_line_and_status_1(built: Openflr) -> None:
    assert built.fails("find", "nosuch", "x") == "There is no VM 'nosuch'."
    assert built.fails("versions", "nosuch", "/x") == "There is no VM 'nosuch'."
    assert built.fails("catalog", "status", "nosuch") == "There is no VM 'nosuch'."
    assert built.fails("diff", WIN, "1", "4") == f"'{WIN}' has 3 points; a point index is 1 to 3 or -1 to -3"
    assert built.fails("diff", WIN, "0", "1").startswith(f"'{WIN}' has 3 points")
    assert built.fails("find", WIN, "x", "--point", "feedface") == (
        f"'{WIN}' has no point 'feedface' (see: openflr catalog status '{WIN}')"
    )
    lin_point = built.json("catalog", "status", LIN)["points"][0]["point_id"]
    assert "has no point" in built.fails("diff", WIN, "1", lin_point)
    assert built.fails("versions", WIN, "C:/nope") == f"No catalogued point of '{WIN}' holds 'C:/nope'."
    assert built.run("find", WIN, "x", "--glob", "--exact", "--bogus", check=False).returncode == 2


def test_commands_before_a_build_say_how_to_build(tmp_path: Path, fixtures: Fixtures) -> None:
    app = _openflr(tmp_path, fixtures)
    points = app.json("catalog", "status")["points"]
    assert {p["state"] for p in points} == {"NotRecorded"} and len(points) == 6
    hint = f"run: openflr catalog build '{WIN}'"
    assert app.fails("find", WIN, "report") == f"no point of '{WIN}' is catalogued yet; {hint}"
    assert app.fails("versions", WIN, "C:/Documents") == f"no point of '{WIN}' is catalogued yet; {hint}"
    message = app.fails("diff", LIN, "1", "2")
    assert message.endswith("is not catalogued yet (not recorded); run: openflr catalog build lin-web01")


def test_build_drop_and_build_again(tmp_path: Path, fixtures: Fixtures) -> None:
    app = _openflr(tmp_path, fixtures)
    assert "catalogued 1 point" in app.run("catalog", "build", WIN, "--point", "1").stdout
    app.run("catalog", "build", WIN, "--point", "2")
    states = [p["state"] for p in app.json("catalog", "status", WIN)["points"]]
    assert states == ["Ready", "Ready", "Queued"]
    assert "nothing to build" in app.run("catalog", "build", WIN, "--point", "-2").stdout
    assert _file_changes(app.json("diff", WIN, "1", "2"))["C:/new_in_p2.txt"] == "Added"

    assert "dropped the catalogs of 1 point" in app.run("catalog", "drop", WIN, "--point", "2").stdout
    status = app.json("catalog", "status", WIN)["points"]
    assert [p["state"] for p in status] == ["Ready", "Dropped", "Queued"]
    assert "Dropped on request" in status[1]["message"]
    message = app.fails("diff", WIN, "1", "2")
    assert message.endswith(f"is not catalogued yet (Dropped); run: openflr catalog build '{WIN}'")
    # the point left is still searched; the dropped one is not
    assert _hits(app.json("find", WIN, "new_in_p2")) == {}
    assert _hits(app.json("find", WIN, "todelete")) == {"C:/Documents/todelete.txt": [1]}

    out = app.run("catalog", "build", WIN)
    assert "catalogued 2 points" in out.stdout
    assert _hits(app.json("find", WIN, "new")) == {
        "C:/new_in_p2.txt": [2, 3],
        "C:/Documents/new in p3 新しい.txt": [3],
    }
    again = app.run("catalog", "build", WIN, "--point", "1", "--again")
    assert "catalogued 1 point" in again.stdout
    assert "dropped the catalogs of 3 points" in app.run("catalog", "drop", WIN).stdout
    assert {p["state"] for p in app.json("catalog", "status", WIN)["points"]} == {"Dropped"}


def test_a_point_that_fails_to_build_fails_the_command(tmp_path: Path, fixtures: Fixtures) -> None:
    store = tmp_path / "store"
    shutil.copytree(fixtures.datastore("qcow2") / WIN, store / WIN)
    with (store / WIN / "disk0.qcow2").open("r+b") as image:
        image.truncate(1 << 20)  # the base image loses all but its first MiB
    config = tmp_path / "c.toml"
    config.write_text(f'[[datastores]]\nname = "cut"\npath = "{store}"\n')
    app = Openflr(tmp_path / "data", config)
    proc = app.run("catalog", "build", check=False)
    assert proc.returncode == 1
    assert re.search(r"Error: \d points? of 3 could not be catalogued", proc.stderr), proc.stderr
    failed = [p for p in app.json("catalog", "status")["points"] if p["state"] == "Failed"]
    assert failed and all(p["message"] for p in failed)
    assert all(f"point {p['point_id']} failed: {p['message']}" in proc.stderr for p in failed)
