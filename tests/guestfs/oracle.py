"""Differential truth: random file trees written into real file-system images by an independent
writer (the kernel, ntfs-3g, exfat-fuse, mtools), read back by an independent reader (a fresh
read-only mount, or mtools), and compared with everything openflr's engine shows of the same image.

A case is one tree drawn from a seed (``tree_for``): the same seed always gives the same tree, so
every mismatch names the seed that reproduces it (``scripts/oracle-run --fs FS --seed S --cases 1``).
Names are compared as bytes (Linux file systems) or UTF-16LE units (NTFS, FAT, exFAT); times at the
file system's precision; content by sha256 through the reader downloads use (``read_chunks``); and
the members of the root folder's ZIP made by openflr's own writer (``zip_chunks``).

Known oracle errors (each is written next to the comparison it affects):

* ntfs-3g's ``stat`` gets a time before 1970 with a fraction of a second wrong (it splits the
  negative count with C's truncating division: 1960-01-01 00:00:00.25 reads as 00:00:01.75). The
  NTFS oracle takes every time from the raw ``system.ntfs_times`` attribute (the on-disk 100 ns
  count) instead, and notes where ``stat`` disagrees.
* exfat-fuse writes whole seconds only (it drops exFAT's 10 ms field), so exFAT times are drawn in
  whole seconds.
* mtools and exfat-fuse count 2100 as a leap year: a date from 2100-03-01 on reads a day late
  (``undo_leap_2100``; the FAT directory entry's date fields settle it).
* mtools rounds a time down to FAT's 2 s when it writes and lists minutes only (``mdir``): the FAT
  oracle copies each file out with ``mcopy -m`` (which keeps the stored time) and stats the copy;
  folder times are compared to the minute.

Writer limits (the tree is drawn within them; what a writer still refuses is listed in the case's
notes): names written through the kernel (ext, XFS, NTFS, exFAT) are at most 255 bytes of UTF-8,
so NTFS and exFAT names of 255 UTF-16 units are reached only with ASCII; mtools cannot find a
folder again by a name outside the BMP, so FAT names are BMP only.
"""

from __future__ import annotations

import calendar
import ctypes
import hashlib
import io
import os
import random
import re
import shutil
import stat
import subprocess
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from openflr.guestfs.filesystems.base import Entry
from openflr.guestfs.filesystems.names import name_to_bytes, name_to_utf16
from openflr.guestfs.view import GuestView, Located, Root, open_view
from openflr.restore.items import Item as WalkItem
from openflr.restore.items import item_of, read_chunks
from openflr.restore.zipstream import ZipReport, zip_chunks

S = 1_000_000_000
"""Nanoseconds per second."""
NTFS_EPOCH = 116444736000000000
"""100 ns intervals from 1601 to 1970."""
FAT_MIN, FAT_MAX = 315532800, 4354819198
"""1980-01-01 00:00:00 and 2107-12-31 23:59:58 (FAT and exFAT wall-clock range, stored as UTC here)."""
LOCATE_SAMPLE = 400
"""Entries per case also resolved by path (``view.locate``); all of them in smaller cases."""

# --- what each file system is ------------------------------------------------------------------


@dataclass(frozen=True)
class FsSpec:
    name: str
    family: str
    """``linux`` (ext, XFS), ``ntfs``, ``fat`` or ``exfat``: how names are keyed and written."""
    mkfs: tuple[str, ...]
    size_mib: int
    t_min: int
    t_max: int
    """Time range in seconds that the generator draws from."""
    step_ns: int
    """Time precision the writer can set (drawn times are multiples of it)."""
    symlinks: bool = False
    hardlinks: bool = False
    streams: bool = False
    mount_type: str = ""
    deep_bytes: int = 4000
    """A deep chain of folders reaches at least this many bytes of path."""


EXT_WIDE = (-(2**31), 2**34 - 2**31 - 1)
"""ext4 with 256-byte inodes: 1901-12-13 to 2446-05-10."""
MKE2FS = ("mke2fs", "-q", "-F", "-b", "4096", "-I")
SPECS: dict[str, FsSpec] = {
    s.name: s
    for s in (
        FsSpec("ext2", "linux", (*MKE2FS, "128", "-t", "ext2"), 64, -(2**31), 2**31 - 1, S, True, True,
               mount_type="ext2"),
        FsSpec("ext3", "linux", (*MKE2FS, "256", "-t", "ext3"), 64, *EXT_WIDE, 1, True, True,
               mount_type="ext3"),
        FsSpec("ext4", "linux", (*MKE2FS, "256", "-t", "ext4"), 64, *EXT_WIDE, 1, True, True,
               mount_type="ext4"),
        FsSpec("ext4-inline", "linux", (*MKE2FS, "256", "-t", "ext4", "-O", "inline_data"), 64, *EXT_WIDE, 1,
               True, True, mount_type="ext4"),
        # bigtime: 1901-12-13 to 2486-07-02
        FsSpec("xfs", "linux", ("mkfs.xfs", "-q", "-f", "-m", "bigtime=1"), 300, -(2**31), 16299260424, 1,
               True, True, mount_type="xfs"),
        # 1601-01-01 to 30828-09-14, in 100 ns
        FsSpec("ntfs", "ntfs", ("mkntfs", "-F", "-Q", "-q"), 96, -11644473600, 910692730084, 100, True, True,
               True, "ntfs-3g"),
        FsSpec("fat12", "fat", ("mkfs.fat", "-F", "12"), 24, FAT_MIN, FAT_MAX, 2 * S, deep_bytes=1500),
        FsSpec("fat16", "fat", ("mkfs.fat", "-F", "16"), 64, FAT_MIN, FAT_MAX, 2 * S, deep_bytes=1500),
        FsSpec("fat32", "fat", ("mkfs.fat", "-F", "32", "-S", "512", "-s", "1"), 96, FAT_MIN, FAT_MAX, 2 * S,
               deep_bytes=1500),
        FsSpec("exfat", "exfat", ("mkfs.exfat",), 96, FAT_MIN, FAT_MAX + 1, S, mount_type="exfat-fuse"),
    )
}  # fmt: skip
WRAPS = ("none", "mbr", "gpt")
FORMATS = ("raw", "qcow2", "vmdk", "vhdx")
CHAINS = ("qcow2-chain", "vmdk-chain")
"""Formats given by name only (``--fmt``, fixed CI cases), not drawn (drawing them would change
every seed's tree): the disk split between a base and a delta over it."""
_CHAIN_STRIDE = 1 << 20


# --- the tree ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    """One item of a generated tree; names are the bytes the writer hands to the OS (UTF-8 text
    for NTFS, FAT and exFAT, anything for ext and XFS)."""

    path: tuple[bytes, ...]
    kind: str
    """``dir``, ``file``, ``symlink`` or ``hardlink``."""
    mtime_ns: int
    size: int = 0
    seed: int = 0
    sparse: bool = False
    fragmented: bool = False
    target: bytes = b""
    """A symlink's target."""
    source: tuple[bytes, ...] = ()
    """The file a hard link names again."""
    stream: bytes = b""
    """An NTFS alternate data stream of the file (name; its content comes from ``seed``)."""
    uid: int = 0
    """Owner (ext and XFS; the writer runs as root and chowns)."""


@dataclass
class Tree:
    fs: str
    nodes: list[Node]
    seed: int = 0
    wrap: str = "none"
    fmt: str = "raw"
    bulk: int = 0
    """Extra files in one folder (``bulk``), generated from ``seed`` outside hypothesis."""


