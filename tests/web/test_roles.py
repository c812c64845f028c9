"""What a role may not do the page does not offer, and the server refuses it anyway when the page is
bypassed: requests from the page's own context without the CSRF header, with a role that lacks the
permission, or with the cookie from another site."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import Page, expect

from tests.web import datastore
from tests.web.support import ADMIN, INPLACE, OPERATOR, VIEWER, EmApi, folder_route, point_id

NAMES = f"{datastore.EDGE_ROOT}/{datastore.HOSTILE_FOLDER}"
FETCH = """async ([method, url, csrf]) => {
    const headers = {Accept: "application/json", "Content-Type": "application/json"};
    if (csrf) headers["X-Openflr-Csrf"] = csrf;
    const r = await fetch(url, {method, headers, body: method === "GET" ? undefined : "{}"});
    return r.status;
}"""


def fetch(page: Page, method: str, url: str, csrf: str = "") -> int:
    """Status of a request made by the page's own context (its cookie, its origin)."""
    status: int = page.evaluate(FETCH, [method, url, csrf])
    return status


def me(page: Page) -> dict[str, Any]:
    found: dict[str, Any] = page.evaluate(
        "() => fetch('/api/openflr/me', {headers: {Accept: 'application/json'}}).then(r => r.json())"
    )
    return found


def mounts_of(point_href: str) -> str:
    return urlsplit(point_href).path + "/mounts"


def open_names(page: Page, api: EmApi) -> None:
    """Browse edge:/names (the page mounts the point itself)."""
    mount = api.mount(datastore.EDGE_VM)
    page.goto(folder_route(api.point(datastore.EDGE_VM), mount, api.entry(mount, NAMES)["Href"]))
    expect(page.locator("#entry-rows tr.file")).to_have_count(len(datastore.HOSTILE_NAMES))


def test_a_portal_user_is_offered_no_mount_restore_or_download(
    page_for: Callable[..., Page], em_api: Callable[[str], EmApi]
) -> None:
    point = em_api(OPERATOR).point(datastore.EDGE_VM)
    page = page_for(VIEWER)
    expect(page.locator("#vm-rows tr")).not_to_have_count(0)
    expect(page.locator("#nav-audit")).to_be_hidden()
    expect(page.locator("#tasks")).to_be_hidden()
    page.locator("#vm-rows a.vm-link").filter(has_text=datastore.EDGE_VM).click()
    expect(page.locator("#vm-mount-note")).to_be_visible()
    page.goto(f"/#/point/{point_id(point)}")
    expect(page.locator("#mount-status")).to_contain_text("may not mount")
    expect(page.locator("#browser")).to_be_hidden()
    for control in ("a[download]", "#folder-zip", "#sel-zip", "#sel-restore", "#basket-restore", "#unmount"):
        expect(page.locator(control)).to_be_hidden()
    expect(page.get_by_role("button", name="Restore")).to_have_count(0)
    # Forced: the server refuses a mount to this role, CSRF header or not.
    assert fetch(page, "POST", mounts_of(point), me(page)["Csrf"]) == 403
    assert fetch(page, "POST", mounts_of(point)) == 403


def test_an_in_place_only_operator_gets_restores_but_no_downloads(
    page_for: Callable[..., Page], em_api: Callable[[str], EmApi]
) -> None:
    page = page_for(INPLACE)
    assert me(page)["Permissions"]["Download"] is False
    open_names(page, em_api(INPLACE))
    rows = page.locator("#entry-rows tr.file")
    expect(rows.first.get_by_role("button", name="Restore")).to_be_visible()
    expect(page.locator("#entry-rows a[download]")).to_have_count(0)
    for control in ("#folder-zip", "#sel-zip", "#basket-zip"):
        expect(page.locator(control)).to_be_hidden()
    # Forced: a file's download URL, of the mount the page made, from this page's context is refused.
    mounts = page.evaluate(
        "(url) => fetch(url, {headers: {Accept: 'application/json'}}).then(r => r.json())",
        mounts_of(em_api(OPERATOR).point(datastore.EDGE_VM)),
    )
    mount = urlsplit(mounts["VmReplicaPointMounts"][0]["Href"]).path
    assert fetch(page, "GET", f"{mount}/{datastore.EDGE_ROOT}/docs/readme.txt?action=download") == 403
    assert fetch(page, "GET", f"{mount}/{datastore.EDGE_ROOT}/docs/readme.txt") == 200  # it is there


