"""Differential truth in CI: fixed seeds of random trees per file system, written by an independent
writer and compared, entry by entry, with an independent reader (see ``oracle.py``). Every case
prints the oracle it used; a mismatch names the seed that reproduces it
(``scripts/oracle-run --fs FS --seed SEED --cases 1``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.guestfs.oracle import CaseResult, run_case, tree_for

CASES = [
    # (file system, seed, partition table, image format): every wrapper is met at least once.
    ("ext2", 11, "none", "raw"),
    ("ext3", 12, "mbr", "raw"),
    ("ext4", 13, "gpt", "qcow2"),
    ("ext4-inline", 14, "none", "raw"),
    ("ext4-inline", 15, "mbr", "vhdx"),
    ("xfs", 16, "gpt", "vmdk"),
    ("xfs", 17, "none", "raw"),
    ("ntfs", 18, "gpt", "vhdx"),
    ("ntfs", 19, "none", "raw"),
    ("fat12", 20, "none", "raw"),
    ("fat16", 21, "mbr", "qcow2"),
    ("fat32", 22, "gpt", "raw"),
    ("exfat", 23, "mbr", "vmdk"),
    ("exfat", 24, "none", "raw"),
]
say = print  # every case prints the oracle it used (shown with -s, and on failure)
BULK = 20_000
"""Files in one folder of the big case (the long run goes further)."""


@pytest.fixture
def work(tmp_path: Path) -> Path:
    return tmp_path / "work"


def _verdict(result: CaseResult) -> None:
    say(result.line())
    for note in result.notes[:20]:
        say(f"  note: {note[:300]}")
    shown = "\n".join(str(m)[:600] for m in result.mismatches[:40])
    more = len(result.mismatches) - 40
    assert not result.mismatches, f"{result.line()}\n{shown}" + (f"\n... and {more} more" if more > 0 else "")
    assert result.entries > 0 or result.checks > 0, f"{result.fs} seed {result.seed}: nothing was compared"


@pytest.mark.parametrize(("fs", "case_seed", "wrap", "fmt"), CASES)
def test_engine_shows_what_the_oracle_reads(work: Path, fs: str, case_seed: int, wrap: str, fmt: str) -> None:
    tree = tree_for(fs, case_seed, wrap=wrap, fmt=fmt)
    _verdict(run_case(tree, work, say))


def test_a_folder_of_twenty_thousand_entries(work: Path) -> None:
    """ext4 with a hashed (htree) folder of 20,000 files next to a random tree, in a GPT disk."""
    tree = tree_for("ext4", 25, bulk=BULK, wrap="gpt", fmt="raw")
    result = run_case(tree, work, say)
    assert result.entries >= BULK
    _verdict(result)
