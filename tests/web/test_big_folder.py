"""A folder of 100,000 files in the browser: the first page comes soon, the page never holds more
than one page of rows, the last page is reachable, and sorting and filtering are the server's (the
rows are the API's rows for the same request)."""

from __future__ import annotations

import time
from collections.abc import Callable

from playwright.sync_api import Page, expect

from tests.web import datastore
from tests.web.support import OPERATOR, EmApi, displayed, folder_route

BIG = f"{datastore.BIG_ROOT}/{datastore.BIG_FOLDER}"
PAGE = 100  # the page's default page size
FIRST_PAGE_SECONDS = 30
"""Mount and first page of the 100,000-file folder on a busy 2-core machine (a few seconds idle)."""

WATCH_ROWS = """() => {
    window.__maxRows = 0;
    const rows = document.getElementById("entry-rows");
    const count = () => {
        window.__maxRows = Math.max(window.__maxRows, rows.querySelectorAll("tr").length);
    };
    new MutationObserver(count).observe(rows, {childList: true});
    count();
}"""


def names_of(api: EmApi, mount: str, **params: str | int) -> list[str]:
    return [displayed(e["Name"]) for e in api.entries(mount, BIG, pageSize=PAGE, **params)]


def test_the_big_folder_pages_sorts_and_filters_on_the_server(
    page_for: Callable[..., Page], em_api: Callable[[str], EmApi]
) -> None:
    api = em_api(OPERATOR)
    mount = api.mount(datastore.EDGE_VM)
    page = page_for(OPERATOR)
    page.evaluate(WATCH_ROWS)
    rows = page.locator("#entry-rows th.name")
    started = time.monotonic()
    page.goto(folder_route(api.point(datastore.EDGE_VM), mount, api.entry(mount, BIG)["Href"]))
    expect(rows).to_have_count(PAGE, timeout=FIRST_PAGE_SECONDS * 1000)
    took = time.monotonic() - started
    assert took < FIRST_PAGE_SECONDS, took
    assert rows.all_text_contents() == names_of(api, mount, page=1)
    pages = datastore.BIG_COUNT // PAGE
    expect(page.locator("#page-of")).to_contain_text(f"{pages:,}")

    page.locator("#page-last").click()
    expect(page.locator("#page-number")).to_have_value(str(pages))
    expect(rows).to_have_text(names_of(api, mount, page=pages))
    page.locator("#page-prev").click()
    expect(rows).to_have_text(names_of(api, mount, page=pages - 1))

    size = page.locator("#entries button.sort[data-sort=size]")
    size.click()  # ascending
    expect(page.locator("#entries th[data-sort=size]")).to_have_attribute("aria-sort", "ascending")
    size.click()
    expect(page.locator("#entries th[data-sort=size]")).to_have_attribute("aria-sort", "descending")
    by_size = names_of(api, mount, page=1, orderBy="size", order="desc")
    assert by_size[0] == datastore.BIGGEST
    expect(rows).to_have_text(by_size)

    page.locator("#folder-filter").fill("07777")
    page.locator("#folder-filter").press("Enter")
    matching = names_of(api, mount, page=1, orderBy="size", order="desc", filter="07777")
    assert matching[0] == datastore.BIGGEST and 1 < len(matching) < PAGE
    expect(rows).to_have_text(matching)
    expect(page.locator("#pager")).to_be_hidden()

    most = page.evaluate("() => window.__maxRows")
    assert 0 < most <= PAGE, most
    assert page.locator("tr").count() <= PAGE + 20