def test_an_operator_is_offered_downloads_and_restores_but_not_the_audit_log(
    page_for: Callable[..., Page], em_api: Callable[[str], EmApi]
) -> None:
    page = page_for(OPERATOR)
    expect(page.locator("#nav-audit")).to_be_hidden()
    open_names(page, em_api(OPERATOR))
    expect(page.locator("#entry-rows a[download]")).to_have_count(len(datastore.HOSTILE_NAMES) + 1)
    expect(page.locator("#entry-rows tr.file").first.get_by_role("button", name="Restore")).to_be_visible()
    expect(page.locator("#folder-zip")).to_be_visible()
    page.goto("/#/audit")
    expect(page.locator("#alert-text")).to_contain_text("Only administrators")
    expect(page.locator("#audit-rows tr")).to_have_count(0)
    assert fetch(page, "GET", "/api/openflr/audit") == 403


def test_only_an_administrator_sees_the_audit_log(page_for: Callable[..., Page]) -> None:
    page = page_for(ADMIN)
    expect(page.locator("#nav-audit")).to_be_visible()
    page.locator("#nav-audit").click()
    expect(page.locator("#view-audit")).to_be_visible()
    expect(page.locator("#audit-count")).to_contain_text("on page 1")
    assert fetch(page, "GET", "/api/openflr/audit") == 200


def test_a_change_without_the_csrf_header_is_refused(
    page_for: Callable[..., Page], em_api: Callable[[str], EmApi]
) -> None:
    point = em_api(OPERATOR).point(datastore.EDGE_VM)
    page = page_for(OPERATOR)
    assert fetch(page, "POST", mounts_of(point)) == 403
    assert fetch(page, "POST", mounts_of(point), "not-the-token") == 403
    assert fetch(page, "POST", "/api/openflr/web/logoff") == 403
    assert me(page)["UserName"]  # still logged on
    assert fetch(page, "POST", mounts_of(point), me(page)["Csrf"]) == 202  # the page's own way works


def test_the_cookie_from_another_site_is_refused(page_for: Callable[..., Page], web_server: Any) -> None:
    page = page_for(OPERATOR)
    csrf = me(page)["Csrf"]
    # The browser itself: a page of another site (localhost is another site than 127.0.0.1) posts to
    # the server with credentials; the SameSite=Strict cookie stays home and the session lives on.
    other = page.context.new_page()
    other.goto(web_server.base.replace("127.0.0.1", "localhost") + "/")
    other.evaluate(
        """async (url) => {
            try { await fetch(url, {method: "POST", mode: "no-cors", credentials: "include"}); } catch {}
        }""",
        web_server.base + "/api/openflr/web/logoff",
    )
    assert fetch(page, "GET", "/api/openflr/me") == 200
    # The server: the cookie with another site's Origin is refused even with the CSRF token.
    logoff = web_server.base + "/api/openflr/web/logoff"
    for extra in (
        {"Origin": "http://evil.example", "X-Openflr-Csrf": csrf},
        {"Sec-Fetch-Site": "cross-site", "X-Openflr-Csrf": csrf},
        {"Origin": "http://evil.example"},
    ):
        answer = page.request.post(logoff, headers=extra)
        assert answer.status == 403, (extra, answer.status, answer.text()[:200])
    assert fetch(page, "GET", "/api/openflr/me") == 200
