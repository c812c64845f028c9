"""What a help-desk operator does on the web page, in a real browser against a real server: log on,
find a VM, open (mount) a point, browse, sort, filter and page, download a file, a selection and a
restore list as ZIPs, restore with keep-both and with overwrite into a ``file://`` target, follow the
restores, read the audit log, log off, and meet the end of a session. Every result is checked
against what the EM API (a token session of the same user) or the target folder says."""

from __future__ import annotations

import io
import os
import re
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from playwright.sync_api import Browser, Download, Page, expect

from tests.support import cli, run_server
from tests.web import datastore
from tests.web.support import (
    ADMIN,
    OPERATOR,
    VIEWPORT,
    WEB_USERS,
    EmApi,
    PageEvents,
    displayed,
    folder_route,
    point_id,
    server_config,
    settled,
    shown_name,
    target_folder,
    user_args,
)

VM = "Win File Server"
DOCS = "C:/Documents"
REPORT = "C:/Documents/report.txt"
OTHER = "C:/new_in_p2.txt"
ENDED = "Your session has ended; log on again."


def shown_names(page: Page) -> list[str]:
    return page.locator("#entry-rows th.name").all_text_contents()


def api_names(entries: list[dict[str, object]]) -> list[str]:
    return [displayed(str(e["Name"])) for e in entries]


def open_folder(page: Page, api: EmApi, path: str, vm: str = VM) -> str:
    """Open ``path`` of ``vm``'s newest point by its address; returns the API session's mount Href."""
    mount = api.mount(vm)
    page.goto(folder_route(api.point(vm), mount, api.entry(mount, path)["Href"]))
    expect(page.locator("#entry-rows tr").first).to_be_visible()
    return mount


def api_bytes(api: EmApi, mount: str, path: str) -> bytes:
    r = api.api.get(f"{mount}/{quote(path, safe='/:')}?action=download", headers=api.headers)
    assert r.status_code == 200, (path, r.status_code, r.text[:300])
    return r.content


def downloaded(download: Download) -> bytes:
    assert download.failure() is None, download.failure()
    return Path(download.path()).read_bytes()


