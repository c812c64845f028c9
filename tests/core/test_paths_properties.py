"""Property tests of guest path parsing (``GuestView.parse`` and ``locate``): whatever a client puts
after ``…/mounts/{id}/`` (already percent-decoded, as uvicorn hands it over), the result is an item
below one of the guest's own roots, reached by walking down from that root, or a clean 400/404.

The file systems here are fakes that behave like a careless engine: they join the components with
their separator, split again and honour ``..`` and ``.`` (one ``..`` too many leaves the volume for
a node named OUTSIDE). Anything the parser let through would show up as an escape.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, unquote

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from openflr.errors import BadRequestError, GuestPathNotFoundError
from openflr.guestfs.filesystems.base import Entry, FileReader, FileSystem, Node
from openflr.guestfs.view import GuestView, Located, Root

PROPS = settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class FakeNode:
    def __init__(self, fs: FakeFileSystem, path: tuple[str, ...], tree: Any) -> None:
        self.fs = fs
        self.path = path
        self.tree = tree  # dict: a folder; bytes: a file; "OUTSIDE": above the volume


class FakeFileSystem(FileSystem):
    def __init__(self, kind: str, tree: dict[str, Any], case_sensitive: bool, sep: str) -> None:
        super().__init__()
        self.kind = kind
        self.label = kind
        self.tree = tree
        self.case_sensitive = case_sensitive
        self.sep = sep
        self.streams: dict[tuple[str, ...], dict[str, bytes]] = {
            ("Documents", "report.txt"): {"secret": b"stream data"}
        }

    def root(self) -> Node:
        return FakeNode(self, (), self.tree)

    def lookup(self, parts: list[str]) -> Node | None:
        # Careless on purpose: re-split the joined path and resolve '.' and '..' like a POSIX shell.
        walked: list[str] = []
        for name in self.sep.join(parts).split(self.sep):
            if name in ("", "."):
                continue
            if name == "..":
                if not walked:
                    return FakeNode(self, ("..",), "OUTSIDE")
                walked.pop()
            else:
                walked.append(name)
        node: Any = self.tree
        path: list[str] = []
        for name in walked:
            if not isinstance(node, dict):
                return None
            key = name if name in node else None
            if key is None and not self.case_sensitive:
                key = next((k for k in node if k.casefold() == name.casefold()), None)
            if key is None:
                return None
            node = node[key]
            path.append(key)
        return FakeNode(self, tuple(path), node)

    def stat(self, node: Node) -> Entry:
        assert isinstance(node, FakeNode)
        name = node.path[-1] if node.path else ""
        return Entry(
            name,
            isinstance(node.tree, dict),
            len(node.tree) if isinstance(node.tree, bytes) else 0,
            None,
            None,
            node,
        )

    def scandir(self, node: Node, start: int = 0, stop: int | None = None) -> Iterator[Entry]:
        assert isinstance(node, FakeNode) and isinstance(node.tree, dict)
        for name, child in list(node.tree.items())[start:stop]:
            yield self.stat(FakeNode(self, (*node.path, name), child))

    def open(self, node: Node) -> FileReader:
        raise NotImplementedError

    def stream(self, node: Node, name: str) -> tuple[Entry, FileReader] | None:
        assert isinstance(node, FakeNode)
        data = self.streams.get(node.path, {}).get(name)
        if data is None:
            return None
        stream = FakeNode(self, (*node.path[:-1], f"{node.path[-1]}:{name}"), data)
        return Entry(stream.path[-1], False, len(data), None, None, stream), None  # type: ignore[return-value]


def _ntfs() -> FakeFileSystem:
    tree = {
        "Documents": {"report.txt": b"report", "Sub": {"deep.txt": b"deep"}},
        "Windows": {"System32": {"config": {"SAM": b"hashes"}}},
    }  # metadata files ($MFT, $Extend) are the NTFS engine's to hide (tests/guestfs/filesystems/test_ntfs.py)
    return FakeFileSystem("ntfs", tree, case_sensitive=False, sep="\\")


def windows_view() -> GuestView:
    c = Root("C:", None, _ntfs())  # type: ignore[arg-type]
    s = Root("S:", None, FakeFileSystem("fat", {"Share": {"x.txt": b"x"}}, False, "\\"))  # type: ignore[arg-type]
    return GuestView([], [], [c, s], linux_tree=False)


def linux_view() -> GuestView:
    root = FakeFileSystem("ext", {"etc": {"passwd": b"root:x:0:0", "hostname": b"web"}, "srv": {}}, True, "/")
    srv = FakeFileSystem("xfs", {"www": {"index.html": b"<html>"}}, True, "/")
    return GuestView(
        [],
        [],
        [Root("/", None, root, mount=()), Root("/srv", None, srv, mount=("srv",))],  # type: ignore[arg-type]
        linux_tree=True,
    )


VIEWS = {"windows": windows_view(), "linux": linux_view()}

# Path text rich in what attackers try: separators, dots, drive letters, device prefixes, streams.
_PIECES = st.sampled_from(
    [
        *("/", "\\", "..", ".", "...", ". .", "..\\", "../", "//", "\\\\", "\\\\?\\", "\\\\.\\", "?", "*"),
        *("C:", "c:", "S:", "D:", "C:..", "::$DATA", ":$DATA", ":secret", ":", "$MFT", "$mft", "$Extend"),
        *("$UsnJrnl:$J", "Documents", "documents", "report.txt", "Sub", "Windows", "System32", "etc"),
        *("passwd", "srv", "www", "\x00", "%2e", "%2e%2e", "%00", "%5c", "\u2025", "\ufe52", "\uff0e\uff0e"),
        *("\u0000", "\ufffd", "Volume$0:", " ", "\t", "\u202e", "a" * 300),
    ]
)
PATHS = st.one_of(st.lists(_PIECES, max_size=12).map("".join), st.text(max_size=60))


def _check(view: GuestView, where: Located) -> None:
    if where.root is None:
        assert where.parts == []
        return
    assert where.root in view.roots
    for part in where.parts:
        assert part not in ("", ".", "..") and "/" not in part and "\\" not in part and "\0" not in part
    fs = where.root.fs
    if isinstance(where.node, FakeNode):
        assert where.node.tree != "OUTSIDE", where
        assert where.node.fs is fs  # never a node of another volume
        assert ".." not in where.node.path
        expected = tuple(p.casefold() for p in where.parts) if not fs.case_sensitive else tuple(where.parts)
        got = tuple(p.casefold() for p in where.node.path) if not fs.case_sensitive else where.node.path
        assert got == expected  # the item reached by walking down from the root, and only that


@PROPS
@given(st.sampled_from(sorted(VIEWS)), PATHS)
@example("windows", "C:/Documents/../../..")
@example("windows", "C:\\..\\S:")
@example("windows", "\\\\?\\C:\\Windows")
@example("windows", "C:/$MFT")
@example("windows", "C:/Documents/report.txt:secret")
@example("windows", "C:/Documents/report.txt:../../Windows")
@example("linux", "srv/../etc/passwd")
@example("linux", "srv/www/../../../etc")
def test_a_path_resolves_below_a_root_or_is_refused(which: str, path: str) -> None:
    view = VIEWS[which]
    for candidate in (path, unquote(path), unquote(unquote(path))):
        try:
            where = view.locate(candidate)
        except (BadRequestError, GuestPathNotFoundError) as exc:
            refused: BadRequestError | GuestPathNotFoundError | None = exc
        else:
            refused = None
            _check(view, where)
        assert refused is None or (refused.status in (400, 404) and refused.message)


@PROPS
@given(PATHS)
def test_parse_never_yields_a_climbing_or_empty_component(path: str) -> None:
    try:
        parts = VIEWS["windows"].parse(path).parts
    except BadRequestError:
        assert "\0" in path or ".." in path or path.replace("\\", "/").startswith("//")
        return
    for part in parts:
        assert part not in ("", ".", "..") and not {"/", "\\", "\0"} & set(part)


@PROPS
@given(
    st.lists(
        st.text(st.characters(exclude_characters="\0", exclude_categories=["Cs"]), min_size=1, max_size=12),
        min_size=1,
        max_size=6,
    )
)
def test_percent_encoded_names_round_trip(names: list[str]) -> None:
    """A name a client percent-encodes (the way openflr writes Hrefs) comes back as one component."""
    wanted = [n for n in names if n not in (".", "..") and "/" not in n and "\\" not in n]
    if not wanted:
        return
    decoded = unquote("/".join(quote(n, safe="") for n in wanted))
    assert list(VIEWS["windows"].parse(decoded).parts) == wanted
