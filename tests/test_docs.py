"""The project's documents cite only the project: no notes kept outside the repository, no
``docs/`` file named that does not exist, no relative Markdown link that leads nowhere, and no cited
section ("docs/EM-API.md, Browsing") that the document does not have.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TREES = ("src", "tests", "bench", "scripts", "docs")
TOP_FILES = ("README.md", "CONTRIBUTING.md", "CHANGELOG.md")
SKIPPED_DIRS = {"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".hypothesis"}

# Notes and trackers outside the repository that code and docs must not cite. The pattern is built
# from pieces so that this file does not cite them itself.
_OUTSIDE_NAMES = ["DES" + "IGN", "CLI" + "ENTS", "EVALU" + "ATION", "ANC" + "HORS", "STYLE" + "-NOTES"]
OUTSIDE = re.compile(
    "|".join(
        [
            "\u00a7",  # section numbers of an outside text
            r"\b(?:" + "|".join(_OUTSIDE_NAMES) + r")\b",
            r"\bSP" + r"EC\.md\b",
            r"\b[Ii]ss" + r"ue #?[0-9]",
        ]
    )
)
DOC_PATH = re.compile(r"\bdocs/([A-Za-z0-9_.-]+\.md)\b")
LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^\s*(```|~~~)")
# "docs/EM-API.md, Browsing", 'docs/SECURITY.md ("Restore targets")', 'docs/SECURITY.md, "Load"'
CITED_SECTION = re.compile(r'\bdocs/([A-Za-z0-9_.-]+\.md),? \(?(?:"([^"\n]+)"|([A-Z][A-Za-z-]*)\b)')


def text_files() -> list[Path]:
    """Every text file of the trees that cite documents, and the top-level documents."""
    found: list[Path] = []
    for tree in TREES:
        for path in sorted((ROOT / tree).rglob("*")):
            parts = path.relative_to(ROOT).parts
            if not path.is_file() or any(p in SKIPPED_DIRS or p.endswith(".egg-info") for p in parts):
                continue
            data = path.read_bytes()
            if b"\0" in data:
                continue
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                continue
            found.append(path)
    found += [ROOT / name for name in TOP_FILES if (ROOT / name).is_file()]
    return found


def markdown_files() -> list[Path]:
    return sorted((ROOT / "docs").glob("*.md")) + [
        ROOT / name for name in TOP_FILES if (ROOT / name).is_file()
    ]


def prose_lines(path: Path) -> list[tuple[int, str]]:
    """(number, line) of a Markdown file outside fenced code blocks."""
    lines: list[tuple[int, str]] = []
    fenced = False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append((number, line))
    return lines


def slug(heading: str) -> str:
    """The anchor a Markdown renderer gives a heading: lower case, punctuation dropped, spaces as -."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def headings(path: Path) -> list[str]:
    return [m.group(1).strip() for _, line in prose_lines(path) if (m := re.match(r"#{1,6}\s+(.*)", line))]


def section_names(path: Path) -> set[str]:
    """What a citation may name: a heading, or a bold paragraph label (``**Load.**``)."""
    names = {re.sub(r"\s*\(.*\)$", "", h).strip("` ").lower() for h in headings(path)}
    names |= {h.strip("` ").lower() for h in headings(path)}
    text = path.read_text(encoding="utf-8")
    names |= {m.group(1).strip().lower() for m in re.finditer(r"\*\*([^*\n]+?)\.?\*\*", text)}
    return names


def where(path: Path, text: str, at: int) -> str:
    return f"{path.relative_to(ROOT)}:{text.count(chr(10), 0, at) + 1}"


def test_the_pattern_does_not_cite_itself() -> None:
    assert OUTSIDE.search(Path(__file__).read_text(encoding="utf-8")) is None
    assert OUTSIDE.search("see the " + "DES" + "IGN notes") is not None
    assert OUTSIDE.search("per " + "SP" + "EC.md \u00a74.2") is not None
    assert OUTSIDE.search("DESIGNS, design, clients and an issue tracker are fine") is None


def test_no_file_cites_documents_outside_the_repository() -> None:
    found = []
    for path in text_files():
        text = path.read_text(encoding="utf-8")
        found += [f"{where(path, text, m.start())}: {m.group()!r}" for m in OUTSIDE.finditer(text)]
    assert not found, "cite the project's own docs/ instead:\n" + "\n".join(found)


def test_every_cited_docs_file_exists() -> None:
    missing = []
    for path in text_files():
        text = path.read_text(encoding="utf-8")
        for m in DOC_PATH.finditer(text):
            if not (ROOT / "docs" / m.group(1)).is_file():
                missing.append(f"{where(path, text, m.start())}: docs/{m.group(1)}")
    assert not missing, "these documents do not exist:\n" + "\n".join(missing)


def test_every_cited_section_exists() -> None:
    missing = []
    for path in text_files():
        text = path.read_text(encoding="utf-8")
        for m in CITED_SECTION.finditer(text):
            doc = ROOT / "docs" / m.group(1)
            name = m.group(2) or m.group(3)
            if doc.is_file() and name.lower() not in section_names(doc):
                missing.append(f"{where(path, text, m.start())}: docs/{m.group(1)}, {name!r}")
    assert not missing, "no such heading (or bold paragraph label):\n" + "\n".join(missing)


@pytest.mark.parametrize("doc", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(doc: Path) -> None:
    broken = []
    for number, line in prose_lines(doc):
        for m in LINK.finditer(re.sub(r"`[^`]*`", "", line)):
            target = m.group(1)
            if re.match(r"[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):
                continue  # https:, mailto:
            file_part, _, anchor = target.partition("#")
            linked = (doc.parent / file_part).resolve() if file_part else doc
            if not linked.exists():
                broken.append(f"{doc.relative_to(ROOT)}:{number}: {target} (no such file)")
            elif anchor and linked.suffix == ".md" and anchor not in {slug(h) for h in headings(linked)}:
                broken.append(f"{doc.relative_to(ROOT)}:{number}: {target} (no such heading)")
    assert not broken, "\n".join(broken)


def test_slugs_follow_the_renderers() -> None:
    assert slug("Unmount and logoff") == "unmount-and-logoff"
    assert slug("Jobs, backups and restore points") == "jobs-backups-and-restore-points"
    assert slug("The `Error` body") == "the-error-body"
