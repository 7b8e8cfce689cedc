"""Every citation into docs/ resolves, and nothing cites notes a reader cannot open.

(a) No file of the repository outside docs/ mentions the team's internal reference
    notes (their file names are assembled below, so this file does not mention them).
(b) Every ``docs/<page>.md#<anchor>`` in a file of the repository names a page that
    exists and a heading of it (GitHub's anchors), and every relative link inside
    docs/ resolves; a failure names the file and line that cite it.

The files are those git knows (``git ls-files``: tracked, plus new ones not ignored),
read from the working tree. Pure file reading: no server, no database.
"""

from __future__ import annotations

import difflib
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
INTERNAL_NOTES = tuple(f"{name}.md" for name in ("DOMAIN", "SOURCES", "DESIGN"))

# docs/<page>.md, optionally #anchor; "docs/" not preceded by a name character, so a
# relative link "../../docs/<page>.md" counts and "wt-docs/<page>.md" does not.
DOCS_REFERENCE = re.compile(r"(?<![\w.-])docs/([\w./-]+?\.md)(?:#([\w-]+))?")
MARKDOWN_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$")
FENCE = re.compile(r"^[ \t]*(```|~~~)")

# A floor well under today's count (about 45 citations in code, rule files and tests):
# finding fewer means the scan is broken, not that the repository is clean.
MIN_REFERENCES = 30
MIN_FILES = 100


