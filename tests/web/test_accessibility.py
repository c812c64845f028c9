"""Every main view of the page passes axe-core without serious or critical violations, and the page
works from the keyboard alone. The walk through the views also takes the screenshots of
docs/screenshots/ (written there with OPENFLR_SCREENSHOTS=1) and restores a file into its real
``file://`` target."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.web.support import ADMIN, OPERATOR, EmApi, describe, target_folder

WIN = "Win File Server"
REPORT = "C:/Documents/report.txt"


def check(page: Page, axe_check: Callable[[Page], list[dict[str, Any]]], view: str) -> None:
    found = axe_check(page)
    assert found == [], f"axe on the {view} view:\n{describe(found)}"


def test_every_view_passes_axe_and_a_restore_lands_in_its_target(
    page_for: Callable[..., Page],
    axe_check: Callable[[Page], list[dict[str, Any]]],
    screenshot: Callable[[Page, str], Path],
    em_api: Callable[[str], EmApi],
    restored: Path,
) -> None:
    page = page_for(ADMIN, log_on=False)
    expect(page.locator("#view-logon")).to_be_visible()
    check(page, axe_check, "log-on")
    screenshot(page, "logon")

    page.locator("#logon-user").fill("web-admin")
    page.locator("#logon-password").fill("Adm1n!web-pass")
    page.locator("#logon-submit").click()
    expect(page.locator("#vm-rows a.vm-link")).to_have_count(3)
    check(page, axe_check, "VM list")
    screenshot(page, "vms")

    page.locator("#vm-rows a.vm-link").filter(has_text=WIN).click()
    expect(page.locator("#point-rows tr")).to_have_count(3)
    check(page, axe_check, "points")
    screenshot(page, "points")

    page.locator("#point-rows a.button").first.click()  # the newest point
    page.locator("#root-list a.root").filter(has_text="C:").click()
    page.locator("#entry-rows tr.dir a").filter(has_text="Documents").click()
    report = page.locator("#entry-rows tr.file").filter(has_text="report.txt")
    expect(report).to_have_count(1)
    check(page, axe_check, "browse")
    screenshot(page, "browse")

    report.get_by_role("button", name="Restore").click()
    dialog = page.locator("#restore-dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("#restore-confirm")).to_be_enabled()
    written = target_folder(restored, WIN, "C:") / "Documents" / "report.txt"
    expect(page.locator("#restore-items")).to_contain_text(str(written))
    check(page, axe_check, "restore confirmation")
    screenshot(page, "restore-dialog")
    api = em_api(ADMIN)
    mount = api.mount(WIN, "KVM")
    expected = api.api.get(f"{mount}/{REPORT}?action=download", headers={"X-RestSvcSessionId": api.token})
    assert expected.status_code == 200
    written.unlink(missing_ok=True)  # written by an earlier test: this restore writes it again
    page.locator("#restore-confirm").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#task-list")).to_contain_text("Restored 1 item", timeout=30_000)
    assert written.read_bytes() == expected.content

    page.locator("#nav-audit").click()
    expect(page.locator("#audit-rows tr").first).to_contain_text("restore")
    check(page, axe_check, "audit")
    screenshot(page, "audit")


def tab_to(page: Page, test: str, limit: int = 80) -> None:
    """Press Tab until the focused element passes ``test`` (a JavaScript function of it)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(f"() => ({test})(document.activeElement)"):
            return
    raise AssertionError(f"{limit} presses of Tab never reached an element where {test}")


def test_log_on_and_browse_with_the_keyboard_alone(page_for: Callable[..., Page]) -> None:
    page = page_for(OPERATOR, log_on=False)
    expect(page.locator("#view-logon")).to_be_visible()
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    tab_to(page, "e => e.id === 'logon-user'")
    page.keyboard.type("web-operator")
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.id") == "logon-password"
    page.keyboard.type("Op3rator!web-pass")
    page.keyboard.press("Enter")
    expect(page.locator("#who")).to_be_visible()
    expect(page.locator("#vm-rows a.vm-link")).to_have_count(3)

    tab_to(page, f"e => e.classList.contains('vm-link') && e.textContent === {WIN!r}")
    page.keyboard.press("Enter")
    expect(page.locator("#view-vm")).to_be_visible()
    tab_to(page, "e => e.closest('#point-rows') && e.textContent === 'Open'")
    page.keyboard.press("Enter")
    expect(page.locator("#root-list a.root")).not_to_have_count(0)
    tab_to(page, "e => e.classList.contains('root') && e.textContent === 'C:'")
    page.keyboard.press("Enter")
    expect(page.locator("#entry-rows tr.dir").first).to_be_visible()
    tab_to(page, "e => e.closest('#entry-rows tr.dir') && e.textContent === 'Documents'")
    page.keyboard.press("Enter")
    expect(page.locator("#crumbs [aria-current]")).to_have_text("Documents")
    expect(page.locator("#entry-rows th.name").filter(has_text="report.txt")).to_have_count(1)


def _overflow(page: Page) -> int:
    """How many CSS pixels the page is wider than its window (0: nothing to scroll sideways)."""
    return int(page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth"))


@pytest.mark.parametrize(
    ("width", "height"),
    [(360, 740), (640, 400)],  # a phone-sized window; 1280x800 at 200 % zoom (CSS pixels)
    ids=["narrow", "zoom-200"],
)
def test_narrow_windows_and_200_percent_zoom_keep_everything_reachable(
    page_for: Callable[..., Page], width: int, height: int
) -> None:
    page = page_for(OPERATOR, log_on=False)
    page.set_viewport_size({"width": width, "height": height})
    expect(page.locator("#logon-user")).to_be_visible()
    assert _overflow(page) <= 0, "the log-on form scrolls sideways"
    page.locator("#logon-user").fill("web-operator")
    page.locator("#logon-password").fill("Op3rator!web-pass")
    page.locator("#logon-submit").click()
    expect(page.locator("#vm-rows a.vm-link")).to_have_count(3)
    assert _overflow(page) <= 0, "the VM list scrolls sideways"
    page.locator("#vm-rows a.vm-link").filter(has_text=WIN).click()
    page.locator("#point-rows a.button").first.click()
    page.locator("#root-list a.root").filter(has_text="C:").click()
    page.locator("#entry-rows tr.dir a").filter(has_text="Documents").click()
    report = page.locator("#entry-rows tr.file").filter(has_text="report.txt")
    expect(report).to_have_count(1)
    assert _overflow(page) <= 0, "the folder view scrolls sideways"
    restore = report.get_by_role("button", name="Restore")
    restore.scroll_into_view_if_needed()
    expect(restore).to_be_in_viewport()
    restore.click()
    confirm = page.locator("#restore-confirm")
    expect(confirm).to_be_enabled()
    confirm.scroll_into_view_if_needed()  # a dialog taller than the window scrolls within itself
    expect(confirm).to_be_in_viewport()