def content(node: Node) -> list[tuple[int, bytes]]:
    """(offset, bytes) pieces of a file; the rest up to ``size`` is a hole (or zeros)."""
    rng = random.Random(node.seed)
    if not node.sparse or node.size < 3 * 65536:
        return [(0, rng.randbytes(node.size))]
    head, middle = 4096, node.size // 2 // 65536 * 65536
    return [(0, rng.randbytes(head)), (middle, rng.randbytes(8192)), (node.size - 100, rng.randbytes(100))]


# --- strategies --------------------------------------------------------------------------------

_SPECIAL_LINUX = [
    b"\\", b" lead", b"trail ", b":*?", b"\x01\x1f\x7f", b"caf\xe9", b"\xff\xfe", b"\xed\xa0\x80",
    "\uef80\uefff".encode(), b"\xc0\xaf", b"-", b"..a", b".hidden", b"%2F", b"a\nb", "漢字😀".encode(),
]  # fmt: skip
_FAT_FORBIDDEN = set('"*/:<>?\\|') | {chr(c) for c in range(32)} | {"\x7f"}


def _pad(base: bytes, length: int | None, unit: bytes) -> bytes:
    if length is None or len(base) >= length:
        return base[:255]
    return (base + unit * length)[:length]


@st.composite
def linux_names(draw: st.DrawFn) -> bytes:
    """Any bytes but ``/`` and NUL, 1-255 of them; invalid UTF-8, control characters and all."""
    base = draw(
        st.one_of(
            st.binary(min_size=1, max_size=24),
            st.text(min_size=1, max_size=12).map(lambda t: t.encode("utf-8", "surrogatepass")),
            st.sampled_from(_SPECIAL_LINUX),
        )
    )
    length = draw(st.sampled_from([None, None, None, 255, 254, 100]))
    unit = draw(st.sampled_from([b"a", b"\xe9", "é".encode(), b" ", b"\x80"]))
    name = _pad(base.replace(b"/", b"_").replace(b"\0", b"_"), length, unit)
    if len(name) > 255:
        name = name[:255]
    return b"_" + name[1:] if name in (b".", b"..") else name


def _utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _cut_units(text: str, limit: int) -> str:
    while _utf16_units(text) > limit:
        text = text[:-1]
    return text


@st.composite
def text_names(draw: st.DrawFn, family: str) -> bytes:
    """UTF-16 names of 1-255 units (UTF-8 for the writer): anything but ``/`` and NUL on NTFS's
    POSIX namespace; FAT and exFAT forbid control characters and ``"*/:<>?\\|`` too."""
    banned = {"/", "\0"} if family == "ntfs" else _FAT_FORBIDDEN
    chars = st.characters(codec="utf-8", exclude_categories=["Cs"], exclude_characters="".join(banned))
    base = draw(
        st.one_of(
            st.text(chars, min_size=1, max_size=12),
            st.sampled_from(["漢字😀", "Ünïcode", " lead", "a\\b:c", "\x01ctl", "\uef80", "É", "ß", "ǅ"]),
        )
    )
    # mtools cannot find a folder again by a name outside the BMP (it writes it, then reports
    # "no match for target" for what goes inside): FAT names are drawn from the BMP only.
    base = "".join(c for c in base if c not in banned and (family != "fat" or ord(c) < 0x10000)) or "x"
    length = draw(st.sampled_from([None, None, None, 255, 254, 100]))
    unit = draw(st.sampled_from(["a", "é", "漢"] if family == "fat" else ["a", "é", "😀", "漢"]))
    if length is not None:
        base = (base + unit * length)[: length + 1]
    name = _cut_units(base, 255)
    if family != "fat":  # written through the kernel, whose names are at most 255 bytes
        while len(name.encode()) > 255:
            name = name[:-1]
    if family != "ntfs":
        name = name.rstrip(". ") or "x"  # Windows rules: mtools and exfat-fuse drop them
    if name in (".", ".."):
        name = "_"
    return name.encode("utf-8")


def names(spec: FsSpec) -> st.SearchStrategy[bytes]:
    return linux_names() if spec.family == "linux" else text_names(spec.family)


def times(spec: FsSpec) -> st.SearchStrategy[int]:
    """Modification times over the whole range, edges and the 1970/2038 neighbourhoods."""
    edges = [spec.t_min, spec.t_max, 0, -1, 2**31 - 1, 2**31, 2**32, 1_700_000_000, -(10**9)]
    inside = [e for e in edges if spec.t_min <= e <= spec.t_max]
    seconds = st.one_of(st.integers(spec.t_min, spec.t_max), st.sampled_from(inside))
    fraction = st.integers(0, S - 1)
    return st.tuples(seconds, fraction).map(
        lambda sf: (
            min(sf[0] * S + sf[1] // spec.step_ns * spec.step_ns, spec.t_max * S)
            if spec.step_ns < S
            else sf[0] * S // spec.step_ns * spec.step_ns
        )
    )


UIDS = st.one_of(
    st.sampled_from([0, 1, 1000, 65534, 65535, 65536, 2**31, 2**32 - 2]), st.integers(0, 2**32 - 2)
)
"""Owners: 16-bit and 32-bit ids (ext keeps the high half in another field)."""
SIZES = st.one_of(
    st.just(0),
    st.integers(1, 59),
    st.integers(60, 4096),
    st.integers(4097, 200_000),
    st.sampled_from([1, 59, 60, 61, 511, 512, 700, 900, 4095, 4096, 4097, 65536, 1_048_577, 3_000_001]),
)


def _key(name: bytes, family: str) -> bytes:
    """How the file system tells names apart (FAT and exFAT ignore case)."""
    if family in ("fat", "exfat"):
        return name.decode("utf-8").upper().lower().encode()
    return name


def _unique(name: bytes, taken: set[bytes], family: str) -> bytes:
    n = 0
    while _key(name, family) in taken:
        n += 1
        tail = b"~%d" % n
        name = name[: 200 - len(tail)] if family == "linux" else _cut_units(name.decode(), 200).encode()
        name += tail
    taken.add(_key(name, family))
    return name


@st.composite
def trees(draw: st.DrawFn, fs: str) -> Tree:
    """A random tree for ``fs``: folders, files of every size class, links, a deep chain."""
    spec = SPECS[fs]
    fam = spec.family
    taken: dict[tuple[bytes, ...], set[bytes]] = {(): set()}
    nodes: list[Node] = []
    dirs: list[tuple[bytes, ...]] = [()]
    when = times(spec)

    def place(parent: tuple[bytes, ...]) -> tuple[bytes, ...]:
        return (*parent, _unique(draw(names(spec)), taken[parent], fam))

    for _ in range(draw(st.integers(0, 8))):
        path = place(draw(st.sampled_from(dirs)))
        taken[path] = set()
        dirs.append(path)
        nodes.append(Node(path, "dir", draw(when)))
    if fam == "ntfs" and draw(st.booleans()):  # names that differ only in case (POSIX namespace)
        for name in (b"Case", b"CASE", b"case"):
            nodes.append(Node(place_named((), name, taken, fam), "file", draw(when), 3, draw(st.integers())))
    files: list[Node] = []
    for _ in range(draw(st.integers(0, 24))):
        size = draw(SIZES)
        big = size >= 3 * 65536
        node = Node(
            place(draw(st.sampled_from(dirs))),
            "file",
            draw(when),
            size,
            draw(st.integers(0, 2**32)),
            sparse=big and fam != "fat" and draw(st.booleans()),
            fragmented=4096 < size <= 300_000 and fam in ("linux", "ntfs") and draw(st.booleans()),
            stream=draw(names(spec)) if spec.streams and draw(st.integers(0, 4)) == 0 else b"",
            uid=draw(UIDS) if fam == "linux" else 0,
        )
        files.append(node)
    nodes += files
    if spec.symlinks:
        for _ in range(draw(st.integers(0, 5))):
            nodes.append(
                Node(place(draw(st.sampled_from(dirs))), "symlink", draw(when), target=draw(targets(fam)))
            )
    if spec.hardlinks and files:
        for _ in range(draw(st.integers(0, 3))):
            source = draw(st.sampled_from(files)).path
            nodes.append(Node(place(draw(st.sampled_from(dirs))), "hardlink", draw(when), source=source))
    if draw(st.integers(0, 3)) == 0:
        nodes += deep_chain(spec, draw(st.integers(0, 2**32)), taken)
    wrap = draw(st.sampled_from(WRAPS))
    fmt = draw(st.sampled_from(FORMATS))
    return Tree(fs, nodes, wrap=wrap, fmt=fmt)


def place_named(
    parent: tuple[bytes, ...], name: bytes, taken: dict[tuple[bytes, ...], set[bytes]], fam: str
) -> tuple[bytes, ...]:
    return (*parent, _unique(name, taken[parent], fam))


@st.composite
def targets(draw: st.DrawFn, family: str) -> bytes:
    """Symlink targets: fast (under 60 bytes, in the inode) and slow (up to 4095)."""
    if family == "ntfs":
        text = draw(st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=80))
        return text.replace("\0", "_").encode() or b"t"
    base = draw(st.binary(min_size=1, max_size=40)).replace(b"\0", b"_")
    length = draw(st.sampled_from([None, 59, 60, 61, 300, 4095]))
    return _pad(base, length, b"/x")[:4095] if length else base


