"""Guest file names are data, never markup: the folder of hostile names (tests/web/datastore.py)
shows every name as text, runs none of them, and each still downloads."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import Page, expect

from tests.web import datastore
from tests.web.support import OPERATOR, EmApi, PageEvents, displayed, folder_route, shown_name

NAMES = f"{datastore.EDGE_ROOT}/{datastore.HOSTILE_FOLDER}"


def assert_nothing_ran(page: Page, events: PageEvents) -> None:
    assert page.evaluate("() => typeof window.__pwned") == "undefined", "a file name ran as code"
    assert events.dialogs == [], events.dialogs
    assert events.errors == [], events.errors
    assert events.csp_violations == [], events.csp_violations


def test_hostile_names_show_as_text_and_run_nothing(
    page_for: Callable[..., Page], events_of: Callable[[Page], PageEvents], em_api: Callable[[str], EmApi]
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
