"""The browser tests' own set-up: the server serves the web datastores as built, Chromium is
Debian's, axe-core runs under the page's Content-Security-Policy."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import Browser

from tests.web import datastore
from tests.web.support import AXE, OPERATOR, EmApi, shown_name


def test_the_browser_is_debians_chromium(browser: Browser) -> None:
    assert browser.browser_type.name == "chromium"
    assert int(browser.version.split(".")[0]) >= 120, browser.version


def test_axe_core_is_the_pinned_copy() -> None:
    assert AXE.exists() and AXE.stat().st_size > 100_000
    assert AXE.parent.name in AXE.read_text(encoding="utf-8")[:2000]  # the banner names its version


def test_the_edge_vm_holds_the_hostile_names_and_the_big_folder(em_api: Callable[[str], EmApi]) -> None:
    api = em_api(OPERATOR)
    m = api.mount(datastore.EDGE_VM)
    names = api.names(m, f"{datastore.EDGE_ROOT}/{datastore.HOSTILE_FOLDER}")
    assert sorted(names) == sorted(shown_name(n) for n in (*datastore.HOSTILE_NAMES, datastore.HOSTILE_DIR))
    page = api.folder(m, f"{datastore.BIG_ROOT}/{datastore.BIG_FOLDER}", pageSize=10, page=1)
    assert page["PagingInfo"]["PagesCount"] == datastore.BIG_COUNT // 10, page["PagingInfo"]