def deep_chain(spec: FsSpec, chain_seed: int, taken: dict[tuple[bytes, ...], set[bytes]]) -> list[Node]:
    """Folders nested until the path is at least ``spec.deep_bytes`` long, a file at the bottom."""
    rng = random.Random(chain_seed)
    path: tuple[bytes, ...] = ()
    out: list[Node] = []
    t = rng.randint(max(spec.t_min, 0), min(spec.t_max, 2**31)) * S
    while sum(len(p) + 1 for p in path) < spec.deep_bytes:
        name = _unique(
            b"deep%03d" % len(path) + b"d" * rng.randint(20, 180), taken.setdefault(path, set()), ""
        )
        path = (*path, name)
        taken[path] = set()
        out.append(Node(path, "dir", t))
    out.append(Node((*path, b"bottom.txt"), "file", t, 20, rng.randint(0, 2**32)))
    return out


def bulk_nodes(tree: Tree, count: int) -> list[Node]:
    """``count`` small files in the folder ``bulk`` (names and times from the tree's seed)."""
    spec = SPECS[tree.fs]
    rng = random.Random(tree.seed ^ 0xB01C)
    folder = (b"bulk",)
    out = [Node(folder, "dir", 1_600_000_000 * S)]
    for i in range(count):
        if spec.family == "linux":
            stem = bytes(rng.choice(b"abcxyz\x01\x80\xe9\xff :\\*") for _ in range(rng.randint(0, 30)))
        else:
            stem = "".join(rng.choice("abcxyzéü漢 ") for _ in range(rng.randint(0, 30))).strip().encode()
        name = b"%06d-" % i + stem.replace(b"/", b"_")
        seconds = rng.randint(max(spec.t_min, FAT_MIN), min(spec.t_max, 2**31 - 1))
        when = seconds * S // spec.step_ns * spec.step_ns if spec.step_ns >= S else seconds * S
        out.append(Node((*folder, name), "file", when, rng.choice([0, 0, 1, 17, 100]), rng.randint(0, 2**32)))
    return out


def draw_tree(fs: str, case_seed: int) -> Tree:
    """The tree of ``case_seed``: hypothesis draws it from ``trees(fs)`` with that seed."""
    drawn: list[Tree] = []

    @seed(case_seed)
    @settings(
        max_examples=2,  # the first example hypothesis tries is the simplest: take the second
        database=None,
        phases=[Phase.generate],
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(trees(fs))
    def grab(tree: Tree) -> None:
        drawn.append(tree)

    grab()
    tree = drawn[-1]
    tree.seed = case_seed
    return tree


def tree_for(
    fs: str,
    case_seed: int,
    *,
    bulk: int = 0,
    wrap: str | None = None,
    fmt: str | None = None,
    deep: bool = False,
) -> Tree:
    """The tree of ``case_seed``, with the wrapper given (else the drawn one), ``bulk`` files in one
    folder, and (``deep``) a chain of folders at least ``deep_bytes`` long even if none was drawn."""
    tree = draw_tree(fs, case_seed)
    tree = replace(tree, wrap=wrap or tree.wrap, fmt=fmt or tree.fmt, bulk=bulk)
    if deep and not any(n.path[0].startswith(b"deep000") for n in tree.nodes):
        taken: dict[tuple[bytes, ...], set[bytes]] = {
            (): {_key(n.path[0], SPECS[fs].family) for n in tree.nodes}
        }
        tree.nodes = tree.nodes + deep_chain(SPECS[fs], case_seed, taken)
    if bulk:
        tree.nodes = [n for n in tree.nodes if n.path[0] != b"bulk"] + bulk_nodes(tree, bulk)
    return tree


# --- running tools -----------------------------------------------------------------------------


class OracleUnavailable(AssertionError):
    """An oracle or writer could not run: the case fails saying why (never skipped)."""


TOOL_ENV = {
    **os.environ,
    "TZ": "UTC",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "MTOOLS_SKIP_CHECK": "1",
    # 8.3 names are in the writer's OEM code page; openflr reads them as 437 (the Linux kernel's
    # default), so the oracle writes and reads them in 437 too (mtools' own default is 850).
    "MTOOLSRC": str(Path(__file__).with_name("mtoolsrc")),
}


def run(*args: str | Path, what: str = "") -> str:
    try:
        done = subprocess.run(
            [str(a) for a in args], capture_output=True, env=TOOL_ENV, stdin=subprocess.DEVNULL, timeout=600
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise OracleUnavailable(f"{what or args[0]}: {exc}") from None
    if done.returncode:
        err = (done.stderr or done.stdout).decode("utf-8", "replace").strip()[-800:]
        raise OracleUnavailable(f"{what or args[0]} failed ({done.returncode}): {err}")
    return done.stdout.decode("utf-8", "replace")


def _daemons(mountpoint: Path) -> list[int]:
    """Processes whose command line names ``mountpoint`` (the FUSE daemon this module started)."""
    wanted = os.fsencode(mountpoint)
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            with suppress(OSError):
                if wanted in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0"):
                    out.append(int(pid))
    return out


@contextmanager
def mounted(image: Path, spec: FsSpec, mountpoint: Path, *, readonly: bool) -> Iterator[Path]:
    """``image`` mounted at ``mountpoint`` (a loop mount, ntfs-3g or exfat-fuse); always unmounted
    (and a FUSE daemon waited for, so its writes have reached the image) when the block ends."""
    mountpoint.mkdir(parents=True, exist_ok=True)
    loop = ""
    opts = "ro" if readonly else "rw"
    if spec.mount_type == "ntfs-3g":
        run("ntfs-3g", "-o", opts, image, mountpoint, what="ntfs-3g mount")
    elif spec.mount_type == "exfat-fuse":
        loop = run("losetup", "-f", "--show", image).strip()
        try:
            run("mount.exfat-fuse", "-o", opts, loop, mountpoint, what="exfat-fuse mount")
        except BaseException:
            run("losetup", "-d", loop)
            raise
    else:
        run("mount", "-t", spec.mount_type, "-o", f"loop,{opts}", image, mountpoint, what="loop mount")
    daemons = _daemons(mountpoint) if spec.mount_type in ("ntfs-3g", "exfat-fuse") else []
    try:
        yield mountpoint
    finally:
        _unmount(mountpoint, daemons, loop)


def _unmount(mountpoint: Path, daemons: list[int], loop: str) -> None:
    for attempt in range(50):
        done = subprocess.run(["umount", str(mountpoint)], capture_output=True)
        if done.returncode == 0 or not os.path.ismount(mountpoint):
            break
        time.sleep(0.2 * (attempt + 1))
    deadline = time.monotonic() + 120
    while daemons and time.monotonic() < deadline:
        daemons = [p for p in daemons if Path(f"/proc/{p}").exists() and _alive(p)]
        time.sleep(0.05)
    if loop:
        subprocess.run(["losetup", "-d", loop], capture_output=True)
    if os.path.ismount(mountpoint):
        raise OracleUnavailable(f"{mountpoint} could not be unmounted")


def _alive(pid: int) -> bool:
    with suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][:1] != "Z"
    return False


# --- writing -----------------------------------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)
AT_SYMLINK_NOFOLLOW = 0x100


class _Timespec(ctypes.Structure):
    _fields_ = (("tv_sec", ctypes.c_int64), ("tv_nsec", ctypes.c_long))


def set_mtime(dir_fd: int, name: bytes, mtime_ns: int) -> None:
    """utimensat with 64-bit seconds (``os.utime(ns=)`` overflows past 2262)."""
    sec, nsec = divmod(mtime_ns, S)
    both = (_Timespec * 2)(_Timespec(sec, nsec), _Timespec(sec, nsec))
    if _libc.utimensat(dir_fd, name, both, AT_SYMLINK_NOFOLLOW) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"utimensat: {os.strerror(err)}", name)


