"""The file catalog on the web page (docs/CATALOG.md), in a real browser against a real server whose
catalog is built: searching every VM's points and opening a hit in its folder, the versions of an
item, the changes between two points with their ZIPs, hostile names in the results, the catalog's
state while it is being built, and axe on each of these views. Checked against the fixture's truth
(tests/imagebuilder/trees.py) and the EM API."""

from __future__ import annotations

import io
import re
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from playwright.sync_api import Page, expect

from tests.web import datastore
from tests.web.support import (
    ADMIN,
    INPLACE,
    OPERATOR,
    VIEWER,
    EmApi,
    PageEvents,
    describe,
    displayed,
    point_id,
    settled,
    shown_name,
)

VM = "Win File Server"
LINUX = "lin-web01"
REPORT = "C:/Documents/report.txt"
TRUTH_1_TO_3 = {
    "C:/Documents/report.txt": "Modified",
    "C:/Documents/todelete.txt": "Removed",
    "C:/new_in_p2.txt": "Added",
    "C:/Program Files/App/config.ini": "Modified",
    "C:/Documents/Quarterly Report 2024.docx": "Removed",
    "C:/Documents/new in p3 新しい.txt": "Added",
}
"""The files of the Windows VM that change from point 1 to point 3 (tests/imagebuilder/trees.py)."""

pytestmark = pytest.mark.usefixtures("catalog_ready")


def replica_id(api: EmApi, vm: str) -> str:
    """The id the page's routes use for ``vm``'s replica (the last segment of its Href)."""
    replicas = api.get("/api/replicas?format=Entity")["Replicas"]
    found = next(r for r in replicas if r["Name"].startswith(vm))
    return unquote(urlsplit(found["Href"]).path.rstrip("/").rsplit("/", 1)[-1])


def points_of(api: EmApi, vm: str) -> list[str]:
    """The ids of ``vm``'s points, oldest first."""
    return [point_id(api.point(vm, index=i)) for i in range(3)]


def check_axe(page: Page, axe_check: Callable[[Page], list[dict[str, Any]]], view: str) -> None:
    found = axe_check(page)
    assert found == [], f"axe on the {view}:\n{describe(found)}"


def assert_nothing_ran(page: Page, events: PageEvents) -> None:
    assert page.evaluate("() => typeof window.__pwned") == "undefined", "a file name ran as code"
    assert events.dialogs == [], events.dialogs
    assert events.errors == [], events.errors
    assert events.csp_violations == [], events.csp_violations


