"""Fixtures of the browser tests: a real ``openflr serve`` and Debian's Chromium driven by Playwright.

Every test below tests/web is marked ``browser`` here, and ``server`` too (a real outside client, as
tests/clients are; most also start a server), so ``./scripts/test --fast`` leaves them out; the whole
suite runs them.

Fixtures (names are stable; other test modules of tests/web use them):

- ``web_store`` (session): the folder holding the datastores ``demo`` (``Win File Server``: NTFS
  ``C:`` and FAT ``S:``; ``lin-web01``: ext4 ``/`` and more; normal files, three points each) and
  ``web`` (``web-edge``: ``edge:/names`` with the hostile names of
  :data:`tests.web.datastore.HOSTILE_NAMES`, ``many:/many`` with 100,000 files), built once into
  ``.cache/web/`` (tests/web/datastore.py).
- ``restored`` (session): the folder the ``file://`` restore targets write into, one folder per VM
  and guest root (:func:`tests.web.support.target_folder`): tests read what a restore wrote there.
- ``web_server`` (session): the running server (:class:`tests.support.RunningServer`), plain HTTP on
  127.0.0.1 and a free port; its users are :data:`tests.web.support.WEB_USERS`, one per role in
  :data:`tests.web.support.ROLES` (``PortalAdministrator``, ``RestoreOperator``, ``PortalUser`` and
  ``InPlaceOnly``, a RestoreOperator with ``--inplace-only``).
- ``browser`` (session): Playwright's Chromium, Debian's ``/usr/bin/chromium`` (``OPENFLR_CHROMIUM``
  names another), headless.
- ``page_for(role, *, log_on=True)``: a fresh browser context (1280x800, en-US, UTC, base URL the
  server) and page at ``/``, logged on as ``role`` through the page's own log-on form
  (``#logon-user``, ``#logon-password``, ``#logon-submit``; logged on once ``#who`` shows); closed
  after the test.
  ``log_on=False`` leaves it at the log-on view.
- ``events_of(page)``: the :class:`tests.web.support.PageEvents` of a page from ``page_for``: its
  dialogs (each dismissed), console messages, uncaught errors and CSP violations, from its start.
- ``em_api(role)``: the EM API logged on as ``role`` with a token (:class:`tests.web.support.EmApi`):
  what the page is checked against (names, sizes, sorting); logged off after the test.
- ``axe_check(page)``: axe-core's violations of impact serious or critical on the page as it is
  (a list; empty is good); ``describe(violations)`` of tests.web.support prints them. The page keeps
  its Content-Security-Policy: axe is evaluated through the DevTools protocol, not a script tag.
- ``catalog_ready`` (session): the server's file catalog (docs/CATALOG.md) built for every point of
  every VM, as ``GET /api/openflr/catalog/status`` says. The test servers build none in the
  background (tests/conftest.py), so this asks for each VM's build (``POST
  /api/openflr/catalog/vms/{vm}?action=build``) and waits; returns the status's points. Fails after
  :data:`CATALOG_TIMEOUT` seconds.
- ``screenshot(page, name)``: a 1280x800 PNG of the page. Written to ``docs/screenshots/<name>.png``
  only when ``OPENFLR_SCREENSHOTS=1`` (then commit them); otherwise into the test's temporary
  folder, so that a test run leaves the working tree as it was. Returns the file's path.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from tests.support import Api, RunningServer, cli, plain_client, run_server
from tests.web import datastore
from tests.web.support import (
    ADMIN,
    CHROMIUM,
    ROLES,
    SCREENSHOTS,
    VIEWPORT,
    WEB_USERS,
    EmApi,
    PageEvents,
    axe_violations,
    server_config,
    user_args,
)

WEB_TESTS = Path(__file__).parent
CATALOG_TIMEOUT = 900.0
"""Seconds the file catalog of the browser tests' datastores may take to build (100,000 files among
them, one niced worker on a shared machine)."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if WEB_TESTS in item.path.parents:
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.server)


@pytest.fixture(scope="session")
def web_store() -> Path:
    return datastore.ensure()


@pytest.fixture(scope="session")
def web_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("web-server")