@dataclass
class Written:
    refused: list[str] = field(default_factory=list)
    """Items the writer could not create (the OS refused the name or the time)."""


def write_posix(top: Path, tree: Tree) -> Written:
    """Write ``tree`` below ``top`` with OS calls on bytes names, folder by folder through file
    descriptors (so paths longer than PATH_MAX work); times last, folders deepest first."""
    out = Written()
    fds: dict[tuple[bytes, ...], int] = {(): os.open(top, os.O_RDONLY | os.O_DIRECTORY)}
    made: list[Node] = []
    try:
        for node in _ordered(tree.nodes):
            parent = fds.get(node.path[:-1])
            if parent is None:
                continue  # its folder was refused
            try:
                _create(node, parent, fds)
                made.append(node)
            except OSError as exc:
                out.refused.append(f"{node.kind} {node.path!r}: {exc.strerror}")
        _fragment([n for n in made if n.fragmented], fds)
        for node in sorted(made, key=lambda n: (n.kind == "dir", -len(n.path))):
            try:
                set_mtime(fds[node.path[:-1]], node.path[-1], node.mtime_ns)
            except OSError as exc:
                out.refused.append(f"time of {node.path!r}: {exc.strerror}")
    finally:
        for fd in fds.values():
            os.close(fd)
    return out


def _ordered(nodes: list[Node]) -> list[Node]:
    order = {"dir": 0, "file": 1, "symlink": 2, "hardlink": 3}
    return sorted(nodes, key=lambda n: (order[n.kind], len(n.path) if n.kind == "dir" else 0))


def _create(node: Node, parent: int, fds: dict[tuple[bytes, ...], int]) -> None:
    name = node.path[-1]
    if node.kind == "dir":
        os.mkdir(name, 0o755, dir_fd=parent)
        fds[node.path] = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=parent)
    elif node.kind == "file":
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644, dir_fd=parent)
        try:
            if not node.fragmented:
                for offset, data in content(node):
                    os.pwrite(fd, data, offset)
                os.ftruncate(fd, node.size)
            if node.stream:
                os.setxattr(
                    fd, b"user." + node.stream, random.Random(node.seed + 1).randbytes(node.seed % 3000)
                )
        finally:
            os.close(fd)
    elif node.kind == "symlink":
        os.symlink(node.target, name, dir_fd=parent)
    if node.uid and node.kind in ("file", "symlink"):
        os.chown(name, node.uid, node.uid, dir_fd=parent, follow_symlinks=False)
    if node.kind == "hardlink":
        os.link(
            node.source[-1], name, src_dir_fd=fds[node.source[:-1]], dst_dir_fd=parent, follow_symlinks=False
        )


def _fragment(nodes: list[Node], fds: dict[tuple[bytes, ...], int]) -> None:
    """Write files 4 KiB at a time in turn, syncing each piece, so their blocks interleave."""
    if not nodes:
        return
    opened = [(os.open(n.path[-1], os.O_WRONLY, dir_fd=fds[n.path[:-1]]), content(n)[0][1]) for n in nodes]
    try:
        for offset in range(0, max(len(data) for _, data in opened), 4096):
            for fd, data in opened:
                if offset < len(data):
                    os.pwrite(fd, data[offset : offset + 4096], offset)
                    os.fsync(fd)
    finally:
        for fd, _ in opened:
            os.close(fd)