def zip_files(data: bytes) -> dict[str, bytes]:
    """The files of a ZIP by their path in it (folders and the skip list left out)."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return {
            i.filename: z.read(i)
            for i in z.infolist()
            if not i.is_dir() and i.filename != "openflr-skipped.txt"
        }


def by_last_name(files: dict[str, bytes]) -> dict[str, bytes]:
    """The files of a ZIP by their last name (each name once)."""
    found = {path.rsplit("/", 1)[-1]: content for path, content in files.items()}
    assert len(found) == len(files), sorted(files)
    return found


def no_trouble(page: Page, events: PageEvents) -> None:
    """No page error, dialog or CSP report, and no error message left on the page."""
    expect(page.locator("#alert")).to_be_hidden()
    assert events.errors == [], events.errors
    assert events.dialogs == [], events.dialogs
    assert events.csp_violations == [], events.csp_violations


def test_log_on_find_a_vm_mount_and_browse(
    page_for: Callable[..., Page], events_of: Callable[[Page], PageEvents], em_api: Callable[[str], EmApi]
) -> None:
    api = em_api(OPERATOR)
    page = page_for(OPERATOR)
    expect(page.locator("#who-name")).to_have_text(WEB_USERS[OPERATOR][0])
    expect(page.locator("#who-role")).to_contain_text("Restore operator")
    # Find the VM by typing part of its name: the others go.
    expect(page.locator("#vm-rows tr")).to_have_count(3)  # Win File Server, lin-web01, web-edge
    page.locator("#vm-filter").fill("file serv")
    expect(page.locator("#vm-rows tr")).to_have_count(1)
    expect(page.locator("#vm-rows a")).to_have_text(VM)
    page.locator("#vm-filter").press("Enter")  # the one VM left opens
    # Its points, newest first, as the API has them.
    replica = next(r for r in api.get("/api/replicas?format=Entity")["Replicas"] if r["Name"].startswith(VM))
    down = next(lk["Href"] for lk in replica["Links"] if lk["Type"] == "VmReplicaPointReferenceList")
    points = api.get(down + "?format=Entity")["VmReplicaPoints"]
    times = sorted((p["CreationTimeUTC"] for p in points), reverse=True)
    rows = page.locator("#point-rows tr")
    expect(rows).to_have_count(len(points))
    shown = [rows.nth(n).locator("time").get_attribute("datetime") for n in range(len(points))]
    assert shown == times
    # Open the newest: the mount starts at once and the drives appear.
    page.locator("#point-rows a", has_text="Open").first.click()
    expect(page.locator("#root-list a")).to_have_text(["C:", "S:"])
    newest = api.point(VM)
    assert f"#/point/{point_id(newest)}" in page.url
    page.locator("#root-list a", has_text="C:").click()
    mount = api.mount(VM)
    expect(page.locator("#entry-rows th.name")).to_have_text(
        api_names(api.entries(mount, "C:", pageSize=100, page=1))
    )
    page.locator("#entry-rows th.name a", has_text="Documents").click()
    docs = api_names(api.entries(mount, DOCS, pageSize=100, page=1))
    expect(page.locator("#entry-rows th.name")).to_have_text(docs)
    expect(page.locator("#crumbs [aria-current=page]")).to_have_text("Documents")
    assert page.url.endswith(f"#/point/{point_id(newest)}/C:/Documents")
    # Sizes in human units, times local with UTC on hover.
    report = page.locator("#entry-rows tr", has=page.locator("th.name", has_text="report.txt"))
    size = api.entry(mount, REPORT)["Size"]
    expect(report.locator("td.num")).to_have_text(f"{size / 1024:.2f} KiB")
    assert (report.locator("time").get_attribute("title") or "").endswith("UTC")
    # A reload keeps the session (the cookie) and finds this session's mount; back goes up.
    page.reload()
    expect(page.locator("#entry-rows th.name")).to_have_text(docs)
    page.go_back()
    expect(page.locator("#crumbs [aria-current=page]")).to_have_text("C:")
    page.go_forward()
    expect(page.locator("#entry-rows th.name")).to_have_text(docs)
    expect(page).to_have_title(f"C:/Documents · {VM} · openflr")
    # The breadcrumb leads back to the drives.
    page.locator("#crumbs a").nth(2).click()
    expect(page.locator("#root-list a")).to_have_count(2)
    # Closing the point unmounts it: the session has no mount of it any more.
    mounts = f"/api/vmReplicaPoints/{point_id(newest)}/mounts"
    json = {"Accept": "application/json"}
    assert len(page.request.get(mounts, headers=json).json()["VmReplicaPointMounts"]) == 1
    page.locator("#unmount").click()
    expect(page.locator("#point-rows tr")).to_have_count(len(points))
    assert page.request.get(mounts, headers=json).json()["VmReplicaPointMounts"] in (None, [])
    no_trouble(page, events_of(page))


def test_sort_filter_and_pages_are_the_servers(
    page_for: Callable[..., Page], events_of: Callable[[Page], PageEvents], em_api: Callable[[str], EmApi]
) -> None:
    api = em_api(OPERATOR)
    page = page_for(OPERATOR)
    mount = open_folder(page, api, DOCS)
    size = page.locator("#entries button.sort[data-sort=size]")
    size.click()
    expect(page).to_have_url(re.compile(r"orderBy=size&order=asc"))
    expect(page.locator("#entries th[data-sort=size]")).to_have_attribute("aria-sort", "ascending")
    ascending = api_names(api.entries(mount, DOCS, pageSize=100, page=1, orderBy="size", order="asc"))
    expect(page.locator("#entry-rows th.name")).to_have_text(ascending)
    size.click()
    expect(page).to_have_url(re.compile(r"orderBy=size&order=desc"))
    descending = api_names(api.entries(mount, DOCS, pageSize=100, page=1, orderBy="size", order="desc"))
    assert descending != ascending
    expect(page.locator("#entry-rows th.name")).to_have_text(descending)
    page.locator("#entries button.sort[data-sort=name]").click()
    by_name = api_names(api.entries(mount, DOCS, pageSize=100, page=1, orderBy="name", order="asc"))
    expect(page.locator("#entry-rows th.name")).to_have_text(by_name)
    # The filter (typed, debounced) narrows the whole folder on the server and lands in the address.
    page.locator("#folder-filter").fill("REP")
    expect(page).to_have_url(re.compile(r"filter=REP"))
    matching = api_names(
        api.entries(mount, DOCS, pageSize=100, page=1, orderBy="name", order="asc", filter="REP")
    )
    assert 0 < len(matching) < len(by_name)
    expect(page.locator("#entry-rows th.name")).to_have_text(matching)
    page.locator("#folder-filter").fill("no such name here")
    expect(page.locator("#entry-rows")).to_contain_text("Nothing in this folder has")
    page.locator("#folder-filter").fill("")
    expect(page.locator("#entry-rows th.name")).to_have_text(by_name)
    # A 100,000-file folder: one server page at a time in the DOM, pages by the buttons and the address.
    big = f"{datastore.BIG_ROOT}/{datastore.BIG_FOLDER}"
    big_mount = open_folder(page, api, big, datastore.EDGE_VM)
    expect(page.locator("#entry-rows tr")).to_have_count(100)
    expect(page.locator("#page-of")).to_have_text(f"of {datastore.BIG_COUNT // 100:,}")
    page.locator("#page-last").click()
    expect(page).to_have_url(re.compile(rf"page={datastore.BIG_COUNT // 100}"))
    last = api_names(api.entries(big_mount, big, pageSize=100, page=datastore.BIG_COUNT // 100))
    expect(page.locator("#entry-rows th.name")).to_have_text(last)
    page.locator("#page-prev").click()
    previous = api_names(api.entries(big_mount, big, pageSize=100, page=datastore.BIG_COUNT // 100 - 1))
    expect(page.locator("#entry-rows th.name")).to_have_text(previous)
    page.locator("#entries button.sort[data-sort=size]").click()
    page.locator("#entries button.sort[data-sort=size]").click()
    expect(page).to_have_url(re.compile(r"orderBy=size&order=desc"))
    expect(page.locator("#entry-rows th.name").first).to_have_text(datastore.BIGGEST)
    assert page.locator("#entry-rows tr").count() == 100
    no_trouble(page, events_of(page))


def test_downloads_match_the_api(
    page_for: Callable[..., Page], events_of: Callable[[Page], PageEvents], em_api: Callable[[str], EmApi]
) -> None:
    api = em_api(OPERATOR)
    page = page_for(OPERATOR)
    mount = open_folder(page, api, DOCS)
    # One file: a plain link (the browser's own download, resumable).
    link = page.get_by_role("link", name="Download report.txt", exact=True)
    assert (link.get_attribute("href") or "").endswith("/C:/Documents/report.txt?action=download")
    with page.expect_download() as info:
        link.click()
    assert info.value.suggested_filename == "report.txt"
    assert downloaded(info.value) == api_bytes(api, mount, REPORT)
    # Two selected files as one ZIP.
    entries = {e["Name"]: e for e in api.entries(mount, DOCS)}
    picked = ["report.txt", "empty.txt"]
    for name in picked:
        page.get_by_label(f"Select {name}", exact=True).check()
    expect(page.locator("#selection-count")).to_have_text("2 selected")
    with page.expect_download() as info:
        page.locator("#sel-zip").click()
    files = by_last_name(zip_files(downloaded(info.value)))
    assert files == {name: api_bytes(api, mount, entries[name]["Path"]) for name in picked}
    page.get_by_label("Select empty.txt", exact=True).uncheck()
    # The folder itself as a ZIP: every file of it, as the API serves each.
    with page.expect_download() as info:
        page.locator("#folder-zip").click()
    assert info.value.suggested_filename == "Documents.zip"
    folder = zip_files(downloaded(info.value))
    listed = {
        f"Documents/{e['Name']}": e["Path"] for e in api.entries(mount, DOCS) if e["Type"] == "FileEntry"
    }
    assert len(listed) > 3
    assert {n: folder.get(n) for n in listed} == {n: api_bytes(api, mount, p) for n, p in listed.items()}
    # A restore list from two folders of the mount, as one ZIP.
    page.get_by_label("Select report.txt", exact=True).check()
    page.locator("#sel-basket").click()
    page.locator("#crumbs a", has_text="C:").click()
    expect(page.locator("#crumbs [aria-current=page]")).to_have_text("C:")
    page.get_by_label("Select new_in_p2.txt", exact=True).check()
    page.locator("#sel-basket").click()
    expect(page.locator("#basket-list li")).to_have_count(2)
    expect(page.locator("#basket-list")).to_contain_text(REPORT)
    expect(page.locator("#basket-list")).to_contain_text(OTHER)
    with page.expect_download() as info:
        page.locator("#basket-zip").click()
    assert by_last_name(zip_files(downloaded(info.value))) == {
        "report.txt": api_bytes(api, mount, REPORT),
        "new_in_p2.txt": api_bytes(api, mount, OTHER),
    }
    no_trouble(page, events_of(page))


def finished_task(page: Page, count: int) -> str:
    """Wait for the newest of ``count`` restores in the task panel to finish; its message."""
    expect(page.locator("#task-list li")).to_have_count(count, timeout=30_000)
    newest = page.locator("#task-list li").first
    expect(newest.locator(".state")).to_have_text(re.compile("Done|Failed|Refused"), timeout=30_000)
    expect(newest.locator(".state")).to_have_text("Done")
    return newest.locator(".task-message").text_content() or ""


def restore_row(page: Page, name: str, *, overwrite: bool) -> str:
    """Restore one item of the folder shown through its row; the dialog's sentence."""
    page.get_by_role("button", name=f"Restore {name}…", exact=True).click()
    dialog = page.locator("#restore-dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("#restore-confirm")).to_be_enabled()
    page.locator("#restore-overwrite" if overwrite else "#restore-keep").check()
    what = page.locator("#restore-what").text_content() or ""
    page.locator("#restore-confirm").click()
    expect(dialog).to_be_hidden()
    return what


def test_restore_keep_both_and_overwrite(
    page_for: Callable[..., Page],
    events_of: Callable[[Page], PageEvents],
    em_api: Callable[[str], EmApi],
    restored: Path,
) -> None:
    api = em_api(OPERATOR)
    page = page_for(OPERATOR)
    mount = open_folder(page, api, DOCS)
    original = api_bytes(api, mount, REPORT)
    target = target_folder(restored, VM, "C:") / "Documents" / "report.txt"
    beside = set(target.parent.glob("RESTORED_*_report.txt")) if target.parent.exists() else set()
    # Cancel and Escape write nothing.
    page.get_by_role("button", name="Restore report.txt…", exact=True).click()
    page.locator("#restore-cancel").click()
    page.get_by_role("button", name="Restore report.txt…", exact=True).click()
    page.keyboard.press("Escape")
    expect(page.locator("#restore-dialog")).to_be_hidden()
    expect(page.locator("#task-list li")).to_have_count(0)
    # Overwrite: the dialog names the target file; the file is the point's.
    what = restore_row(page, "report.txt", overwrite=True)
    assert what.startswith(f"Restore {REPORT} to file://{target}"), what
    assert "overwriting" in what
    message = finished_task(page, 1)
    assert "Restored 1 item(s)" in message, message
    assert target.read_bytes() == original
    # Keep both: the file changed on the guest stays; the point's copy is written beside it.
    target.write_bytes(b"changed on the guest since the point\n")
    what = restore_row(page, "report.txt", overwrite=False)
    assert "keeping the existing file" in what and "RESTORED_" in what, what
    message = finished_task(page, 2)
    assert "RESTORED_" in message, message
    assert target.read_bytes() == b"changed on the guest since the point\n"
    new = set(target.parent.glob("RESTORED_*_report.txt")) - beside
    assert len(new) == 1, new
    assert new.pop().read_bytes() == original
    # Overwrite again: the point's content is back.
    restore_row(page, "report.txt", overwrite=True)
    finished_task(page, 3)
    assert target.read_bytes() == original
    # A restore list from two folders, in one go.
    other = target_folder(restored, VM, "C:") / "new_in_p2.txt"
    other.unlink(missing_ok=True)
    page.get_by_label("Select report.txt", exact=True).check()
    page.locator("#sel-basket").click()
    page.locator("#crumbs a", has_text="C:").click()
    page.get_by_label("Select new_in_p2.txt", exact=True).check()
    page.locator("#sel-basket").click()
    page.locator("#basket-restore").click()
    expect(page.locator("#restore-items li")).to_have_count(2)
    expect(page.locator("#restore-items")).to_contain_text(f"file://{other}")
    page.locator("#restore-overwrite").check()
    expect(page.locator("#restore-confirm")).to_be_enabled()
    page.locator("#restore-confirm").click()
    expect(page.locator("#task-list li")).to_have_count(5)
    for n in range(2):
        expect(page.locator("#task-list li").nth(n).locator(".state")).to_have_text("Done", timeout=30_000)
    assert other.read_bytes() == api_bytes(api, mount, OTHER)
    assert target.read_bytes() == original
    # After a reload the panel still lists the session's restores, named, with their results.
    page.reload()
    expect(page.locator("#task-list li")).to_have_count(5)
    expect(page.locator("#task-list li .state")).to_have_text(["Done"] * 5)
    expect(page.locator("#task-list")).to_contain_text(f"Restore (keep both) {REPORT}")
    expect(page.locator("#task-list")).to_contain_text(f"Restore (overwrite) {OTHER}")
    # Clearing the finished restores forgets them on the server too.
    page.locator("#tasks-clear").click()
    expect(page.locator("#task-list li")).to_have_count(0)
    expect(page.locator("#tasks-empty")).to_be_visible()
    tasks = page.request.get("/api/tasks", headers={"Accept": "application/json"}).json()["Tasks"] or []
    assert [t for t in tasks if t["Operation"] == "FileRestoreFromMountPoint"] == []
    no_trouble(page, events_of(page))


def test_audit_log_shows_what_was_done(
    page_for: Callable[..., Page], events_of: Callable[[Page], PageEvents], em_api: Callable[[str], EmApi]
) -> None:
    api = em_api(ADMIN)
    page = page_for(ADMIN)
    open_folder(page, api, DOCS)
    href = page.get_by_role("link", name="Download report.txt", exact=True).get_attribute("href")
    assert href
    assert page.request.get(href).status == 200  # with the page's cookie: audited as its user
    page.locator("#nav-audit").click()
    page.locator("#audit-user").fill(WEB_USERS[ADMIN][0])
    page.locator("#audit-action").select_option("download")
    page.locator("#audit-form button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"#/audit\?user=web-admin&action=download"))
    settled(page)
    rows = page.locator("#audit-rows tr")
    expect(rows.first).to_contain_text(REPORT)
    expect(rows.first).to_contain_text("success")
    expect(rows.first).to_contain_text(VM)
    for n in range(rows.count()):
        expect(rows.nth(n)).to_contain_text("download")
        expect(rows.nth(n)).to_contain_text(WEB_USERS[ADMIN][0])
    # A filter that matches nothing says so.
    page.locator("#audit-since").fill("2099-01-01T00:00:00")
    page.locator("#audit-form button[type=submit]").click()
    expect(page.locator("#audit-rows")).to_have_text("No records match.")
    page.locator("#audit-reset").click()
    expect(rows.first).to_contain_text("download")
    # The scan report.
    page.locator("#nav-inventory").click()
    expect(page.locator("#inventory-summary")).to_contain_text("3 replicas")
    no_trouble(page, events_of(page))


def test_the_operator_sees_no_administration(page_for: Callable[..., Page]) -> None:
    page = page_for(OPERATOR)
    expect(page.locator("#vm-rows tr").first).to_be_visible()
    expect(page.locator("#nav-audit")).to_be_hidden()
    expect(page.locator("#nav-inventory")).to_be_hidden()


def test_log_off_and_the_end_of_a_session(
    page_for: Callable[..., Page], events_of: Callable[[Page], PageEvents], em_api: Callable[[str], EmApi]
) -> None:
    api = em_api(OPERATOR)
    page = page_for(OPERATOR)
    open_folder(page, api, DOCS)
    where = page.url
    # The session ends behind the page's back (idle expiry, restart, ended elsewhere) …
    me = page.request.get("/api/openflr/me", headers={"Accept": "application/json"}).json()
    r = api.api.delete(f"/api/logonSessions/{me['SessionId']}", headers=api.headers)
    assert r.status_code == 204, r.text
    # … and the next thing the page does says so and shows the log-on form.
    page.locator("#entries button.sort[data-sort=name]").click()
    expect(page.locator("#logon-message")).to_have_text(ENDED)
    expect(page.locator("#view-logon")).to_be_visible()
    expect(page.locator("#who")).to_be_hidden()
    # Logging on again returns to where the user was (a new mount of the same point).
    name, password = WEB_USERS[OPERATOR]
    page.locator("#logon-user").fill(name)
    page.locator("#logon-password").fill(password)
    page.locator("#logon-submit").click()
    expect(page.locator("#entry-rows th.name").first).to_be_visible()
    assert page.url.split("?")[0] == where
    expect(page.locator("#crumbs [aria-current=page]")).to_have_text("Documents")
    # A wrong password is refused with the server's message.
    # Log off: the cookie no longer works, the form comes back.
    page.locator("#logoff").click()
    expect(page.locator("#logon-message")).to_have_text("You have logged off.")
    assert page.request.get("/api/openflr/me").status == 401
    page.locator("#logon-user").fill(name)
    page.locator("#logon-password").fill("not the password")
    page.locator("#logon-submit").click()
    expect(page.locator("#logon-message")).to_contain_text("Logon failed")
    expect(page.locator("#who")).to_be_hidden()
    no_trouble(page, events_of(page))


def test_an_idle_session_ends_and_the_page_says_so(
    browser: Browser, web_store: Path, tmp_path: Path, restored: Path
) -> None:
    """A server of its own whose sessions end after 3 idle seconds."""
    data = tmp_path / "data"
    data.mkdir()
    name, password = WEB_USERS[OPERATOR]
    cli(data, *user_args(OPERATOR), stdin=password + "\n")
    config = server_config(web_store, restored).replace(
        "[sessions]\n", "[sessions]\nidle_timeout = 3\nsweep_interval = 0.5\n", 1
    )
    with run_server(data, https=False, config=config) as server:
        context = browser.new_context(viewport=VIEWPORT, base_url=server.base)  # type: ignore[arg-type]
        try:
            page = context.new_page()
            page.goto("/#/?q=lin")
            page.locator("#logon-user").fill(name)
            page.locator("#logon-password").fill(password)
            page.locator("#logon-submit").click()
            expect(page.locator("#vm-rows tr")).to_have_count(1)
            page.locator("#vm-rows a").first.click()
            page.locator("#point-rows a", has_text="Open").first.click()
            expect(page.locator("#root-list a").first).to_be_visible()
            where = page.url
            time.sleep(5)  # idle past the timeout and a sweep
            page.locator("#root-list a").first.click()
            expect(page.locator("#logon-message")).to_have_text(ENDED)
            expect(page.locator("#logon-user")).to_be_focused()
            page.locator("#logon-user").fill(name)
            page.locator("#logon-password").fill(password)
            page.locator("#logon-submit").click()
            # Back where the click was going, on a new mount.
            expect(page.locator("#entry-rows tr").first).to_be_visible()
            assert page.url.startswith(where + "/")
        finally:
            context.close()


MANIFEST = """name = "{name}"
platform = "KVM"
os = "Linux"

[[points]]
name = "p1"
time = "2026-11-01T21:00:00Z"
disks = [{disks}]
"""


def test_what_a_mount_or_a_scan_reports_is_shown(browser: Browser, tmp_path: Path) -> None:
    """A server of its own over a datastore with a point whose disks hold nothing readable (the mount
    works and says why), a point whose image went away (the mount fails naming it) and a folder the
    scan could not read (the administrators' scan report)."""
    store = tmp_path / "ds"
    for name, disks in (
        ("blank-vm", {"zeros.raw": b"", "junk.raw": b"no file system here\n" * 1000}),
        ("gone-vm", {"gone.raw": b""}),
    ):
        folder = store / name
        folder.mkdir(parents=True)
        listed = ", ".join(f'"{d}"' for d in disks)
        (folder / "openflr-vm.toml").write_text(MANIFEST.format(name=name, disks=listed))
        for disk, content in disks.items():
            with open(folder / disk, "wb") as f:
                f.write(content)
                f.truncate(4 * 1024 * 1024)
    (store / "broken").mkdir()
    (store / "broken" / "openflr-vm.toml").write_text("name = \n[[points\n")
    data = tmp_path / "data"
    data.mkdir()
    name, password = WEB_USERS[ADMIN]
    cli(data, *user_args(ADMIN), stdin=password + "\n")
    config = f'[[datastores]]\nname = "probe"\npath = "{store}"\njob = "Probe"\n'
    with run_server(data, https=False, config=config) as server:
        (store / "gone-vm" / "gone.raw").unlink()  # after the scan: the point is listed, its image gone
        context = browser.new_context(viewport=VIEWPORT, base_url=server.base)  # type: ignore[arg-type]
        try:
            page = context.new_page()
            page.goto("/#/inventory")
            page.locator("#logon-user").fill(name)
            page.locator("#logon-password").fill(password)
            page.locator("#logon-submit").click()
            expect(page.locator("#inventory-summary")).to_contain_text("2 replicas, 2 points, 1 problem.")
            problem = page.locator("#problem-rows tr")
            expect(problem).to_have_count(1)
            expect(problem).to_contain_text(str(store / "broken"))
            expect(problem).to_contain_text("openflr-vm.toml: Invalid value")
            expect(page.locator("#alert")).to_be_hidden()
            # A point whose disks hold no file system it can read: mounted, and the notes say why.
            page.locator("#nav-restore").click()
            page.locator("#vm-rows a", has_text="blank-vm").click()
            page.locator("#point-rows a", has_text="Open").click()
            status = page.locator("#mount-status")
            expect(status).to_contain_text("The mount reported: Ok (volume 0 is not a root: empty")
            expect(status).to_contain_text("unknown file system")
            expect(page.locator("#root-list a")).to_have_text(["Volume$1:"])
            # A point whose image went away: the mount fails naming the file, and can be tried again.
            page.locator("#nav-restore").click()
            page.locator("#vm-rows a", has_text="gone-vm").click()
            page.locator("#point-rows a", has_text="Open").click()
            expect(status).to_contain_text("The mount failed: The restore point cannot be mounted:")
            expect(status).to_contain_text("gone-vm/gone.raw: file not found")
            expect(page.locator("#browser")).to_be_hidden()
            status.get_by_role("button", name="Try again").click()
            expect(status).to_contain_text("gone-vm/gone.raw: file not found")
        finally:
            context.close()


def test_a_list_zip_of_hostile_names_holds_their_bytes(
    page_for: Callable[..., Page], events_of: Callable[[Page], PageEvents], em_api: Callable[[str], EmApi]
) -> None:
    """Hostile names (markup, quotes, a line break, bytes that are not UTF-8) travel in the list ZIP's
    form as the API gives them, and the ZIP holds each file's own bytes."""
    api = em_api(OPERATOR)
    page = page_for(OPERATOR)
    open_folder(page, api, f"{datastore.EDGE_ROOT}/{datastore.HOSTILE_FOLDER}", datastore.EDGE_VM)
    picked = [
        n for n, raw in enumerate(datastore.HOSTILE_NAMES) if b"\n" in raw or b"<" in raw or b"\xff" in raw
    ]
    assert len(picked) >= 4
    for n in picked:
        label = f"Select {displayed(shown_name(datastore.HOSTILE_NAMES[n]))}"
        page.get_by_label(label, exact=True).check()
    expect(page.locator("#selection-count")).to_have_text(f"{len(picked)} selected")
    with page.expect_download() as info:
        page.locator("#sel-zip").click()
    contents = sorted(zip_files(downloaded(info.value)).values())
    assert contents == sorted(f"hostile name {n}\n".encode() for n in picked)
    no_trouble(page, events_of(page))


def test_hostile_names_restore_under_their_own_bytes(
    page_for: Callable[..., Page],
    events_of: Callable[[Page], PageEvents],
    em_api: Callable[[str], EmApi],
    restored: Path,
) -> None:
    """Restored through the page's selection, each hostile name lands on the file:// target under
    the bytes the guest holds, with its own content."""
    api = em_api(OPERATOR)
    page = page_for(OPERATOR)
    open_folder(page, api, f"{datastore.EDGE_ROOT}/{datastore.HOSTILE_FOLDER}", datastore.EDGE_VM)
    picked = [
        n for n, raw in enumerate(datastore.HOSTILE_NAMES) if b"\n" in raw or b"\xe9" in raw or b"<svg" in raw
    ]
    assert len(picked) == 3
    folder = target_folder(restored, datastore.EDGE_VM, datastore.EDGE_ROOT) / datastore.HOSTILE_FOLDER
    for n in picked:
        Path(os.fsdecode(bytes(folder) + b"/" + datastore.HOSTILE_NAMES[n])).unlink(missing_ok=True)
        page.get_by_label(f"Select {displayed(shown_name(datastore.HOSTILE_NAMES[n]))}", exact=True).check()
    page.locator("#sel-restore").click()
    expect(page.locator("#restore-items li")).to_have_count(3)
    page.locator("#restore-overwrite").check()
    expect(page.locator("#restore-what")).to_have_text(
        "Restore 3 items to their original locations, overwriting what exists there."
    )
    page.locator("#restore-confirm").click()
    tasks = page.locator("#task-list li")
    expect(tasks).to_have_count(3)
    expect(tasks.locator(".state")).to_have_text(["Done"] * 3, timeout=30_000)
    for n in picked:
        on_disk = Path(os.fsdecode(bytes(folder) + b"/" + datastore.HOSTILE_NAMES[n]))
        assert on_disk.read_bytes() == f"hostile name {n}\n".encode(), on_disk
    no_trouble(page, events_of(page))
