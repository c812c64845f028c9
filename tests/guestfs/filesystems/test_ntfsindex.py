"""NTFS folders read from their own $I30 index, against libfsntfs's reading of the same image: the
same names in the same order with the same folder flags, the same pages, the same entries; and
damaged copies of the image (INDX records, fixups, subnode VCNs, runlists, sizes) that end in a
listing or a clear ``VolumeError``, never a hang or a crash."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyfsntfs
import pytest

from openflr.guestfs.errors import VolumeError
from openflr.guestfs.filesystems import ntfsindex
from openflr.guestfs.filesystems.base import Entry
from openflr.guestfs.filesystems.names import name_from_text, name_from_utf16
from openflr.guestfs.filesystems.ntfs import NtfsFileSystem, _Found, _LibyalFileSystem
from openflr.guestfs.filesystems.ntfsindex import FolderIndex, NtfsVolume, Unusable, apply_fixups, runlist
from tests.guestfs.filesystems.kernel import FileSource
from tests.imagebuilder.build import ntfsbuild_exe

BIG = 20_000
"""Entries of /big: enough for a B+tree of three levels below its root."""
LONG = "x" * 60
"""/long's names: its $INDEX_ROOT grows out of the folder's MFT record (an $ATTRIBUTE_LIST)."""


def _commands(src: Path) -> list[str]:
    empty, text = src / "empty", src / "text"
    empty.write_bytes(b"")
    text.write_bytes(b"some text\n")
    cmds = ["mkdir\t/small", "mkdir\t/big", "mkdir\t/other", "mkdir\t/small/sub", "mkdir\t/long"]
    cmds += [f"put\t/small/{n}\t{text}" for n in ("a.txt", "B.txt", "ünïcödé 文件.txt", "😀 emoji.txt")]
    cmds += [
        "put\t/small/Long File Name.txt\t" + str(text),
        "dosname\t/small/Long File Name.txt\tLONGFI~1.TXT",
    ]
    cmds += ["link\t/small/a.txt\t/small/hard link.txt", "link\t/small/a.txt\t/other/elsewhere.txt"]
    for i in range(BIG):
        if i % 2500 == 1250:
            cmds.append(f"mkdir\t/big/file_{i:06d}_dir")
        else:
            cmds.append(f"put\t/big/file_{i:06d}.txt\t{empty if i % 3 else text}")
    cmds += [f"put\t/long/{LONG}_{i:05d}.txt\t{empty}" for i in range(4000)]
    return cmds


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("ntfsindex")
    image = work / "ntfs.img"
    subprocess.run(["truncate", "-s", "64M", str(image)], check=True)
    subprocess.run(["mkntfs", "-F", "-Q", "-q", "-s", "512", "-c", "4096", str(image)], check=True)
    subprocess.run(
        [str(ntfsbuild_exe(work)), str(image)], input=("\n".join(_commands(work)) + "\n").encode(), check=True
    )
    return image


def _volume(image: Path) -> tuple[NtfsVolume, int]:
    fd = os.open(image, os.O_RDONLY)
    return NtfsVolume(lambda offset, n: os.pread(fd, n, offset), os.fstat(fd).st_size), fd


def _libfsntfs_folders(image: Path) -> Iterator[tuple[str, Any]]:
    volume = pyfsntfs.volume()
    volume.open(str(image))
    stack = [("", volume.get_root_directory())]
    while stack:
        path, folder = stack.pop()
        yield path, folder
        for i in range(folder.number_of_sub_file_entries):
            sub = folder.get_sub_file_entry(i)
            record = sub.file_reference & ntfsindex.REFERENCE
            if sub.has_directory_entries_index() and record >= 24:
                stack.append((f"{path}/{sub.name}", sub))


def test_every_folder_lists_as_libfsntfs_does(image: Path) -> None:
    volume, fd = _volume(image)
    try:
        folders, fallbacks = 0, []
        for path, folder in _libfsntfs_folders(image):
            theirs = [
                (name_from_text(s.name), s.file_reference, bool(s.has_directory_entries_index()))
                for s in (folder.get_sub_file_entry(i) for i in range(folder.number_of_sub_file_entries))
            ]
            try:
                index = FolderIndex(volume, folder.file_reference & ntfsindex.REFERENCE)
            except Unusable:
                fallbacks.append(path)  # listed through libfsntfs
                continue
            ours = [(name_from_utf16(u), ref, is_dir) for ref, u, is_dir in index.names()]
            assert ours == theirs, path
            assert index.tally() == (len(theirs), sum(d for _n, _r, d in theirs)), path
            folders += 1
        assert folders >= 5
        assert fallbacks == []
        long = next(f for p, f in _libfsntfs_folders(image) if p == "/long")
        record = volume.record(long.file_reference & ntfsindex.REFERENCE)
        types = {a.type for a in volume.attributes(record)}
        assert ntfsindex.ATTRIBUTE_LIST in types and ntfsindex.INDEX_ROOT not in types  # read from extensions
    finally:
        os.close(fd)


def test_the_big_folder_is_a_deep_tree(image: Path) -> None:
    volume, fd = _volume(image)
    try:
        big = next(f for p, f in _libfsntfs_folders(image) if p == "/big")
        index = FolderIndex(volume, big.file_reference & ntfsindex.REFERENCE)
        root = index._root()
        assert not root.leaf
        inner = [index._node(sub) for _names, sub in index._segments(root) if sub >= 0]
        assert any(node is not None and not node.leaf for node in inner)  # three levels at least
        assert index.tally() == (BIG, BIG // 2500)
    finally:
        os.close(fd)


def _facts(entries: list[Entry]) -> list[tuple[object, ...]]:
    return [(e.name, e.is_dir, e.size, e.mtime_ns, e.owner, e.is_link, e.ident) for e in entries]


def test_pages_and_entries_match_the_libfsntfs_listing(image: Path) -> None:
    fs = NtfsFileSystem(FileSource(image))
    try:
        for parts in (["big"], ["small"], ["other"], ["long"], []):
            node = fs.lookup(parts) if parts else fs.root()
            real = fs._real(node)
            whole = list(_LibyalFileSystem.scandir(fs, real))  # libfsntfs's own listing
            count = real.number_of_sub_file_entries
            assert _facts(list(fs.scandir(node))) == _facts(whole), parts
            for start, stop in ((0, 7), (count // 2, count // 2 + 100), (max(0, count - 5), count + 10)):
                assert _facts(list(fs.scandir(node, start, stop))) == _facts(
                    list(_LibyalFileSystem.scandir(fs, real, start, stop))
                ), (parts, start)
            assert fs.counts(node) == (len(whole), sum(e.is_dir for e in whole)), parts
    finally:
        fs.close()


def test_hard_links_dos_names_and_unicode(image: Path) -> None:
    fs = NtfsFileSystem(FileSource(image))
    try:
        names = [e.name for e in fs.scandir(fs.lookup(["small"]))]
        assert {"a.txt", "hard link.txt", "Long File Name.txt", "ünïcödé 文件.txt", "😀 emoji.txt"} <= set(
            names
        )
        assert "LONGFI~1.TXT" not in names  # the DOS name is not listed...
        assert fs.lookup(["small", "longfi~1.txt"]) is None  # ...nor found
        linked = [fs.stat(fs.lookup(p)) for p in (["small", "hard link.txt"], ["other", "ELSEWHERE.TXT"])]
        assert [e.name for e in linked] == ["hard link.txt", "elsewhere.txt"]  # each link its own name
        assert linked[0].ident == linked[1].ident == fs.stat(fs.lookup(["small", "a.txt"])).ident
        assert fs.open(fs.lookup(["other", "elsewhere.txt"])).pread(100, 0) == b"some text\n"
    finally:
        fs.close()


def test_a_folder_is_found_and_shown_without_libfsntfs(image: Path) -> None:
    """libfsntfs reads a folder's whole index to make its entry: the lookup and stat of a folder
    to list do not make it, and show what it would."""
    fs = NtfsFileSystem(FileSource(image))
    try:
        node = fs.lookup(["BIG"])
        entry = fs.stat(node)
        assert isinstance(node, _Found) and node.entry is None
        ours = (entry.name, entry.is_dir, entry.size, entry.mtime_ns, entry.owner, entry.ident)
        theirs = fs._entry(fs.volume.get_file_entry(entry.ident))
        assert ours == ("big", True, 0, theirs.mtime_ns, theirs.owner, theirs.ident)
        assert theirs.owner is not None
    finally:
        fs.close()


# --- pure functions ---------------------------------------------------------------------------------


def test_runlists_decode_signed_deltas_and_sparse_runs() -> None:
    # 16 clusters at LCN 0x100, 4 sparse, 8 at 0x100 - 0x10 (a negative delta)
    data = bytes([0x21, 0x10, 0x00, 0x01, 0x01, 0x04, 0x11, 0x08, 0xF0, 0x00])
    runs = runlist(data, 0, len(data))
    assert [(r.vcn, r.clusters, r.lcn) for r in runs] == [(0, 16, 0x100), (16, 4, None), (20, 8, 0xF0)]
    for bad in (data[:-1], bytes([0x21, 0x10]), bytes([0x19, 1, 0]), bytes([0x11, 0x01, 0x80, 0x00])):
        with pytest.raises(Unusable):  # no end, cut short, a 9-byte length, before the volume
            runlist(bad, 0, len(bad))


def test_fixups_are_checked_and_undone() -> None:
    record = bytearray(1024)
    record[0:8] = b"INDX" + struct.pack("<HH", 0x28, 3)
    record[0x28:0x2E] = b"\x07\x00" + b"ab" + b"cd"
    record[510:512] = record[1022:1024] = b"\x07\x00"
    fixed = bytearray(record)
    apply_fixups(fixed, "test")
    assert (bytes(fixed[510:512]), bytes(fixed[1022:1024])) == (b"ab", b"cd")
    record[1022] = 0x08  # a torn write
    with pytest.raises(Unusable):
        apply_fixups(bytearray(record), "test")


# --- damaged copies ---------------------------------------------------------------------------------


def _disk_offset(volume: NtfsVolume, runs: tuple[ntfsindex.Run, ...], offset: int) -> int:
    for run in runs:
        begin = run.vcn * volume.cluster
        if run.lcn is not None and begin <= offset < begin + run.clusters * volume.cluster:
            return run.lcn * volume.cluster + offset - begin
    raise AssertionError("not mapped")


def _big(image: Path) -> tuple[int, int, list[tuple[int, bool]]]:
    """The disk offset of /big's MFT record, of its $INDEX_ALLOCATION attribute in that record,
    and of each of its INDX records (and whether it is a leaf)."""
    volume, fd = _volume(image)
    try:
        big = next(f for p, f in _libfsntfs_folders(image) if p == "/big")
        number = big.file_reference & ntfsindex.REFERENCE
        index = FolderIndex(volume, number)
        record_at = _disk_offset(volume, volume._mft_runs, number * volume.record_size)
        record = volume.record(number)
        pos = struct.unpack_from("<H", record, 0x14)[0]
        while struct.unpack_from("<I", record, pos)[0] != ntfsindex.INDEX_ALLOCATION:
            pos += struct.unpack_from("<I", record, pos + 4)[0]
        assert index.allocation is not None
        nodes = []
        for n in range(index.nodes):
            node = index._node(n * index.record_size // index.vcn_unit)
            assert node is not None
            nodes.append((_disk_offset(volume, index.allocation.runs, n * index.record_size), node.leaf))
        return record_at, record_at + pos, nodes
    finally:
        os.close(fd)


def _damaged(image: Path, tmp_path: Path, writes: list[tuple[int, bytes]]) -> Path:
    copy = tmp_path / "damaged.img"
    shutil.copyfile(image, copy)
    with open(copy, "r+b") as f:
        for offset, data in writes:
            f.seek(offset)
            f.write(data)
    return copy


def _list_big(copy: Path) -> list[str] | None:
    """The names /big lists, or None when listing it failed with a clear VolumeError."""
    fs = NtfsFileSystem(FileSource(copy))
    try:
        node = fs.lookup(["big"])
        assert node is not None
        fs.counts(node)
        return [e.name for e in fs.scandir(node)]
    except VolumeError:
        return None
    finally:
        fs.close()


def _fixup_place(node_at: int) -> int:
    return node_at + 510  # the end of the first stride: the update sequence number lives here


@pytest.mark.parametrize(
    "damage",
    ["magic", "fixup", "vcn-field", "subnode-to-itself", "subnode-out-of-range", "entry-length"],
)
def test_a_damaged_index_record_is_left_out(image: Path, tmp_path: Path, damage: str) -> None:
    _record, _alloc, nodes = _big(image)
    # A node with subnodes for the damage to subnode pointers, else a leaf.
    inner = damage.startswith("subnode")
    victim = [at for at, leaf in nodes if leaf != inner][1]
    with open(image, "rb") as f:
        f.seek(victim)
        node = bytearray(f.read(4096))
    writes: list[tuple[int, bytes]]
    if damage == "magic":
        writes = [(victim, b"JUNK")]
    elif damage == "fixup":
        writes = [(_fixup_place(victim), bytes([node[510] ^ 0xFF]))]
    elif damage == "vcn-field":
        writes = [(victim + 0x10, struct.pack("<Q", 0xDEADBEEF))]
    else:
        # The first entry of the record: point its subnode at the record itself, far past the
        # allocation, or make its length absurd.
        apply_fixups(node, "test")
        first = 0x18 + struct.unpack_from("<I", node, 0x18)[0]
        length = struct.unpack_from("<H", node, first + 8)[0]
        vcn = struct.unpack_from("<Q", node, 0x10)[0]
        if damage == "entry-length":
            writes = [(victim + first + 8, struct.pack("<H", 0xFFF8))]
        else:
            target = vcn if damage == "subnode-to-itself" else 1 << 40
            # Set the subnode flag and its VCN (the last 8 bytes of the entry), not crossing a stride end.
            assert (first + length) % 512 not in range(1, 9) and first + length < 510
            writes = [
                (victim + first + 12, struct.pack("<H", struct.unpack_from("<H", node, first + 12)[0] | 1)),
                (victim + first + length - 8, struct.pack("<Q", target)),
            ]
            # the key must leave room for the VCN: the entry's padding does
    copy = _damaged(image, tmp_path, writes)
    names = _list_big(copy)
    assert names is not None  # the rest of the folder is still listed
    assert 0 < len(names) < BIG  # the damaged part is left out, once
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("damage", ["runlist", "index-record-size", "allocation-size"])
def test_a_damaged_folder_record_is_refused_or_bounded(image: Path, tmp_path: Path, damage: str) -> None:
    """A folder record the index reader refuses is listed by libfsntfs (or fails cleanly); an
    absurd size is bounded by what else the record says (its $BITMAP)."""
    record_at, alloc_at, _nodes = _big(image)
    with open(image, "rb") as f:
        f.seek(record_at)
        record = f.read(1024)
    attr = record[alloc_at - record_at :]
    if damage == "runlist":
        writes = [(alloc_at + struct.unpack_from("<H", attr, 0x20)[0], b"\x4f")]  # a 15-byte LCN field
    elif damage == "index-record-size":
        at = record.find("$I30".encode("utf-16-le"))  # the $INDEX_ROOT's name, then its value
        writes = [(record_at + at + 8 + 8, struct.pack("<I", 0x7FFFFFF0))]
    else:
        writes = [(alloc_at + 0x30, struct.pack("<Q", 1 << 60))]
    copy = _damaged(image, tmp_path, writes)
    volume, fd = _volume(copy)
    try:
        number = (
            next(f for p, f in _libfsntfs_folders(image) if p == "/big").file_reference & ntfsindex.REFERENCE
        )
        if damage == "allocation-size":
            index = FolderIndex(volume, number)
            assert index.nodes * index.record_size < 64 * 1024 * 1024
            assert len(list(index.names())) == index.tally()[0] == BIG
        else:
            with pytest.raises(Unusable):
                FolderIndex(volume, number)
    finally:
        os.close(fd)
    names = _list_big(copy)  # libfsntfs lists it, or it fails cleanly
    assert names is None or len(names) <= BIG


def test_descriptors_from_secure_match_libfsntfs(image: Path) -> None:
    """Items whose $STANDARD_INFORMATION names a security id (mkntfs's metafiles; Windows' files)."""
    volume, fd = _volume(image)
    libfsntfs = pyfsntfs.volume()
    libfsntfs.open(str(image))
    try:
        descriptors = ntfsindex.SecurityDescriptors(volume)
        compared = 0
        for number in range(1, 40):
            try:
                record = volume.record(number)
            except Unusable:
                continue
            si = next(
                a.resident for a in volume.attributes(record) if a.type == ntfsindex.STANDARD_INFORMATION
            )
            if si is None or len(si) < 72 or not struct.unpack_from("<I", si, 0x34)[0]:
                continue
            theirs = bytes(libfsntfs.get_file_entry(number).security_descriptor_data)
            assert descriptors.descriptor(struct.unpack_from("<I", si, 0x34)[0]) == theirs, number
            compared += 1
        assert compared >= 5
        assert descriptors.descriptor(0x7FFFFFFF) is None  # an id $Secure does not hold
    finally:
        os.close(fd)


def test_an_attribute_list_naming_another_items_record_is_refused(image: Path, tmp_path: Path) -> None:
    volume, fd = _volume(image)
    try:
        long = next(f for p, f in _libfsntfs_folders(image) if p == "/long")
        number = long.file_reference & ntfsindex.REFERENCE
        listed = next(
            a for a in volume.attributes(volume.record(number)) if a.type == ntfsindex.ATTRIBUTE_LIST
        )
        assert listed.resident is None  # a list of its own clusters
        data = volume.read_runs(listed.runs, 0, listed.size)
        at = 0
        while struct.unpack_from("<Q", data, at + 16)[0] & ntfsindex.REFERENCE == number:
            at += struct.unpack_from("<H", data, at + 4)[0]
        where = _disk_offset(volume, listed.runs, at + 16)
    finally:
        os.close(fd)
    copy = _damaged(image, tmp_path, [(where, struct.pack("<Q", ntfsindex.ROOT))])
    volume, fd = _volume(copy)
    try:
        with pytest.raises(Unusable, match="not an extension"):
            FolderIndex(volume, number)
    finally:
        os.close(fd)
    fs = NtfsFileSystem(FileSource(copy))
    try:
        node = fs.lookup(["long"])  # found in the root's index; listed through libfsntfs, or refused
        try:
            names = [e.name for e in fs.scandir(node)]
        except VolumeError:
            names = []
        assert len(names) <= 4000
    finally:
        fs.close()