def make_image(spec: FsSpec, image: Path, tree: Tree) -> None:
    total = sum(n.size for n in tree.nodes if n.kind == "file")
    mib = max(spec.size_mib, (total * 3 + len(tree.nodes) * 8192) // 2**20 + 32)
    if spec.name == "fat12":
        mib = min(mib, 200)
    image.unlink(missing_ok=True)
    with open(image, "wb") as f:
        f.truncate(mib * 2**20)
    extra: tuple[str, ...] = ()
    if spec.family == "linux" and spec.name != "xfs":
        extra = ("-N", str(len(tree.nodes) + 4096))
    run(*spec.mkfs, *extra, image, what=spec.mkfs[0])


def write_tree(spec: FsSpec, image: Path, tree: Tree, work: Path) -> Written:
    """The independent writer: the kernel (ext, XFS), ntfs-3g, exfat-fuse, or mtools (FAT)."""
    if spec.family == "fat":
        return write_fat(image, tree, work)
    with mounted(image, spec, work / "mnt-rw", readonly=False) as mnt:
        return write_posix(mnt, tree)


def write_fat(image: Path, tree: Tree, work: Path) -> Written:
    """mtools writes each item under its full name (``mcopy -m`` keeps the time of a staged copy;
    a folder is an empty staged folder copied with ``-s -m``). Files whose names fit a local name
    go in one ``mcopy`` per folder (a folder of thousands would otherwise cost a call each)."""
    out = Written()
    staged = work / "staged"
    shutil.rmtree(staged, ignore_errors=True)
    staged.mkdir()
    refused: set[tuple[bytes, ...]] = set()
    batches: dict[tuple[bytes, ...], list[Path]] = {}
    try:
        for i, node in enumerate(_ordered(tree.nodes)):
            if any(node.path[:n] in refused for n in range(1, len(node.path))):
                continue
            if node.kind == "file" and len(node.path[-1]) <= 255:
                folder = staged / f"batch{len(batches)}" if node.path[:-1] not in batches else None
                if folder is not None:
                    folder.mkdir()
                    batches[node.path[:-1]] = []
                local = (folder or batches[node.path[:-1]][0].parent) / node.path[-1].decode()
                _stage(node, local)
                batches[node.path[:-1]].append(local)
                continue
            local = staged / str(i)
            _stage(node, local)
            try:
                _mcopy(image, [local], "::/" + b"/".join(node.path).decode("utf-8"), node.kind == "dir")
            except OracleUnavailable as exc:
                refused.add(node.path)
                out.refused.append(f"{node.kind} {node.path!r}: {exc}")
        for parent, files in batches.items():
            if parent in refused or any(parent[:n] in refused for n in range(1, len(parent))):
                continue
            for at in range(0, len(files), 500):
                try:
                    _mcopy(
                        image, files[at : at + 500], "::/" + b"/".join(parent).decode("utf-8") + "/", False
                    )
                except OracleUnavailable as exc:
                    out.refused.append(f"some of {len(files)} files in {parent!r}: {exc}")
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    return out


def _stage(node: Node, local: Path) -> None:
    """The local copy mtools reads: a folder, or the file's content; with the node's time."""
    if node.kind == "dir":
        local.mkdir()
    else:
        with open(local, "wb") as f:
            for offset, data in content(node):
                f.seek(offset)
                f.write(data)
            f.truncate(node.size)
    set_mtime(-100, os.fsencode(local), node.mtime_ns)  # -100: AT_FDCWD


def _mcopy(image: Path, sources: list[Path], dest: str, folder: bool) -> None:
    flags = ("-s", "-m") if folder else ("-m",)
    # -D Sa: a long name that clashes is skipped, a short one renamed. mtools asks otherwise, and
    # without a terminal it spins forever on the question.
    run("mcopy", *flags, "-Q", "-D", "Sa", "-i", image, *sources, dest, what="mcopy")


# --- what the oracle and the engine see ---------------------------------------------------------


@dataclass
class Seen:
    """One entry as a reader shows it."""

    kind: str
    """``dir``, ``file`` or ``symlink``."""
    size: int
    mtime_ns: int | None
    ident: int | None
    sha256: str = ""
    target: bytes = b""
    streams: dict[bytes, str] = field(default_factory=dict)
    """NTFS alternate data streams: UTF-16LE name -> sha256 of the content."""
    shown: str = ""
    """The name as the reader shows it (openflr's text), for messages."""
    minute_only: bool = False
    """The oracle knows this time to the minute only (FAT folders through ``mdir``)."""
    owner: str | None = None
    """ext/XFS: the uid as text (no /etc/passwd in these trees); NTFS: the owner SID's account."""
    descriptor: str = ""
    """NTFS: sha256 of the self-relative security descriptor."""


Key = tuple[bytes, ...]


def key_of(raw: bytes, family: str) -> bytes:
    """The comparison key of a name the OS gave as bytes: itself on Linux, else UTF-16LE units."""
    if family == "linux":
        return raw
    return raw.decode("utf-8", "surrogateescape").encode("utf-16-le", "surrogatepass")


def engine_key(name: str, family: str) -> bytes:
    """The comparison key of a name openflr shows; one its escape cannot turn back into the file
    system's units gets a key no oracle name has (so it shows as a mismatch, not a crash)."""
    try:
        return name_to_bytes(name) if family == "linux" else name_to_utf16(name)
    except UnicodeError:
        return (
            b"<openflr shows a name its escape cannot reverse: "
            + name.encode("utf-8", "surrogatepass")
            + b">"
        )


def oracle_walk(top: Path, family: str, notes: list[str]) -> dict[Key, Seen]:
    """A mounted (or copied-out) tree, walked with os.scandir/os.lstat through file descriptors."""
    out: dict[Key, Seen] = {}
    stack: list[tuple[Key, int]] = [((), os.open(top, os.O_RDONLY | os.O_DIRECTORY))]
    while stack:
        path, fd = stack.pop()
        try:
            with os.scandir(fd) as it:
                names = [e.name for e in it]
            for raw in names:
                name = os.fsencode(raw)
                key = (*path, key_of(name, family))
                st_ = os.lstat(name, dir_fd=fd)
                seen = Seen("file", st_.st_size, st_.st_mtime_ns, st_.st_ino, shown=repr(name))
                if family == "linux":
                    seen.owner = str(st_.st_uid)
                if family == "exfat":
                    seen.mtime_ns = undo_leap_2100(st_.st_mtime_ns)
                if family == "ntfs":
                    seen.mtime_ns = _ntfs_raw_time(fd, name, st_.st_mtime_ns, key, notes)
                    seen.descriptor, seen.owner = _ntfs_security(fd, name)
                if stat.S_ISDIR(st_.st_mode):
                    seen.kind, seen.size = "dir", 0
                    stack.append((key, os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)))
                elif stat.S_ISLNK(st_.st_mode):
                    seen.kind, seen.target = "symlink", os.readlink(name, dir_fd=fd)
                    seen.size = len(seen.target)
                elif stat.S_ISREG(st_.st_mode):
                    seen.sha256, seen.streams = _hash_file(fd, name, family)
                else:
                    continue
                out[key] = seen
        finally:
            os.close(fd)
    return out


def _ntfs_raw_time(fd: int, name: bytes, stat_ns: int, key: Key, notes: list[str]) -> int:
    """The on-disk $STANDARD_INFORMATION modification time through ntfs-3g's ``system.ntfs_times``.
    Known oracle error: ntfs-3g's stat() is wrong for a time before 1970 with a fraction of a
    second (truncating division); the raw 100 ns count settles it."""
    raw = os.getxattr(f"/proc/self/fd/{fd}/".encode() + name, "system.ntfs_times", follow_symlinks=False)
    ticks = int.from_bytes(raw[8:16], "little")
    ns = (ticks - NTFS_EPOCH) * 100
    if ns != stat_ns:
        notes.append(
            f"ntfs-3g stat() reads {key!r} as {stat_ns} ns, the disk holds {ns} (known oracle error)"
        )
    return ns


def _ntfs_security(fd: int, name: bytes) -> tuple[str, str | None]:
    """(sha256 of the security descriptor, its owner's well-known account or SID) through
    ntfs-3g's ``system.ntfs_acl`` (the descriptor as stored)."""
    raw = os.getxattr(f"/proc/self/fd/{fd}/".encode() + name, "system.ntfs_acl", follow_symlinks=False)
    owner_at = int.from_bytes(raw[4:8], "little")
    sid = _sid(raw, owner_at) if owner_at else None
    return hashlib.sha256(raw).hexdigest(), _ACCOUNTS.get(sid or "", sid)


_ACCOUNTS = {
    "S-1-5-32-544": "BUILTIN\\Administrators",
    "S-1-5-18": "NT AUTHORITY\\SYSTEM",
    "S-1-1-0": "Everyone",
}
"""Well-known SIDs ntfs-3g writes as owners (others are compared as SID strings)."""