def test_search_lists_a_hit_with_its_points_and_opens_it_in_its_folder(
    page_for: Callable[..., Page],
    events_of: Callable[[Page], PageEvents],
    em_api: Callable[[str], EmApi],
    axe_check: Callable[[Page], list[dict[str, Any]]],
    screenshot: Callable[[Page, str], Path],
) -> None:
    api = em_api(OPERATOR)
    p1, p2, p3 = points_of(api, VM)
    page = page_for(OPERATOR)
    page.locator("#search-box").fill("new_in_p2")
    page.locator("#search-go").click()
    expect(page.locator("#view-search")).to_be_visible()
    assert "#/search?" in page.url and "q=new_in_p2" in page.url
    hit = page.locator("#search-rows tr.hit").filter(has_text=VM)
    expect(hit).to_have_count(1)
    expect(hit.locator("th.path")).to_have_text("C:/new_in_p2.txt")
    expect(hit.locator("td").nth(0)).to_have_text(VM)  # the VM's name, as the VM list shows it
    expect(hit.locator("td").nth(1)).to_have_text("File")
    # Added in point 2, still there in point 3.
    toggle = hit.locator("button.points-toggle")
    expect(toggle).to_have_text("in 2 points")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    listed = page.locator(f"#{toggle.get_attribute('aria-controls')} li a")
    expect(listed).to_have_count(2)
    hrefs = [listed.nth(i).get_attribute("href") or "" for i in range(2)]
    assert [h.split("/")[2] for h in hrefs] == [p3, p2]  # newest first
    # The Linux VM has a new_in_p2.txt too; the VM filter keeps only the Windows one.
    expect(page.locator("#search-rows tr.hit").filter(has_text=LINUX).first).to_be_visible()
    check_axe(page, axe_check, "search results")
    screenshot(page, "catalog-search")
    page.locator("#search-vm").select_option(replica_id(api, VM))
    page.locator("#search-filters button[type=submit]").click()
    expect(page.locator("#search-rows tr.hit")).to_have_count(1)
    expect(page.locator("#search-rows tr.hit th.path")).to_have_text("C:/new_in_p2.txt")
    # A pattern: *.ini finds config.ini (and win.ini) in the Windows VM only.
    page.locator("#search-name").fill("*.ini")
    page.locator("#search-match").select_option("glob")
    page.locator("#search-filters button[type=submit]").click()
    expect(page.locator("#search-rows tr.hit th.path").filter(has_text="config.ini")).to_have_count(1)
    for path in page.locator("#search-rows tr.hit th.path").all_text_contents():
        assert path.endswith(".ini"), path
    assert p1 not in page.url

    # Back to the first search, reloaded: the route alone draws it again; opening the hit opens
    # (mounts) the newest point that holds it at its folder, the file pointed out.
    page.go_back()
    page.go_back()
    expect(page.locator("#search-rows tr.hit").filter(has_text=LINUX).first).to_be_visible()
    page.reload()
    hit = page.locator("#search-rows tr.hit").filter(has_text=VM)
    expect(hit).to_have_count(1)
    hit.locator("th.path a").click()
    expect(page.locator("#view-point")).to_be_visible()
    expect(page.locator("#crumbs [aria-current]")).to_have_text("C:")
    assert f"#/point/{p3}/" in page.url
    found = page.locator("#entry-rows tr.highlight")
    expect(found).to_have_count(1)
    expect(found.locator("th.name bdi")).to_have_text("new_in_p2.txt")
    expect(found.locator("input.select")).to_be_checked()
    expect(page.locator("#selection-count")).to_have_text("1 selected")
    assert_nothing_ran(page, events_of(page))


