#!/usr/bin/env python3
"""Checks the repository's documentation links and references, using git's list of tracked files.

- Every link in a tracked Markdown file (`[text](target)`, `[text]: target`) points inside the
  repository: a relative path that exists, and whose `#anchor`, if any, is a heading of the
  Markdown file it names (GitHub's heading anchors). Links to web pages are refused too: the
  documentation must stand on its own in a clone.
- Every `docs/semantics.md#anchor` mentioned in any tracked file (code comments, the C header,
  scripts) names a heading that exists.
- No tracked file refers to files outside the repository (a path that climbs above it, or a
  document it does not contain) or to section numbers of such documents (the patterns are in
  FORBIDDEN_EVERYWHERE below), and the documentation uses no words that only mean something
  inside the team that wrote it.

Exit status 1 with one line per problem; prints a summary either way.
"""

from __future__ import annotations

import re
import subprocess
import sys
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Anywhere in tracked text files.
FORBIDDEN_EVERYWHERE = [
    (re.compile(r"SPEC\s*§"), "a section number of a document outside the repository"),
    (re.compile(r"\bSPEC\.md\b"), "a document outside the repository"),
    (re.compile(r"\bEMBEDDED\.md\b"), "a document outside the repository"),
    (re.compile(r"\.\./shared/|(?<![\w.])shared/(SPEC|EMBEDDED|STYLE)"), "a path outside the repository"),
    (re.compile(r"/work/(wt|main|shared)\b"), "a path on a developer's machine"),
]
# In documentation (Markdown), words that mean nothing to a user.
FORBIDDEN_IN_DOCS = [
    (re.compile(r"\bhoped[- ]for\b|\bthe issue's hope\b", re.I), "team-internal wording"),
    (re.compile(r"\(issue \d+\)|\btarget \(issue\b", re.I), "a reference to the team's issues"),
    (re.compile(r"\bthe AWS article\b", re.I), "an unnamed article (name its title and author)"),
]
# This checker names the patterns it looks for; it is exempt from them.
SELF = "scripts/check-links.py"

LINK = re.compile(r"(?<!\!)\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
IMAGE = re.compile(r"\!\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?\s*\)")
REFDEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.M)
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
SEMANTICS_REF = re.compile(r"docs/semantics\.md#([A-Za-z0-9_-]+)")


def tracked() -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, stdout=subprocess.PIPE, check=True
    ).stdout
    return [p for p in out.decode().split("\0") if p]


def strip_code(text: str) -> str:
    """Blanks fenced code blocks and inline code, keeping line numbers."""
    lines, fenced, fence = [], False, ""
    for line in text.splitlines():
        m = re.match(r"^\s*(```+|~~~+)", line)
        if m and (not fenced or m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence)):
            fenced, fence = (not fenced), m.group(1)
            lines.append("")
            continue
        lines.append("" if fenced else re.sub(r"`+[^`]*`+", "``", line))
    return "\n".join(lines)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links: their text
    text = re.sub(r"<[^>]+>", "", text).lower()
    kept = []
    for ch in text:
        cat = unicodedata.category(ch)
        if ch in " -_" or cat[0] in "LN" or cat == "Mn":
            kept.append(ch)
    return "".join(kept).replace(" ", "-")


def anchors(path: Path, cache: dict[Path, set[str]]) -> set[str]:
    if path not in cache:
        seen: dict[str, int] = {}
        found = set()
        fenced = False
        for line in path.read_text(encoding="utf-8").splitlines():
            if re.match(r"^\s*(```|~~~)", line):
                fenced = not fenced
                continue
            m = None if fenced else HEADING.match(line)
            if not m:
                continue
            base = slug(m.group(2))
            n = seen.get(base, 0)
            seen[base] = n + 1
            found.add(base if n == 0 else f"{base}-{n}")
        found |= set(re.findall(r'<a\s+(?:name|id)="([^"]+)"', path.read_text(encoding="utf-8")))
        cache[path] = found
    return cache[path]


def check_target(src: str, target: str, cache: dict[Path, set[str]]) -> str | None:
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target):
        return f"links outside the repository ({target})"
    path_part, _, anchor = target.partition("#")
    base = (ROOT / src).parent
    dest = (base / path_part).resolve() if path_part else (ROOT / src).resolve()
    if path_part.startswith("/"):
        return f"absolute path {target}"
    try:
        dest.relative_to(ROOT)
    except ValueError:
        return f"{target} leaves the repository"
    if not dest.exists():
        return f"{target}: no such file"
    if anchor:
        if dest.suffix != ".md":
            return None  # anchors into code (line numbers) are not checked
        if anchor not in anchors(dest, cache):
            rel = dest.relative_to(ROOT)
            return f"{target}: no heading with anchor #{anchor} in {rel}"
    return None


def main() -> int:
    files = tracked()
    cache: dict[Path, set[str]] = {}
    problems: list[str] = []
    links = refs = 0
    semantics = ROOT / "docs" / "semantics.md"
    for rel in files:
        path = ROOT / rel
        if not path.is_file() or path.is_symlink():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        if rel != SELF:
            for lineno, line in enumerate(text.splitlines(), 1):
                for pattern, why in FORBIDDEN_EVERYWHERE:
                    if pattern.search(line):
                        problems.append(f"{rel}:{lineno}: {why}: {line.strip()[:100]}")
            for m in SEMANTICS_REF.finditer(text):
                refs += 1
                if not semantics.is_file() or m.group(1) not in anchors(semantics, cache):
                    lineno = text.count("\n", 0, m.start()) + 1
                    problems.append(f"{rel}:{lineno}: docs/semantics.md has no #{m.group(1)}")
        if not rel.endswith(".md"):
            continue
        prose = strip_code(text)
        for lineno, line in enumerate(prose.splitlines(), 1):
            for pattern, why in FORBIDDEN_IN_DOCS:
                if pattern.search(line):
                    problems.append(f"{rel}:{lineno}: {why}: {line.strip()[:100]}")
            for m in list(LINK.finditer(line)) + list(IMAGE.finditer(line)):
                links += 1
                err = check_target(rel, m.group(1), cache)
                if err:
                    problems.append(f"{rel}:{lineno}: {err}")
        for m in REFDEF.finditer(prose):
            links += 1
            err = check_target(rel, m.group(1), cache)
            if err:
                lineno = prose.count("\n", 0, m.start()) + 1
                problems.append(f"{rel}:{lineno}: {err}")
    for p in problems:
        print(p)
    md = sum(1 for f in files if f.endswith(".md"))
    print(
        f"check-links: {md} Markdown files, {links} links, {refs} semantics references, "
        f"{len(problems)} problems"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
