"""Guest file names are data, never markup: the folder of hostile names (tests/web/datastore.py)
shows every name as text, runs none of them, each still downloads, restores under its own bytes and
shows as text in the audit log."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from tests.web import datastore
from tests.web.support import (
    ADMIN,
    OPERATOR,
    EmApi,
    PageEvents,
    describe,
    displayed,
    folder_route,
    shown_name,
    target_folder,
)

NAMES = f"{datastore.EDGE_ROOT}/{datastore.HOSTILE_FOLDER}"


def assert_nothing_ran(page: Page, events: PageEvents) -> None:
    assert page.evaluate("() => typeof window.__pwned") == "undefined", "a file name ran as code"
    assert events.dialogs == [], events.dialogs
    assert events.errors == [], events.errors
    assert events.csp_violations == [], events.csp_violations


def test_hostile_names_show_as_text_and_run_nothing(
    page_for: Callable[..., Page],
    events_of: Callable[[Page], PageEvents],
    em_api: Callable[[str], EmApi],
    axe_check: Callable[[Page], list[dict[str, Any]]],
) -> None:
    api = em_api(OPERATOR)
    mount = api.mount(datastore.EDGE_VM)
    entries = api.entries(mount, NAMES, pageSize=100, page=1)
    assert len(entries) == len(datastore.HOSTILE_NAMES) + 1
    page = page_for(OPERATOR)
    events = events_of(page)
    page.goto(folder_route(api.point(datastore.EDGE_VM), mount, api.entry(mount, NAMES)["Href"]))
    rows = page.locator("#entry-rows tr")
    expect(rows).to_have_count(len(entries))
    # Each row shows its name exactly (invisible and direction characters and bytes that are not
    # UTF-8 as visible markers), in the API's order.
    shown = page.locator("#entry-rows th.name").all_text_contents()
    assert shown == [displayed(e["Name"]) for e in entries]
    assert "[U+202E]" in displayed(shown_name("evil\u202egnp.exe".encode()))  # the override is shown
    # Pointing at each row fires what an attribute break-out would have hooked.
    for n in range(len(entries)):
        rows.nth(n).hover()
    assert (
        page.locator("#entry-rows img, #entry-rows svg, #entry-rows script, #entry-rows iframe").count() == 0
    )
    assert_nothing_ran(page, events)
    found = axe_check(page)  # the markers too are accessible
    assert found == [], describe(found)


def test_every_hostile_name_downloads_through_its_own_link(
    page_for: Callable[..., Page], events_of: Callable[[Page], PageEvents], em_api: Callable[[str], EmApi]
) -> None:
    api = em_api(OPERATOR)
    mount = api.mount(datastore.EDGE_VM)
    content = {
        shown_name(raw): f"hostile name {n}\n".encode() for n, raw in enumerate(datastore.HOSTILE_NAMES)
    }
    page = page_for(OPERATOR)
    page.goto(folder_route(api.point(datastore.EDGE_VM), mount, api.entry(mount, NAMES)["Href"]))
    files = page.locator("#entry-rows tr.file")
    expect(files).to_have_count(len(datastore.HOSTILE_NAMES))
    by_text = {displayed(name): name for name in content}
    for n in range(files.count()):
        row = files.nth(n)
        name = by_text[row.locator("th.name").text_content() or ""]
        href = row.locator("a[download]").get_attribute("href")
        assert href, f"no download link for {name!r}"
        # The page's own cookie, as the browser sends it when the link is followed.
        answer = page.request.get(href)
        assert answer.status == 200, (name, href, answer.status, answer.text()[:300])
        assert answer.body() == content[name], name
    assert_nothing_ran(page, events_of(page))


def test_a_hostile_folder_opens_and_its_path_shows_as_text(
    page_for: Callable[..., Page], events_of: Callable[[Page], PageEvents], em_api: Callable[[str], EmApi]
) -> None:
    api = em_api(OPERATOR)
    mount = api.mount(datastore.EDGE_VM)
    folder = shown_name(datastore.HOSTILE_DIR)
    page = page_for(OPERATOR)
    page.goto(folder_route(api.point(datastore.EDGE_VM), mount, api.entry(mount, NAMES)["Href"]))
    page.locator("#entry-rows tr.dir a").filter(has_text=folder).click()
    expect(page.locator("#entry-rows th.name")).to_have_text([datastore.INNER_FILE])
    expect(page.locator("#crumbs [aria-current]")).to_have_text(folder)
    assert page.locator("#crumbs img, #crumbs script").count() == 0
    assert_nothing_ran(page, events_of(page))


def test_hostile_names_restore_to_their_own_bytes_and_show_as_text_in_the_audit_log(
    page_for: Callable[..., Page],
    events_of: Callable[[Page], PageEvents],
    em_api: Callable[[str], EmApi],
    restored: Path,
) -> None:
    api = em_api(OPERATOR)
    mount = api.mount(datastore.EDGE_VM)
    page = page_for(OPERATOR)
    page.goto(folder_route(api.point(datastore.EDGE_VM), mount, api.entry(mount, NAMES)["Href"]))
    folder = target_folder(restored, datastore.EDGE_VM, datastore.EDGE_ROOT) / datastore.HOSTILE_FOLDER
    chosen = [datastore.HOSTILE_NAMES[0], b"caf\xe9-latin1.txt", "evil\u202egnp.exe".encode()]
    for raw in chosen:
        written = os.path.join(os.fsencode(folder), raw)
        if os.path.exists(written):
            os.unlink(written)  # from an earlier test: this restore writes it again
        name = displayed(shown_name(raw))
        row = page.locator("#entry-rows tr.file").filter(has=page.locator("th.name", has_text=name))
        row.get_by_role("button", name="Restore").click()
        expect(page.locator("#restore-confirm")).to_be_enabled()
        expect(page.locator("#restore-items")).to_contain_text(name)
        page.locator("#restore-confirm").click()
    expect(page.locator("#task-list li")).to_have_count(len(chosen))
    for n in range(len(chosen)):
        expect(page.locator("#task-list li").nth(n)).to_contain_text("Restored 1 item", timeout=30_000)
    for raw in chosen:
        index = datastore.HOSTILE_NAMES.index(raw)
        with open(os.path.join(os.fsencode(folder), raw), "rb") as fh:  # the name's own bytes
            assert fh.read() == f"hostile name {index}\n".encode()
    assert_nothing_ran(page, events_of(page))

    admin = page_for(ADMIN)
    admin.goto("/#/audit?action=restore&vm=web-edge")
    expect(admin.locator("#audit-rows td.path")).not_to_have_count(0)
    paths = admin.locator("#audit-rows td.path").all_text_contents()
    for raw in chosen:
        assert any(displayed(shown_name(raw)) in p for p in paths), (raw, paths)
    assert_nothing_ran(admin, events_of(admin))