@pytest.fixture(scope="session")
def restored() -> Iterator[Path]:
    # Short: the page shows it in the restore confirmation (and so in docs/screenshots/).
    folder = Path(tempfile.mkdtemp(prefix="restored-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def web_server(web_store: Path, web_data_dir: Path, restored: Path) -> Iterator[RunningServer]:
    data = web_data_dir / "data"
    data.mkdir()
    for role in ROLES:
        cli(data, *user_args(role), stdin=WEB_USERS[role][1] + "\n")
    with run_server(data, https=False, config=server_config(web_store, restored)) as server:
        yield server


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: scripts/setup-test-deps installs Debian's chromium"
    args = ["--no-sandbox"] if os.getuid() == 0 else []  # Chromium's sandbox refuses to run as root
    chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=args, headless=True)
    yield chromium
    chromium.close()


_EVENTS: dict[int, PageEvents] = {}


def log_on_with_form(page: Page, role: str) -> None:
    """Log on at the page's own log-on form and wait until the page shows who is logged on."""
    name, password = WEB_USERS[role]
    page.locator("#logon-user").fill(name)
    page.locator("#logon-password").fill(password)
    page.locator("#logon-submit").click()
    page.locator("#who").wait_for(state="visible")


@pytest.fixture
def page_for(browser: Browser, web_server: RunningServer) -> Iterator[Callable[..., Page]]:
    contexts = []

    def open_page(role: str, *, log_on: bool = True) -> Page:
        context = browser.new_context(
            viewport=VIEWPORT,  # type: ignore[arg-type]
            base_url=web_server.base,
            locale="en-US",
            timezone_id="UTC",
        )
        context.set_default_timeout(20_000)
        contexts.append(context)
        page = context.new_page()
        events = PageEvents()
        events.watch(page)
        _EVENTS[id(page)] = events
        page.goto("/")
        if log_on:
            page.locator("#logon-user").wait_for(state="visible")
            log_on_with_form(page, role)
        return page

    yield open_page
    for context in contexts:
        for page in context.pages:
            _EVENTS.pop(id(page), None)
        context.close()


@pytest.fixture
def events_of() -> Callable[[Page], PageEvents]:
    return lambda page: _EVENTS[id(page)]


@pytest.fixture
def em_api(web_server: RunningServer) -> Iterator[Callable[[str], EmApi]]:
    opened: list[EmApi] = []
    client = plain_client()

    def log_on(role: str) -> EmApi:
        api = EmApi(Api(client, web_server.base, "http"), role)
        opened.append(api)
        return api

    yield log_on
    for api in opened:
        api.close()
    client.close()


@pytest.fixture
def axe_check() -> Callable[[Page], list[dict[str, Any]]]:
    return axe_violations


@pytest.fixture
def screenshot(tmp_path: Path) -> Callable[[Page, str], Path]:
    folder = SCREENSHOTS if os.environ.get("OPENFLR_SCREENSHOTS") == "1" else tmp_path

    def take(page: Page, name: str) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        page.set_viewport_size(VIEWPORT)  # type: ignore[arg-type]
        path = folder / f"{name}.png"
        page.screenshot(path=path, full_page=False, animations="disabled", caret="hide")
        return path

    return take


@pytest.fixture(scope="session")
def catalog_ready(web_server: RunningServer) -> list[dict[str, Any]]:
    client = plain_client()
    api = EmApi(Api(client, web_server.base, "http"), ADMIN)
    try:
        for replica in api.get("/api/replicas?format=Entity")["Replicas"]:
            vm = urlsplit(replica["Href"]).path.rstrip("/").rsplit("/", 1)[-1]
            r = api.api.post(f"/api/openflr/catalog/vms/{vm}?action=build", headers=api.headers)
            assert r.status_code == 202, f"catalog build of {replica['Name']}: {r.status_code} {r.text[:500]}"
        deadline = time.monotonic() + CATALOG_TIMEOUT
        points: list[dict[str, Any]] = []
        while True:
            r = api.api.get("/api/openflr/catalog/status", headers=api.headers)
            assert r.status_code == 200, f"catalog status: {r.status_code} {r.text[:500]}"
            found = r.json().get("Points") or []
            points = found.get("Points", []) if isinstance(found, dict) else found
            states = {str(p.get("State")) for p in points}
            assert "Failed" not in states, [p for p in points if p.get("State") == "Failed"]
            if points and states == {"Ready"}:
                return points
            assert time.monotonic() < deadline, (
                f"the catalog is not built after {CATALOG_TIMEOUT} s: {points}"
            )
            time.sleep(1.0)
    finally:
        api.close()
        client.close()
