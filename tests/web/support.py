"""Plain helpers of the browser tests (the fixtures are in tests/web/conftest.py): the web users, the
server's configuration, the EM API as a test checks the page against it, and axe."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_from_bytes, unquote, urlsplit

import tomli_w
from playwright.sync_api import ConsoleMessage, Dialog, Page, expect

from openflr.core.names import from_url
from tests.api.flr import headers, mount, point_href
from tests.support import SHARED_SERVER, Api
from tests.web import datastore

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("OPENFLR_CHROMIUM", "/usr/bin/chromium"))
"""Debian's Chromium (scripts/setup-test-deps); Playwright never downloads a browser of its own."""
AXE_VERSION = "4.14.1"
AXE = REPO / ".cache" / "axe-core" / AXE_VERSION / "axe.min.js"
"""Fetched and hash-checked by scripts/fetch-axe-core (called by scripts/setup-test-deps)."""
SCREENSHOTS = REPO / "docs" / "screenshots"
VIEWPORT = {"width": 1280, "height": 800}

ADMIN, OPERATOR, VIEWER, INPLACE = "PortalAdministrator", "RestoreOperator", "PortalUser", "InPlaceOnly"
ROLES = (ADMIN, OPERATOR, VIEWER, INPLACE)
WEB_USERS: dict[str, tuple[str, str]] = {
    ADMIN: ("web-admin", "Adm1n!web-pass"),
    OPERATOR: ("web-operator", "Op3rator!web-pass"),
    VIEWER: ("web-viewer", "V1ewer!web-pass"),
    INPLACE: ("web-inplace", "InPl4ce!web-pass"),
}
"""Each role the tests log on as: (user name, password). ``InPlaceOnly`` is a RestoreOperator added
with ``--inplace-only`` (restores to the original location, no downloads)."""

DEMO_VMS = {"Win File Server": ("C:", "S:"), "lin-web01": ("/",)}
"""The demo datastore's VMs and the guest roots that get a restore target."""
EDGE_ROOTS = (datastore.EDGE_ROOT, datastore.BIG_ROOT)


def shown_name(raw: bytes) -> str:
    """A name as the API shows it (escapes for bytes that are not UTF-8 and for control characters,
    docs/STORAGE-NOTES.md, "Names") from the bytes on disk."""
    return from_url(quote_from_bytes(raw, safe="").encode("ascii"))


_MARKED = re.compile(
    "[\u0000-\u001f\u007f-\u009f\u00ad\u061c\u115f\u1160\u180e\u200b-\u200f\u2028-\u202e"
    "\u2060-\u206f\u3164\ufeff\ufff9-\ufffb\uef00-\uefff]"
)


def displayed(name: str) -> str:
    """The text the page must show for a name the API gives: the name itself, except that a byte
    that is not UTF-8 (or a control character; the API's escape U+EF00 + byte) shows as ``\\xNN`` and
    a character that is invisible or turns the text's direction as ``[U+XXXX]``
    (src/openflr/web/static/js/dom.js, ``nameText``)."""

    def marker(found: re.Match[str]) -> str:
        code = ord(found.group())
        return f"\\x{code - 0xEF00:02X}" if 0xEF00 <= code <= 0xEFFF else f"[U+{code:04X}]"

    return _MARKED.sub(marker, name)


def settled(page: Page) -> None:
    """Wait until the page has drawn the view its address names: the page marks ``<main>``
    ``aria-busy`` from the moment a form or link changes the address until that view is drawn, so
    what a test reads next is the answer and not the view it replaced."""
    expect(page.locator("main")).to_have_attribute("aria-busy", "false")


def point_id(point_href: str) -> str:
    """The id the page's routes use for a point (the last segment of its Href)."""
    return unquote(urlsplit(point_href).path.rstrip("/").rsplit("/", 1)[-1])


def folder_route(point_href: str, mount_href: str, entry_href: str) -> str:
    """The page's address of a folder: ``/#/point/<id>/<path below the mount, as the API encodes it>``."""
    below = urlsplit(entry_href).path[len(urlsplit(mount_href).path) + 1 :]
    return f"/#/point/{quote(point_id(point_href), safe='')}/{below}"


def user_args(role: str) -> tuple[str, ...]:
    """``openflr users add`` arguments for ``role``'s user (the password goes to stdin)."""
    name = WEB_USERS[role][0]
    if role == INPLACE:
        return ("users", "add", name, "--role", OPERATOR, "--inplace-only")
    return ("users", "add", name, "--role", role)


def target_folder(restored: Path, vm: str, root: str) -> Path:
    """Where the ``file://`` restore target of ``vm``'s guest root ``root`` writes."""
    return restored / vm / (root.strip("/:") or "root")


