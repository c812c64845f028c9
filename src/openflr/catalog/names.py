"""Name search in memory: every catalogued name of a VM in one string, found with ``str.find``.

A substring match cannot use an SQL index, and scanning a million rows in SQLite takes a quarter of
a second; the same names joined into one string are searched in milliseconds. Names never hold a
line feed (control characters are escaped, docs/STORAGE-NOTES.md "Names"), so ``\\n`` separates
them. Names of case-insensitive file systems are kept case-folded and matched against the folded
pattern, the others as they are. Paths are only ever added (ids grow), so a refresh reads the new
rows only; the catalog's garbage collection starts the index again.
"""

from __future__ import annotations

import bisect
import re
import sqlite3
from array import array
from dataclasses import dataclass, field
from enum import StrEnum


class NameMatch(StrEnum):
    SUBSTRING = "substring"
    GLOB = "glob"
    """Shell-style: ``*``, ``?``, ``[abc]``, ``[!abc]``."""
    EXACT = "exact"


@dataclass
class _Names:
    ids: array[int] = field(default_factory=lambda: array("q"))
    starts: array[int] = field(default_factory=lambda: array("q"))
    pending: list[str] = field(default_factory=list)
    text: str = ""
    length: int = 0

    def add(self, path_id: int, name: str) -> None:
        self.ids.append(path_id)
        self.starts.append(self.length)
        self.length += len(name) + 1
        self.pending.append(name)

    def settle(self) -> None:
        if self.pending:
            self.text += "\n".join(self.pending) + "\n"
            self.pending.clear()

    def line_of(self, offset: int) -> int:
        return bisect.bisect_right(self.starts, offset) - 1


class NameIndex:
    """The names of one catalog file, by case rule; ``refresh`` before ``match``."""

    def __init__(self) -> None:
        self._last_id = 0
        self._by_case = {True: _Names(), False: _Names()}

    def refresh(self, cur: sqlite3.Cursor) -> None:
        """Read the paths added since the last refresh."""
        for path_id, name, fold in cur.execute(
            "SELECT id, name, fold FROM paths WHERE id > ? ORDER BY id", (self._last_id,)
        ):
            if fold is None:
                self._by_case[True].add(path_id, name)
            else:
                self._by_case[False].add(path_id, fold)
            self._last_id = path_id
        for names in self._by_case.values():
            names.settle()

    def match(self, pattern: str, how: NameMatch) -> list[int]:
        """Ids of the paths whose name matches (in id order within each case rule)."""
        found: list[int] = []
        for case_sensitive, names in self._by_case.items():
            wanted = pattern if case_sensitive else pattern.casefold()
            if "\n" in wanted or not names.ids:
                continue
            if how is NameMatch.SUBSTRING:
                found += _substring(names, wanted)
            else:
                regex = re.compile(
                    "^" + (_glob_regex(wanted) if how is NameMatch.GLOB else re.escape(wanted)) + "$", re.M
                )
                found += [names.ids[names.line_of(m.start())] for m in regex.finditer(names.text)]
        return found


def _substring(names: _Names, wanted: str) -> list[int]:
    out: list[int] = []
    text, at = names.text, 0
    while True:
        hit = text.find(wanted, at)
        if hit < 0:
            return out
        line = names.line_of(hit)
        out.append(names.ids[line])
        at = names.starts[line + 1] if line + 1 < len(names.starts) else len(text)


def _glob_regex(glob: str) -> str:
    """A shell-style pattern (``*``, ``?``, ``[abc]``, ``[!abc]``) as a regex that stays in one line."""
    out, i = [], 0
    while i < len(glob):
        c = glob[i]
        if c == "*":
            out.append("[^\n]*")
        elif c == "?":
            out.append("[^\n]")
        elif c == "[":
            end = glob.find("]", i + 2 if glob[i + 1 : i + 2] in ("!", "]") else i + 1)
            if end < 0:
                out.append(re.escape(c))
            else:
                body = glob[i + 1 : end]
                negate = body.startswith("!")
                body = body[1:] if negate else body
                cls = body.replace("\\", "\\\\").replace("^", "\\^")
                out.append(f"[{'^' if negate else ''}{cls}{chr(10) if negate else ''}]")
                i = end
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)
