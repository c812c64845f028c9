"""Differential truth in CI: fixed seeds of random trees per file system, written by an independent
writer and compared, entry by entry, with an independent reader (see ``oracle.py``). Every case
prints the oracle it used and the ``scripts/oracle-run`` command that reproduces it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.guestfs.oracle import CaseResult, repro_command, run_case, tree_for

pytestmark = pytest.mark.slow  # every case writes its image with outside tools: not in the fast tier

CASES = [
    # (file system, seed, partition table, image format): every wrapper is met at least once;
    # the first case of each file system also gets a chain of folders at least 4,000 bytes deep
    # (1,500 on FAT, see FsSpec.deep_bytes).
    *[("ext2", s, w, f) for s, w, f in ((11, "none", "raw"), (31, "mbr", "qcow2"), (51, "gpt", "raw"))],
    *[("ext3", s, w, f) for s, w, f in ((12, "mbr", "raw"), (32, "none", "vmdk"), (52, "gpt", "raw"))],
    *[("ext4", s, w, f) for s, w, f in ((13, "gpt", "qcow2"), (33, "none", "raw"), (53, "mbr", "vhdx"))],
    *[("ext4-inline", s, w, f) for s, w, f in ((14, "none", "raw"), (15, "mbr", "vhdx"), (34, "gpt", "raw"))],
    *[("xfs", s, w, f) for s, w, f in ((16, "gpt", "vmdk"), (17, "none", "raw"), (36, "mbr", "qcow2"))],
    *[("ntfs", s, w, f) for s, w, f in ((18, "gpt", "vhdx"), (19, "none", "raw"), (38, "mbr", "qcow2"))],
    *[("fat12", s, w, f) for s, w, f in ((20, "none", "raw"), (40, "mbr", "vmdk"), (60, "gpt", "raw"))],
    *[("fat16", s, w, f) for s, w, f in ((21, "mbr", "qcow2"), (41, "none", "raw"), (61, "gpt", "vmdk"))],
    *[("fat32", s, w, f) for s, w, f in ((22, "gpt", "raw"), (42, "none", "vhdx"), (62, "mbr", "raw"))],
    *[("exfat", s, w, f) for s, w, f in ((23, "mbr", "vmdk"), (24, "none", "raw"), (43, "gpt", "qcow2"))],
    # snapshot chains: a base and a delta over it, reads falling through both
    ("ext4", 555, "gpt", "qcow2-chain"),
    ("ntfs", 556, "mbr", "vmdk-chain"),
]
FIRST = {fs: min(s for f, s, _, _ in CASES if f == fs) for fs, _, _, _ in CASES}
say = print  # every case prints the oracle it used (shown with -s, and on failure)
BULK = 20_000
"""Files in one folder of the big case (the long run goes further)."""


@pytest.fixture
def work(tmp_path: Path) -> Path:
    return tmp_path / "work"


def _verdict(result: CaseResult) -> None:
    say(f"{result.line()}\n  reproduce: {result.repro}")
    for note in result.notes[:20]:
        say(f"  note: {note[:300]}")
    shown = "\n".join(str(m)[:600] for m in result.mismatches[:40])
    more = len(result.mismatches) - 40
    tail = f"\n... and {more} more" if more > 0 else ""
    assert not result.mismatches, f"{result.line()}\nreproduce: {result.repro}\n{shown}{tail}"
    assert result.entries > 0 or result.checks > 0, f"{result.fs} seed {result.seed}: nothing was compared"


@pytest.mark.parametrize(("fs", "case_seed", "wrap", "fmt"), CASES)
def test_engine_shows_what_the_oracle_reads(work: Path, fs: str, case_seed: int, wrap: str, fmt: str) -> None:
    deep = case_seed == FIRST[fs]
    result = run_case(tree_for(fs, case_seed, wrap=wrap, fmt=fmt, deep=deep), work, say)
    result.repro = repro_command(fs, case_seed, 0, wrap, fmt, deep)
    _verdict(result)


@pytest.mark.parametrize(("fs", "count"), [("ntfs", 5000), ("xfs", 5000), ("exfat", 2000)])
def test_folders_of_thousands_on_other_file_systems(work: Path, fs: str, count: int) -> None:
    """A big folder in each other kind of index: NTFS's B+ tree, XFS's directory B+ tree, exFAT's
    plain list (FAT through mtools writes one file per call: its big folders are left to the long run)."""
    result = run_case(tree_for(fs, 26, bulk=count, wrap="none", fmt="raw"), work, say)
    result.repro = repro_command(fs, 26, count, "none", "raw")
    assert result.entries >= count
    _verdict(result)


def test_a_folder_of_twenty_thousand_entries(work: Path) -> None:
    """ext4 with a hashed (htree) folder of 20,000 files next to a random tree, in a GPT disk."""
    result = run_case(tree_for("ext4", 25, bulk=BULK, wrap="gpt", fmt="raw"), work, say)
    result.repro = repro_command("ext4", 25, BULK, "gpt", "raw")
    assert result.entries >= BULK
    _verdict(result)