def _sid(raw: bytes, at: int) -> str | None:
    if len(raw) < at + 8 or raw[at] != 1:
        return None
    count = raw[at + 1]
    authority = int.from_bytes(raw[at + 2 : at + 8], "big")
    subs = [int.from_bytes(raw[at + 8 + 4 * i : at + 12 + 4 * i], "little") for i in range(count)]
    return f"S-1-{authority}" + "".join(f"-{x}" for x in subs)


def _hash_file(fd: int, name: bytes, family: str) -> tuple[str, dict[bytes, str]]:
    h = hashlib.sha256()
    streams: dict[bytes, str] = {}
    f = os.open(name, os.O_RDONLY, dir_fd=fd)
    try:
        while data := os.read(f, 1 << 20):
            h.update(data)
        if family == "ntfs":
            for attr in os.listxattr(f):
                if attr.startswith("user."):
                    body = os.getxattr(f, attr)
                    streams[key_of(os.fsencode(attr[5:]), family)] = hashlib.sha256(body).hexdigest()
    finally:
        os.close(f)
    return h.hexdigest(), streams


def oracle_read(spec: FsSpec, image: Path, work: Path, notes: list[str]) -> tuple[dict[Key, Seen], str]:
    """(entries, which oracle) of the image as the independent reader shows it."""
    if spec.family == "fat":
        return mtools_read(
            image, work
        ), "mtools (mdir -/ -b -a for names, mcopy -m out for content and times)"
    how = {
        "ntfs-3g": "read-only ntfs-3g mount (os.scandir/os.lstat, system.ntfs_times, user.* streams)",
        "exfat-fuse": "read-only exfat-fuse mount (os.scandir/os.lstat)",
    }.get(spec.mount_type, f"fresh read-only loop mount, kernel {spec.mount_type} (os.scandir/os.lstat)")
    with mounted(image, spec, work / "mnt-ro", readonly=True) as mnt:
        return oracle_walk(mnt, spec.family, notes), how


LEAP_2100_READ = 4107628800
"""2100-03-01 00:00:00 UTC as mtools and exfat-fuse read it (one day late)."""


def undo_leap_2100(ns: int) -> int:
    """Known oracle error: mtools and exfat-fuse count 2100 as a leap year, so a stored date from
    2100-03-01 on reads one day late (the FAT directory entry's own date fields settle it; exFAT
    packs its dates the same way). The oracle's time is moved back by that day."""
    return ns - 86400 * S if ns >= LEAP_2100_READ * S else ns


_MDIR_LINE = re.compile(r"^.{8} .{3} +(<DIR>|\d+) +(\d{4})-(\d\d)-(\d\d) +(\d+):(\d\d)  ?(.*)$")


def mtools_read(image: Path, work: Path) -> dict[Key, Seen]:
    """FAT through mtools: every path from ``mdir -/ -b``; each file copied out with ``mcopy -m``
    (content, size, time to the second); folder times from ``mdir`` (minutes only: a known limit of
    the oracle, so folders are compared to the minute)."""
    out: dict[Key, Seen] = {}
    listing = run("mdir", "-/", "-b", "-a", "-i", image, "::/", what="mdir")
    local = work / "mtools-copy"
    dirs: list[str] = []
    for line in listing.split("\n"):  # not splitlines(): U+0085 and U+2028 are name characters
        if not line.startswith("::/") or line == "::/":
            continue
        path = line[3:]
        key = tuple(key_of(p.encode(), "fat") for p in path.rstrip("/").split("/"))
        if path.endswith("/"):
            dirs.append(path.rstrip("/"))
            out[key] = Seen("dir", 0, None, None, shown=path)
            continue
        local.unlink(missing_ok=True)
        # mtools reads [...] in a source name as a wildcard class. "\\[" makes it literal but can push a
        # long name past what mtools matches, so a [ is matched by "?" (one character) instead; a
        # sibling that differs only there would make mcopy fail loudly, never read the wrong file.
        literal = path.replace("[", "?")
        run("mcopy", "-n", "-m", "-Q", "-i", image, "::/" + literal, local, what="mcopy (out)")
        data = local.read_bytes()
        mtime = undo_leap_2100(local.stat().st_mtime_ns)
        out[key] = Seen("file", len(data), mtime, None, hashlib.sha256(data).hexdigest(), shown=path)
    local.unlink(missing_ok=True)
    for folder in dirs:
        parent, _, name = folder.rpartition("/")
        key = tuple(key_of(p.encode(), "fat") for p in folder.split("/"))
        out[key].mtime_ns = _mdir_minute(image, parent, name)
        out[key].minute_only = True
    return out


def _mdir_minute(image: Path, parent: str, name: str) -> int | None:
    for line in run("mdir", "-a", "-i", image, "::/" + parent, what="mdir").split("\n"):
        m = _MDIR_LINE.match(line)
        if (
            m
            and m.group(1) == "<DIR>"
            and (m.group(7) == name or (bool(line[:12].split()) and _short_name(line) == name))
        ):
            y, mo, d, h, mi = (int(m.group(i)) for i in range(2, 7))
            return calendar.timegm((y, mo, d, h, mi, 0)) * S
    return None


def _short_name(line: str) -> str:
    base, ext = line[:8].strip(), line[9:12].strip()
    return f"{base}.{ext}" if ext else base


def wrap_image(image: Path, wrap: str, fmt: str, work: Path) -> Path:
    """The file-system image placed at a partition of a disk (MBR or GPT), in an image format."""
    disk = image
    if wrap != "none":
        disk = work / f"disk-{wrap}.raw"
        size = image.stat().st_size
        sectors = size // 512
        with open(disk, "wb") as f:
            f.truncate(size + 4 * 2**20)
        if wrap == "gpt":
            run("sgdisk", f"-n1:2048:+{sectors}", "-t1:0700", disk, what="sgdisk")
        else:
            run("sh", "-c", f"echo 'start=2048, size={sectors}, type=83' | sfdisk -q '{disk}'", what="sfdisk")
        run("dd", f"if={image}", f"of={disk}", "bs=1M", "seek=1", "conv=sparse,notrunc", "status=none")
    if fmt in CHAINS:
        top = _chain(disk, fmt.removesuffix("-chain"), work)
        if disk != image:
            disk.unlink()
        return top
    if fmt != "raw":
        converted = work / f"disk.{fmt}"
        run("qemu-img", "convert", "-O", fmt, disk, converted, what=f"qemu-img convert -O {fmt}")
        if disk != image:
            disk.unlink()
        disk = converted
    return disk