def server_config(store: Path, restored: Path) -> str:
    """openflr.toml: the ``demo`` and ``web`` datastores, a ``file://`` restore target for every guest
    root below ``restored``, and the shared servers' loosened logon limits (tests/support.py)."""
    stores: list[dict[str, Any]] = []
    for name, job, vms in (
        ("demo", "Demo Replication", DEMO_VMS),
        ("web", "Web Replication", {datastore.EDGE_VM: EDGE_ROOTS}),
    ):
        guests = []
        for vm, roots in vms.items():
            targets = {}
            for root in roots:
                folder = target_folder(restored, vm, root)
                folder.mkdir(parents=True, exist_ok=True)
                targets[root] = folder.as_uri()
            guests.append({"vm": vm, "targets": targets})
        stores.append({"name": name, "path": str(store / "datastores" / name), "job": job, "guests": guests})
    return SHARED_SERVER + tomli_w.dumps({"datastores": stores})


class EmApi:
    """The EM API as one web user sees it (a token header, JSON): what the page must agree with."""

    def __init__(self, api: Api, role: str) -> None:
        self.api = api
        name, password = WEB_USERS[role]
        r = api.post("/api/sessionMngr/?v=latest", auth=(name, password))
        assert r.status_code == 201, r.text
        self.token = r.headers["X-RestSvcSessionId"]
        self.headers = headers(self.token)
        self._mounts: dict[tuple[str, int], str] = {}

    def get(self, url: str, **kw: Any) -> Any:
        r = self.api.get(url, headers={**self.headers, **kw.pop("headers", {})}, **kw)
        assert r.status_code == 200, f"{url}: {r.status_code} {r.text[:500]}"
        return r.json()

    def point(self, vm: str, platform: str = "KVM", index: int = -1) -> str:
        """The Href of a replica point of ``vm`` (newest by default)."""
        return point_href(self.api, self.token, platform, vm, index)

    def mount(self, vm: str, platform: str = "KVM", index: int = -1) -> str:
        """The Href of this session's mount of ``vm``'s point (mounted once)."""
        key = (vm, index)
        if key not in self._mounts:
            self._mounts[key] = mount(self.api, self.token, self.point(vm, platform, index))
        return self._mounts[key]

    def folder(self, mount_href: str, path: str, **params: str | int) -> dict[str, Any]:
        """A folder listing (``action=listAll`` and ``params``) as JSON; ``path`` as the guest shows it."""
        query = "&".join(f"{k}={quote(str(v), safe='')}" for k, v in {"action": "listAll", **params}.items())
        body: dict[str, Any] = self.get(f"{mount_href}/{quote(path, safe='/:')}?{query}")
        return body

    def entries(self, mount_href: str, path: str, **params: str | int) -> list[dict[str, Any]]:
        """A folder's entries (folders first) as the API gives them, of one page when ``params`` ask."""
        body = self.folder(mount_href, path, **params)
        dirs = (body["Directories"] or {}).get("DirectoryEntries", [])
        files = (body["Files"] or {}).get("FileEntries", [])
        return [*dirs, *files]

    def entry(self, mount_href: str, path: str) -> dict[str, Any]:
        """One file or folder (its FileEntry or DirectoryEntry)."""
        body = self.get(f"{mount_href}/{quote(path, safe='/:')}")
        found: dict[str, Any] = body.get("DirectoryEntry") or body["FileEntry"]
        return found

    def names(self, mount_href: str, path: str) -> list[str]:
        """The ``Name`` of every entry of a folder (folders first), as the API gives them."""
        body = self.folder(mount_href, path)
        dirs = (body["Directories"] or {}).get("DirectoryEntries", [])
        files = (body["Files"] or {}).get("FileEntries", [])
        return [e["Name"] for e in [*dirs, *files]]

    def close(self) -> None:
        self.api.delete(self.api.session_href(self.token), headers=self.headers)


@dataclass
class PageEvents:
    """What a page did besides drawing: dialogs it opened (each dismissed), console messages, uncaught
    errors, and Content-Security-Policy violations the browser reported."""

    dialogs: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def csp_violations(self) -> list[str]:
        return [m for m in self.console if "Content Security Policy" in m or "Content-Security-Policy" in m]

    def watch(self, page: Page) -> None:
        def on_dialog(dialog: Dialog) -> None:
            self.dialogs.append(f"{dialog.type}: {dialog.message}")
            dialog.dismiss()

        def on_console(message: ConsoleMessage) -> None:
            self.console.append(f"{message.type}: {message.text}")

        page.on("dialog", on_dialog)
        page.on("console", on_console)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))


SERIOUS = ("serious", "critical")


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's violations of impact serious or critical on the page as it is now.

    axe is evaluated through the DevTools protocol (``page.evaluate``), which the page's
    Content-Security-Policy does not govern, so the page keeps its real policy: a ``<script>`` tag
    (``page.add_script_tag``) would be refused by it, and ``bypass_csp`` would test another page."""
    assert AXE.exists(), f"{AXE} is missing: run scripts/setup-test-deps (it fetches axe-core)"
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE.read_text(encoding="utf-8") + "\n;undefined")
    found: list[dict[str, Any]] = page.evaluate(
        """async () => {
            const result = await window.axe.run(document, {resultTypes: ["violations"]});
            return result.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map(n => n.target.join(" ") + ": " + n.failureSummary),
            }));
        }"""
    )
    return [v for v in found if v["impact"] in SERIOUS]


def describe(violations: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"{v['impact']} {v['id']}: {v['help']}\n  " + "\n  ".join(v["nodes"]) for v in violations
    )