def test_versions_of_a_file_show_each_point_and_the_change_in_point_2(
    page_for: Callable[..., Page],
    events_of: Callable[[Page], PageEvents],
    em_api: Callable[[str], EmApi],
    axe_check: Callable[[Page], list[dict[str, Any]]],
    screenshot: Callable[[Page, str], Path],
) -> None:
    api = em_api(OPERATOR)
    p1, p2, p3 = points_of(api, VM)
    sizes = [api.entry(api.mount(VM, index=i), REPORT)["Size"] for i in range(3)]
    page = page_for(OPERATOR)
    page.goto("/#/search?q=report.txt&match=exact")
    page.locator("#search-rows tr.hit th.path a").filter(has_text=REPORT).click()
    row = page.locator("#entry-rows tr.highlight")
    expect(row).to_contain_text("report.txt")
    row.get_by_role("button", name="Versions").click()
    dialog = page.locator("#versions-dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("#versions-path")).to_have_text(REPORT)
    rows = page.locator("#versions-rows tr.version")
    expect(rows).to_have_count(3)
    # Newest first: point 3 unchanged, point 2 modified, point 1 where it first appears.
    assert [rows.nth(i).get_attribute("data-change") for i in range(3)] == ["Unchanged", "Modified", "Added"]
    expect(rows.nth(1).locator(".badge")).to_have_text("Modified")
    expect(rows.nth(0)).to_have_class("version here")  # the point shown
    shown_sizes = [rows.nth(i).locator("td.num").get_attribute("title") for i in range(3)]
    assert shown_sizes == [f"{s:,} bytes" for s in reversed(sizes)]
    opens = [rows.nth(i).get_by_role("link").get_attribute("href") or "" for i in range(3)]
    assert [h.split("/")[2] for h in opens] == [p3, p2, p1]
    check_axe(page, axe_check, "versions panel")
    screenshot(page, "catalog-versions")

    # Comparing content reads each version: three hashes, two of them equal (points 2 and 3).
    compare = page.locator("#versions-hashes")
    expect(compare).to_be_visible()
    compare.click()
    expect(page.locator("#versions-rows code.hash")).to_have_count(3)
    hashes = [page.locator("#versions-rows code.hash").nth(i).get_attribute("title") for i in range(3)]
    assert hashes[0] == hashes[1] != hashes[2]
    assert [rows.nth(i).get_attribute("data-change") for i in range(3)] == ["Unchanged", "Modified", "Added"]

    # A version opens its point at the file.
    rows.nth(2).get_by_role("link").click()
    expect(dialog).to_be_hidden()
    assert f"#/point/{p1}/" in page.url
    expect(page.locator("#entry-rows tr.highlight th.name bdi")).to_have_text("report.txt")
    expect(page.locator("#entry-rows tr.highlight td.num")).to_have_attribute("title", f"{sizes[0]:,} bytes")

    # The folder's own versions: a summary of what changed below it.
    page.goto(f"/#/point/{p3}/C:/Documents")
    expect(page.locator("#entry-rows tr").first).to_be_visible()
    page.locator("#folder-versions").click()
    expect(rows).to_have_count(3)
    expect(rows.nth(0).locator("td.details")).to_contain_text("1 added")
    expect(rows.nth(0).locator("td.details")).to_contain_text("1 removed")
    expect(page.locator("#versions-hashes")).to_be_hidden()  # a folder has no content to compare
    page.locator("#versions-close").click()
    expect(dialog).to_be_hidden()
    assert_nothing_ran(page, events_of(page))


def test_any_role_searches_and_a_user_without_downloads_gets_no_zip_links(
    page_for: Callable[..., Page], em_api: Callable[[str], EmApi]
) -> None:
    api = em_api(OPERATOR)
    p2, p3 = points_of(api, VM)[1:]
    viewer = page_for(VIEWER)
    viewer.goto(f"/#/search?q=report.txt&match=exact&vm={replica_id(api, VM)}")
    hit = viewer.locator("#search-rows tr.hit")
    expect(hit).to_have_count(1)
    expect(hit.locator("th.path")).to_have_text(REPORT)
    assert (hit.locator("th.path a").get_attribute("href") or "").startswith(f"#/point/{p3}/")
    inplace = page_for(INPLACE)
    inplace.goto(f"/#/diff?vm={replica_id(api, VM)}&from={p2}&to={p3}")
    expect(inplace.locator("#diff-rows tr.change").first).to_be_visible()
    expect(inplace.locator("#diff-downloads")).to_be_hidden()


def test_diff_lists_the_truths_changes_and_downloads_either_side(
    page_for: Callable[..., Page],
    events_of: Callable[[Page], PageEvents],
    em_api: Callable[[str], EmApi],
    axe_check: Callable[[Page], list[dict[str, Any]]],
    screenshot: Callable[[Page, str], Path],
) -> None:
    api = em_api(OPERATOR)
    p1, p2, p3 = points_of(api, VM)
    page = page_for(OPERATOR)
    page.locator("#vm-rows a.vm-link").filter(has_text=VM).click()
    page.locator("#vm-compare").click()
    expect(page.locator("#view-diff")).to_be_visible()
    # By default the newest point against the one before it.
    expect(page.locator("#diff-from")).to_have_value(p2)
    expect(page.locator("#diff-to")).to_have_value(p3)
    expect(page.locator("#diff-rows tr.change").first).to_be_visible()
    page.locator("#diff-from").select_option(p1)
    page.locator("#diff-form button[type=submit]").click()
    settled(page)
    expect(page.locator("#diff-count")).to_contain_text("from")
    assert f"from={p1}" in page.url and f"to={p3}" in page.url
    rows = page.locator("#diff-rows tr.change")
    expect(rows.first).to_be_visible()
    files = {}
    for i in range(rows.count()):
        row = rows.nth(i)
        if row.locator("td").nth(0).text_content() == "File":
            files[row.locator("th.path").text_content()] = row.get_attribute("data-change")
    assert files == TRUTH_1_TO_3
    removed = rows.filter(has_text="todelete.txt")
    assert removed.locator("td.num").nth(0).text_content() != ""  # size before
    assert removed.locator("td.num").nth(1).text_content() == ""  # none after
    check_axe(page, axe_check, "diff view")
    screenshot(page, "catalog-diff")

    # The changed files of either side, as ZIPs with the page's own cookie.
    contents = {}
    for side in ("from", "to"):
        link = page.locator(f"#diff-zip-{side}")
        expect(link).to_be_visible()
        href = link.get_attribute("href") or ""
        assert f"side={side}" in href and "format=zip" in href
        drawn = link.inner_text()  # as drawn: a space lost in the layout shows here
        assert re.fullmatch(
            rf"Changed files as in \w.* \({'before' if side == 'from' else 'after'}\)", drawn
        ), drawn
        answer = page.request.get(href)
        assert answer.status == 200, (side, answer.status, answer.text()[:300])
        with zipfile.ZipFile(io.BytesIO(answer.body())) as z:
            contents[side] = [i.filename for i in z.infolist() if not i.is_dir()]
    for side, wanted in (
        ("from", ["report.txt", "todelete.txt", "config.ini", "Quarterly Report 2024.docx"]),
        ("to", ["report.txt", "new_in_p2.txt", "config.ini", "new in p3 新しい.txt"]),
    ):
        for name in wanted:
            assert any(f.endswith(name) for f in contents[side]), (side, name, contents[side])
    assert not any(f.endswith("todelete.txt") for f in contents["to"])

    # From a folder: its changes between this point and the one before.
    page.goto(f"/#/point/{p3}/C:/Documents")
    expect(page.locator("#entry-rows tr").first).to_be_visible()
    page.locator("#folder-compare").click()
    expect(page.locator("#diff-under")).to_have_value("C:/Documents")
    expect(page.locator("#diff-from")).to_have_value(p2)
    expect(rows.first).to_be_visible()
    below = {
        rows.nth(i).locator("th.path").text_content(): rows.nth(i).get_attribute("data-change")
        for i in range(rows.count())
    }
    files = {p: c for p, c in below.items() if p != "C:/Documents"}
    assert files == {
        "C:/Documents/Quarterly Report 2024.docx": "Removed",
        "C:/Documents/new in p3 新しい.txt": "Added",
    }
    # A change opens its point at the item: an added file in the to point.
    rows.filter(has_text="new in p3").locator("th.path a").click()
    expect(page.locator("#entry-rows tr.highlight th.name bdi")).to_have_text("new in p3 新しい.txt")
    assert f"#/point/{p3}/" in page.url
    assert_nothing_ran(page, events_of(page))


def test_hostile_names_in_search_results_show_as_text_and_open_their_folder(
    page_for: Callable[..., Page],
    events_of: Callable[[Page], PageEvents],
    axe_check: Callable[[Page], list[dict[str, Any]]],
) -> None:
    page = page_for(OPERATOR)
    events = events_of(page)
    page.goto("/#/search?q=pwned")
    expect(page.locator("#search-rows tr.hit").first).to_be_visible()
    folder = f"{datastore.EDGE_ROOT}/{datastore.HOSTILE_FOLDER}"
    wanted = sorted(
        displayed(f"{folder}/{shown_name(raw)}")
        for raw in (*datastore.HOSTILE_NAMES, datastore.HOSTILE_DIR)
        if b"pwned" in raw
    )
    paths = page.locator("#search-rows tr.hit th.path").all_text_contents()
    assert sorted(paths) == wanted
    for n in range(page.locator("#search-rows tr.hit").count()):
        page.locator("#search-rows tr.hit").nth(n).hover()
    assert (
        page.locator("#search-rows img, #search-rows svg, #search-rows script, #search-rows iframe").count()
        == 0
    )
    check_axe(page, axe_check, "search results of hostile names")
    # The first hostile name opens in its folder, pointed out by its exact name.
    name = shown_name(datastore.HOSTILE_NAMES[0])
    page.locator("#search-rows tr.hit th.path a").filter(has_text=displayed(name)).click()
    expect(page.locator("#crumbs [aria-current]")).to_have_text(datastore.HOSTILE_FOLDER)
    expect(page.locator("#entry-rows tr.highlight th.name bdi")).to_have_text(displayed(name))
    assert page.locator("#entry-rows img, #crumbs img").count() == 0
    assert_nothing_ran(page, events)


def _status(api: EmApi, vm: str) -> list[dict[str, Any]]:
    found = api.get(f"/api/openflr/catalog/status?vm={vm}")["Points"]
    return list(found.get("Points", []) if isinstance(found, dict) else found)


def test_a_point_not_catalogued_shows_the_catalog_state_and_the_view_follows_its_build(
    page_for: Callable[..., Page], events_of: Callable[[Page], PageEvents], em_api: Callable[[str], EmApi]
) -> None:
    admin = em_api(ADMIN)
    replica = replica_id(admin, LINUX)
    p1, _p2, p3 = points_of(admin, LINUX)
    r = admin.api.delete(f"/api/openflr/catalog/points/{p1}", headers=admin.headers)
    assert r.status_code == 204, r.text
    try:
        page = page_for(ADMIN)
        page.goto(f"/#/diff?vm={replica}&from={p1}&to={p3}")
        expect(page.locator("#diff-count")).to_contain_text("not ready")
        state = page.locator("#diff-state")
        expect(state).to_contain_text("1 point is not catalogued")
        expect(page.locator("#alert")).to_be_hidden()  # a state, not an error
        r = admin.api.post(f"/api/openflr/catalog/points/{p1}?action=build", headers=admin.headers)
        assert r.status_code == 202, r.text
        # The page follows the build and draws the changes once the point is catalogued.
        expect(page.locator("#diff-rows tr.change").first).to_be_visible(timeout=120_000)
        expect(page.locator("#diff-rows tr.change").filter(has_text="new_in_p2.txt")).to_have_count(1)
        expect(state).to_be_hidden()
        assert_nothing_ran(page, events_of(page))
    finally:
        # The other tests find the catalog whole again.
        if "Dropped" in {p["State"] for p in _status(admin, replica)}:
            admin.api.post(f"/api/openflr/catalog/points/{p1}?action=build", headers=admin.headers)
        deadline = time.monotonic() + 300
        while {p["State"] for p in _status(admin, replica)} != {"Ready"} and time.monotonic() < deadline:
            time.sleep(1)


def test_a_search_while_a_vm_is_catalogued_shows_the_progress_then_its_hits(
    page_for: Callable[..., Page], events_of: Callable[[Page], PageEvents], em_api: Callable[[str], EmApi]
) -> None:
    admin = em_api(ADMIN)
    replica = replica_id(admin, datastore.EDGE_VM)
    # Its 100,000 files take a while to catalogue again: long enough to see the progress.
    r = admin.api.post(f"/api/openflr/catalog/vms/{replica}?action=build&again=true", headers=admin.headers)
    assert r.status_code == 202, r.text
    try:
        page = page_for(OPERATOR)
        page.goto(f"/#/search?q=inside.txt&match=exact&vm={replica}")
        state = page.locator("#search-state")
        expect(state).to_contain_text(re.compile(r"^Cataloguing: [\d,]+ (of [\d,]+ entries|entries so far)"))
        expect(page.locator("#alert")).to_be_hidden()
        # Once built, the page searches again by itself.
        expect(page.locator("#search-rows tr.hit th.path")).to_have_text(
            f"{datastore.EDGE_ROOT}/{datastore.HOSTILE_FOLDER}/{displayed(shown_name(datastore.HOSTILE_DIR))}/"
            f"{datastore.INNER_FILE}",
            timeout=300_000,
        )
        expect(state).to_be_hidden()
        assert_nothing_ran(page, events_of(page))
    finally:
        deadline = time.monotonic() + 600
        while {p["State"] for p in _status(admin, replica)} != {"Ready"} and time.monotonic() < deadline:
            time.sleep(1)