# --------------------------------------------------------------------------- helpers
def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: inline markup reduced to its text, lower
    case, every character but letters, digits, spaces, hyphens and underscores
    dropped, spaces turned into hyphens."""
    text = re.sub(r"`([^`]*)`", r"\1", heading)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors_of(markdown: str) -> set[str]:
    """The anchors of a page's ATX headings (outside code fences), with GitHub's
    -1, -2 … suffixes for repeated headings."""
    seen: dict[str, int] = {}
    out: set[str] = set()
    in_fence = False
    for line in markdown.splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
            continue
        m = None if in_fence else HEADING.match(line)
        if not m:
            continue
        base = github_anchor(m.group(2))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def repository_files() -> dict[str, str]:
    """Path (repository-relative, POSIX) -> text, for every text file git knows."""
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout: no file list to check")
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    files = {}
    for rel in sorted(set(filter(None, listed.split("\0")))):
        path = REPO / rel
        if not path.is_file():  # deleted in the working tree
            continue
        try:
            files[rel] = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:  # binary
            continue
    return files


class Pages:
    """docs pages on disk and their anchors, read once."""

    def __init__(self, root: Path):
        self.root = root
        self._anchors: dict[Path, set[str]] = {}

    def anchors(self, page: Path) -> set[str]:
        if page not in self._anchors:
            self._anchors[page] = anchors_of(page.read_text(encoding="utf-8"))
        return self._anchors[page]

    def problem(self, page: Path, anchor: str | None, shown: str) -> str | None:
        if not page.is_file():
            return f"{shown}: no such page"
        if anchor is None or page.suffix != ".md" or anchor in self.anchors(page):
            return None
        close = difflib.get_close_matches(anchor, sorted(self.anchors(page)), n=3)
        hint = f" (did you mean {', '.join('#' + c for c in close)}?)" if close else ""
        return f"{shown}: no heading #{anchor}{hint}"


def docs_references(files: dict[str, str]) -> list[tuple[str, int, str, str | None]]:
    """(file, line, page, anchor) of every docs/<page>.md[#anchor] in the files."""
    found = []
    for rel, text in files.items():
        for lineno, line in enumerate(text.splitlines(), 1):
            for m in DOCS_REFERENCE.finditer(line):
                found.append((rel, lineno, m.group(1), m.group(2)))
    return found


def broken_docs_references(files: dict[str, str], docs_root: Path) -> list[str]:
    pages = Pages(docs_root)
    problems = []
    for rel, lineno, page, anchor in docs_references(files):
        shown = f"docs/{page}" + (f"#{anchor}" if anchor else "")
        problem = pages.problem((docs_root / page).resolve(), anchor, shown)
        if problem:
            problems.append(f"{rel}:{lineno}: {problem}")
    return problems


def broken_links_in_docs(docs_root: Path) -> list[str]:
    """Relative links of the docs pages: the target exists, and a heading of it when
    an anchor is given (a bare #anchor points into the page itself)."""
    pages = Pages(docs_root)
    problems = []
    for page in sorted(docs_root.rglob("*.md")):
        in_fence = False
        for lineno, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            if FENCE.match(line):
                in_fence = not in_fence
            if in_fence:
                continue
            for m in MARKDOWN_LINK.finditer(line):
                target = m.group(1)
                if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
                    continue
                path_part, _, anchor = target.partition("#")
                dest = (page.parent / path_part).resolve() if path_part else page
                problem = pages.problem(dest, anchor or None, target)
                if problem:
                    problems.append(f"{page.relative_to(docs_root.parent)}:{lineno}: {problem}")
    return problems


# --------------------------------------------------------------------------- the checks
@pytest.fixture(scope="module")
def files() -> dict[str, str]:
    found = repository_files()
    assert len(found) >= MIN_FILES, f"only {len(found)} files listed by git: the scan is broken"
    assert "README.md" in found and any(f.startswith("expectations/") for f in found)
    return found


def test_nothing_outside_docs_cites_the_internal_notes(files):
    hits = [
        f"{rel}:{lineno}: {name}"
        for rel, text in files.items()
        if not rel.startswith("docs/")
        for lineno, line in enumerate(text.splitlines(), 1)
        for name in INTERNAL_NOTES
        if name in line
    ]
    assert not hits, (
        "cite docs/<page>.md#<anchor> or a public source instead of notes outside the repository:\n" + "\n".join(hits)
    )


def test_every_docs_reference_names_a_page_and_a_heading(files):
    refs = docs_references(files)
    assert len(refs) >= MIN_REFERENCES, f"only {len(refs)} docs references found: the scan is broken"
    cited = {page for _, _, page, _ in refs}
    assert {"definitions.md", "sources.md", "architecture.md"} <= cited
    assert sum(1 for *_, anchor in refs if anchor) >= MIN_REFERENCES
    problems = broken_docs_references(files, DOCS)
    assert not problems, "broken references into docs/:\n" + "\n".join(problems)


def test_links_between_docs_pages_resolve():
    assert {"README.md", "definitions.md", "sources.md", "architecture.md"} <= {p.name for p in DOCS.glob("*.md")}
    problems = broken_links_in_docs(DOCS)
    assert not problems, "broken links in docs/:\n" + "\n".join(problems)


# --------------------------------------------------------------------------- the checker itself
def test_github_anchors():
    assert github_anchor("Midnight census") == "midnight-census"
    assert github_anchor("Nurse-to-patient ratios") == "nurse-to-patient-ratios"
    assert github_anchor("Title 22 §70217(a): ratios") == "title-22-70217a-ratios"
    assert github_anchor("The `raw` layer") == "the-raw-layer"
    assert github_anchor("Health information management (HIM)") == "health-information-management-him"
    assert anchors_of("# A\n## Notes\n```\n# not a heading\n```\n### Notes\n") == {"a", "notes", "notes-1"}


def test_the_checker_finds_what_is_broken(tmp_path):
    (tmp_path / "page.md").write_text("# Page\n\n## Real heading\n\nSee [x](other.md#gone) and [y](#real-heading).\n")
    d = "docs/"  # assembled, so that this file holds no broken citation of its own
    files = {
        "a.sql": f"-- fine: {d}page.md#real-heading\n-- {d}page.md#real-headng\n",
        "b.py": f"x = 1\n# {d}nowhere.md#anything and {d}page.md\n",
        "c.txt": "wt-docs/page.md#not-a-reference\n",
    }
    assert [r[:2] for r in docs_references(files)] == [("a.sql", 1), ("a.sql", 2), ("b.py", 2), ("b.py", 2)]
    assert broken_docs_references(files, tmp_path) == [
        f"a.sql:2: {d}page.md#real-headng: no heading #real-headng (did you mean #real-heading?)",
        f"b.py:2: {d}nowhere.md#anything: no such page",
    ]
    assert broken_links_in_docs(tmp_path) == [f"{tmp_path.name}/page.md:5: other.md#gone: no such page"]