def _chain(disk: Path, fmt: str, work: Path) -> Path:
    """``disk`` as a base and a delta over it: the base holds every other MiB and garbage between
    (so that reading a stale layer shows), the delta holds the MiBs between (written by qemu-io), so
    that reads fall through both layers."""
    garbage = b"\xa5" * _CHAIN_STRIDE
    half, base, top = work / "half.raw", work / f"base.{fmt}", work / f"top.{fmt}"
    commands: list[str] = []
    with open(disk, "rb") as src, open(half, "wb") as dst:
        dst.truncate(disk.stat().st_size)
        at = 0
        while chunk := src.read(_CHAIN_STRIDE):
            dst.seek(at)
            if (at // _CHAIN_STRIDE) % 2 == 0:
                dst.write(chunk)
            else:
                dst.write(garbage[: len(chunk)])
                piece = work / f"piece-{at}.bin"
                piece.write_bytes(chunk)
                commands += ["-c", f"write -s {piece} {at} {len(chunk)}"]
            at += len(chunk)
    run("qemu-img", "convert", "-O", fmt, half, base, what=f"qemu-img convert -O {fmt} (base)")
    half.unlink()
    run("qemu-img", "create", "-q", "-f", fmt, "-b", base.name, "-F", fmt, top, what=f"qemu-img create {fmt}")
    if commands:
        run("qemu-io", "-f", fmt, *commands, top, what="qemu-io write (delta)")
    for piece in work.glob("piece-*.bin"):
        piece.unlink()
    return top


def chain_files(disk: Path) -> list[Path]:
    """The image files of the disk ``wrap_image`` made, top first."""
    if disk.name.startswith("top."):
        return [disk, disk.with_name("base" + disk.suffix)]
    return [disk]


def engine_read(
    view: GuestView, family: str, errors: list[str]
) -> tuple[Root, dict[Key, Seen], dict[Key, Located]]:
    """Everything openflr shows below the view's one root: listings (node by node, as downloads walk),
    and every file's sha256 through ``read_chunks``."""
    if len(view.roots) != 1 or view.roots[0].fs is None:
        raise AssertionError(
            f"openflr shows roots {[(r.name, r.problem) for r in view.roots]}, notes {view.notes}"
        )
    root = view.roots[0]
    fs = root.fs
    assert fs is not None
    out: dict[Key, Seen] = {}
    where: dict[Key, Located] = {}
    stack: list[tuple[Key, Located]] = [((), Located(root, [], fs.root()))]
    while stack:
        path, folder = stack.pop()
        try:
            listing = list(view.scandir(folder))
        except Exception as exc:  # a folder openflr cannot list is a mismatch, not a crash
            errors.append(f"{_show(path)}: openflr cannot list it: {exc}")
            continue
        for entry in listing:
            key = (*path, engine_key(entry.name, family))
            located = Located(root, [*folder.parts, entry.name], entry.node, entry)
            seen = _engine_seen(view, located, entry, errors, key)
            if key in out:
                errors.append(f"{_show(key)}: listed twice by openflr")
            out[key], where[key] = seen, located
            if entry.is_dir:
                stack.append((key, located))
    return root, out, where


def _engine_seen(view: GuestView, located: Located, entry: Entry, errors: list[str], key: Key) -> Seen:
    kind = "dir" if entry.is_dir else "symlink" if entry.is_link else "file"
    seen = Seen(kind, entry.size, entry.mtime_ns, entry.ident, shown=entry.name, owner=entry.owner)
    fs = located.root.fs if located.root is not None else None
    if fs is not None and fs.kind == "ntfs":
        descriptor = fs.security_descriptor(entry.node)
        seen.descriptor = hashlib.sha256(descriptor).hexdigest() if descriptor is not None else "none"
    if kind == "dir":
        return seen
    try:
        data = _read_all(view, located, entry)
    except Exception as exc:
        errors.append(f"{_show(key)}: openflr cannot read it: {exc}")
        return seen
    if kind == "symlink":
        seen.target = data
    else:
        seen.sha256 = hashlib.sha256(data).hexdigest()
    return seen


def _read_all(view: GuestView, located: Located, entry: Entry) -> bytes:
    item = WalkItem((entry.name,), located, entry)
    return b"".join(bytes(c) for c in read_chunks(view, item))


def _show(key: Key) -> str:
    """A path for messages: each name as escaped bytes, long ones cut (the seed gives them whole)."""
    return "/" + "/".join(_short(p) for p in key)


def _short(name: bytes) -> str:
    text = repr(name)[2:-1]
    return text if len(text) <= 48 else f"{text[:32]}...[{len(name)} bytes]"


# --- comparing -----------------------------------------------------------------------------------


@dataclass
class Mismatch:
    fs: str
    seed: int
    path: str
    what: str
    openflr: object
    oracle: object

    def __str__(self) -> str:
        head = f"[{self.fs} seed {self.seed}] {self.path}: {self.what}"
        return f"{head}: openflr {self.openflr!r}, oracle {self.oracle!r}"


@dataclass
class CaseResult:
    fs: str
    seed: int
    oracle: str
    wrap: str
    fmt: str
    entries: int = 0
    checks: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    repro: str = ""
    """The command that runs this case again."""

    def line(self) -> str:
        return (
            f"{self.fs} seed {self.seed} ({self.wrap}/{self.fmt}): {self.entries} entries, "
            f"{self.checks} checks, {len(self.mismatches)} mismatches, {self.seconds:.1f}s; "
            f"oracle: {self.oracle}"
        )


class _Checker:
    def __init__(self, result: CaseResult) -> None:
        self.result = result

    def check(self, path: str, what: str, got: object, want: object) -> None:
        self.result.checks += 1
        if got != want:
            r = self.result
            r.mismatches.append(Mismatch(r.fs, r.seed, path, what, got, want))


def compare(spec: FsSpec, engine: dict[Key, Seen], oracle: dict[Key, Seen], c: _Checker) -> None:
    """Every entry: presence, type, size, time, target, content, streams; then hard-link identity."""
    for key in sorted(oracle.keys() - engine.keys()):
        c.check(_show(key), "listed", None, oracle[key].kind)
    for key in sorted(engine.keys() - oracle.keys()):
        c.check(_show(key), "listed", engine[key].kind, None)
    for key in sorted(engine.keys() & oracle.keys()):
        got, want = engine[key], oracle[key]
        path = _show(key)
        c.check(path, "type", got.kind, want.kind)
        if want.owner is not None:
            c.check(path, "owner", got.owner, want.owner)
        if want.descriptor:
            c.check(path, "security descriptor sha256", got.descriptor, want.descriptor)
        if want.kind == "dir" and got.kind == "dir":
            if want.minute_only:  # mdir shows minutes only (FAT folders)
                minute = None if got.mtime_ns is None else got.mtime_ns // (60 * S) * 60 * S
                c.check(path, "mtime_ns (to the minute)", minute, want.mtime_ns)
            else:
                c.check(path, "mtime_ns", got.mtime_ns, want.mtime_ns)
            continue
        c.check(path, "size", got.size, want.size)
        c.check(path, "mtime_ns", got.mtime_ns, want.mtime_ns)
        if want.kind == "symlink":
            c.check(path, "symlink target", got.target, want.target)
        elif want.kind == "file":
            c.check(path, "sha256", got.sha256, want.sha256)
    _compare_links(engine, oracle, c)


def _compare_links(engine: dict[Key, Seen], oracle: dict[Key, Seen], c: _Checker) -> None:
    """Entries with the same inode must have the same ``Entry.ident``, and only they."""
    common = sorted(k for k in engine.keys() & oracle.keys() if oracle[k].kind != "dir")
    if any(oracle[k].ident is None for k in common):
        groups_oracle: dict[Key, tuple[Key, ...]] = {k: (k,) for k in common}  # FAT: every entry its own item
    else:
        by_ino: dict[object, list[Key]] = {}
        for k in common:
            by_ino.setdefault(oracle[k].ident, []).append(k)
        groups_oracle = {k: tuple(by_ino[oracle[k].ident]) for k in common}
    by_ident: dict[object, list[Key]] = {}
    for k in common:
        by_ident.setdefault(engine[k].ident if engine[k].ident is not None else ("none", k), []).append(k)
    for k in common:
        ident = engine[k].ident if engine[k].ident is not None else ("none", k)
        c.check(
            _show(k),
            "hard-link group",
            [_show(x) for x in by_ident[ident]],
            [_show(x) for x in groups_oracle[k]],
        )


def compare_streams(view: GuestView, where: dict[Key, Located], oracle: dict[Key, Seen], c: _Checker) -> None:
    """NTFS alternate data streams the oracle lists, read through openflr's ``file:stream`` access."""
    for key, want in sorted(oracle.items()):
        if not want.streams or key not in where:
            continue
        located = where[key]
        fs = located.root.fs if located.root is not None else None
        assert fs is not None
        for skey, digest in sorted(want.streams.items()):
            name = skey.decode("utf-16-le", "surrogatepass")
            found = fs.stream(located.node, name)
            got = None
            if found is not None:
                _entry, reader = found
                got = hashlib.sha256(reader.pread(reader.size, 0)).hexdigest()
            c.check(f"{_show(key)}:{name}", "stream sha256", got, digest)


def compare_locate(
    view: GuestView,
    root: Root,
    engine: dict[Key, Seen],
    where: dict[Key, Located],
    c: _Checker,
    rng: random.Random,
) -> None:
    """Each entry (a sample in big cases) resolved by its path's components, as browsing does."""
    keys = sorted(where)
    if len(keys) > LOCATE_SAMPLE:
        # A lookup that misses in a folder of thousands costs openflr 0.2 s: every item of the random tree,
        # and a sample of the bulk folder's.
        bulk = [k for k in keys if k[0] in (b"bulk", "bulk".encode("utf-16-le"))]
        keys = sorted({*keys} - {*bulk} | {*rng.sample(bulk, min(len(bulk), 1000))})
    for key in keys:
        located = where[key]
        # Components, as the API hands them over (a backslash inside a name is part of it).
        parts = [root.name, *located.parts] if root.mount is None else [*root.mount, *located.parts]
        try:
            found = view.locate(parts)
            got: object = (found.entry.ident, found.entry.name) if found.entry is not None else None
        except Exception as exc:
            got = f"{type(exc).__name__}: {exc}"[:200]
        c.check(_show(key), "locate(path) finds the entry", got, (engine[key].ident, located.parts[-1]))


def compare_zip(view: GuestView, root: Root, family: str, oracle: dict[Key, Seen], c: _Checker) -> None:
    """The root folder as openflr's ZIP writer makes it: members, types, content and times."""
    item = item_of(view, view.locate(root.name if root.mount is None else "/"))
    report = ZipReport()
    data = b"".join(zip_chunks(view, item, report))
    c.check(
        "(zip)", "items left out of the ZIP", [f"{'/'.join(p.rel)}: {p.reason}" for p in report.skipped], []
    )
    members: dict[Key, tuple[str, str | bytes, zipfile.ZipInfo]] = {}
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            parts = info.filename.rstrip("/").split("/")[1:]
            if not parts:
                continue
            key = tuple(engine_key(p, family) for p in parts)
            mode = info.external_attr >> 16
            stored = archive.read(info)
            if info.is_dir():
                members[key] = ("dir", "", info)
            elif stat.S_ISLNK(mode):
                members[key] = ("symlink", stored, info)
            else:
                members[key] = ("file", hashlib.sha256(stored).hexdigest(), info)
    want_keys = set(oracle)
    c.check("(zip)", "members missing", sorted(_show(k) for k in want_keys - members.keys())[:20], [])
    c.check(
        "(zip)", "members not in the oracle", sorted(_show(k) for k in members.keys() - want_keys)[:20], []
    )
    for key in sorted(want_keys & members.keys()):
        kind, body, info = members[key]
        want = oracle[key]
        path = f"(zip) {_show(key)}"
        c.check(path, "type", kind, want.kind)
        if want.kind == "file" and kind == "file":
            c.check(path, "sha256", body, want.sha256)
        elif want.kind == "symlink" and kind == "symlink":
            c.check(path, "symlink target", body, want.target)
        if want.mtime_ns is not None and not want.minute_only:
            _check_zip_time(path, info, want.mtime_ns, c)


def _check_zip_time(path: str, info: zipfile.ZipInfo, mtime_ns: int, c: _Checker) -> None:
    seconds = mtime_ns // S
    if 0 <= seconds < 2**31:
        ut = _ut_mtime(info.extra)
        c.check(path, "ZIP extended timestamp", ut, seconds)
    if FAT_MIN <= seconds <= FAT_MAX + 1:
        t = time.gmtime(seconds)
        want = (t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec // 2 * 2)
        c.check(path, "ZIP DOS time", info.date_time, want)


def _ut_mtime(extra: bytes) -> int | None:
    at = 0
    while at + 4 <= len(extra):
        tag, size = (
            int.from_bytes(extra[at : at + 2], "little"),
            int.from_bytes(extra[at + 2 : at + 4], "little"),
        )
        if tag == 0x5455 and size >= 5 and extra[at + 4] & 1:
            return int.from_bytes(extra[at + 5 : at + 9], "little", signed=True)
        at += 4 + size
    return None


def repro_command(
    fs: str,
    case_seed: int,
    bulk: int = 0,
    wrap: str | None = None,
    fmt: str | None = None,
    deep: bool = False,
) -> str:
    """The ``scripts/oracle-run`` command that builds and compares the same case again."""
    extra = [f"--bulk {bulk}"] if bulk else []
    extra += [f"--wrap {wrap}"] if wrap else []
    extra += [f"--fmt {fmt}"] if fmt else []
    extra += ["--deep"] if deep else []
    return " ".join(["scripts/oracle-run", "--fs", fs, "--seed", str(case_seed), "--cases", "1", *extra])


# --- one case ------------------------------------------------------------------------------------


def run_case(tree: Tree, work: Path, log: Callable[[str], None] = lambda line: None) -> CaseResult:
    """Build ``tree``'s image, read it with the oracle and with openflr, and compare everything."""
    spec = SPECS[tree.fs]
    started = time.monotonic()
    work.mkdir(parents=True, exist_ok=True)
    image = work / f"{spec.name}.img"
    result = CaseResult(tree.fs, tree.seed, "", tree.wrap, tree.fmt)
    try:
        make_image(spec, image, tree)
        written = write_tree(spec, image, tree, work)
        result.notes += [f"writer refused: {r}" for r in written.refused]
        oracle, result.oracle = oracle_read(spec, image, work, result.notes)
        log(f"{tree.fs} seed {tree.seed}: oracle = {result.oracle}")
        disk = wrap_image(image, tree.wrap, tree.fmt, work)
        checker = _Checker(result)
        errors: list[str] = []
        view = open_view([chain_files(disk)])
        try:
            root, engine, where = engine_read(view, spec.family, errors)
            result.entries = len(oracle)
            compare(spec, engine, oracle, checker)
            if spec.streams:
                compare_streams(view, where, oracle, checker)
            compare_locate(view, root, engine, where, checker, random.Random(tree.seed))
            compare_zip(view, root, spec.family, oracle, checker)
        finally:
            view.close()
        for e in errors:
            checker.check(e.split(":", 1)[0], "readable by openflr", e.split(":", 1)[1].strip(), "readable")
    finally:
        result.seconds = time.monotonic() - started
        for leftover in work.iterdir():
            if leftover.is_file():
                leftover.unlink()
    return result
