"""The docs' generated parts, made from the code, so a page can never tell another story than the code.

Two kinds of block in a page are generated and checked in, so that the
page reads the same on a Git host as on the built site:

- between ``<!-- settings-table -->`` and ``<!-- /settings-table -->``,
  :func:`markdown_table`, from the settings table (webapp/config/table.py);
- between ``<!-- include: PATH -->`` and ``<!-- /include -->``, the file at
  PATH (from the project's root) as a code block, so a shipped file shown in
  the docs is the file itself;
- between ``<!-- readme: HEADING -->`` and ``<!-- /readme -->``, the README's
  section of that heading (its links made the docs' own), so the docs' home
  page tells what the README tells.

``python -m webapp.config.docs`` writes them into the pages; ``--check``
only says which page is out of date (exit 1), as tests/config/test_docs_blocks.py
does. MkDocs runs this file as a hook too (``hooks:`` in mkdocs.yml), which
fills the blocks again as it builds, so the site follows the code even
before the pages are written.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

# Absolute: MkDocs loads this file by its path, with camstream installed beside it (the docs extra).
from webapp.config.table import BOOL, CHOICE, ENTRIES, INT, NAMES, SETTINGS, Setting

MARKER = "<!-- settings-table -->"
END = "<!-- /settings-table -->"
INCLUDE_END = "<!-- /include -->"
# A marker alone (a page not yet written) or a marker with its block; blank lines around the block, which
# Python-Markdown needs to take the comment and the block apart.
TABLE_BLOCK = re.compile(re.escape(MARKER) + r"(?:\n.*?\n" + re.escape(END) + ")?", re.DOTALL)
INCLUDE_BLOCK = re.compile(r"<!-- include: ([\w./-]+) -->(?:\n.*?\n" + re.escape(INCLUDE_END) + ")?", re.DOTALL)
README_END = "<!-- /readme -->"
README_BLOCK = re.compile(r"<!-- readme: ([^>\n]+?) -->(?:\n.*?\n" + re.escape(README_END) + ")?", re.DOTALL)
ROOT = Path(__file__).resolve().parents[2]
# The pages with generated blocks.
PAGES = ("docs/index.md", "docs/operations.md", "docs/scaling.md")


def markdown_table() -> str:
    """Every setting, a row each: its flag, variable and TOML key in one cell (one under the other), its default,
    whether a reload applies it, and what it means. Four columns, so the table fits a 1280-px page; the
    meaning, the one long column, wraps."""
    rows = ["| setting | default | reload | meaning |", "| --- | --- | --- | --- |"]
    rows += [_row(setting) for setting in SETTINGS]
    return "\n".join(rows)



def _number(value: float, kind: str) -> str:
    """A bound as a reader writes it: ``65535``, ``0.5``, ``200,000,000`` (not ``2e+08``)."""
    return f"{int(value):,}" if kind == INT and abs(value) >= 1_000_000 else f"{value:g}"


def _row(setting: Setting) -> str:
    names = []
    if setting.flag:
        names.append(f"`{setting.flag}{' ' + setting.metavar if setting.metavar else ''}`"
                     + (" (repeat)" if setting.repeat else ""))
    names.append(f"`{setting.variable}`")
    if setting.toml:
        names.append(f"`{setting.key.lower()}` in TOML" + (" (also per camera)" if setting.camera else ""))
    meaning = setting.help
    if setting.kind == BOOL and setting.flag:
        meaning = f"`{setting.flag}`: {meaning}"
    span = f"{_number(setting.low, setting.kind)}-{_number(setting.high, setting.kind)}"
    if setting.numeric and f"{setting.low:g}-{setting.high:g}" not in meaning and span not in meaning:
        meaning += f"; {span}"
    if setting.kind == CHOICE:
        meaning += "; one of " + ", ".join(f"`{choice}`" for choice in setting.choices)
    if setting.kind in (NAMES, ENTRIES) and not setting.more:
        meaning += "; the variable is comma-separated"
    if setting.more:
        meaning += f"; {setting.more}"
    return (f"| {'<br>'.join(names)} | {_default(setting)} | {'yes' if setting.reload else 'restart'} "
            f"| {_cell(meaning)} |")


def _default(setting: Setting) -> str:
    if setting.shown_default is not None:
        return _cell(setting.shown_default)
    if setting.kind == BOOL:
        return "`true`" if setting.default else "`false`"
    return f"`{setting.shown}`" if setting.shown is not None else ""


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def included(path: str) -> str:
    """The file at ``path`` (from the project's root) as a fenced code block."""
    file = ROOT / path
    kind = {".conf": "nginx", ".toml": "toml", ".py": "python"}.get(file.suffix, "")
    return f"```{kind}\n{file.read_text().rstrip()}\n```"


def readme_section(heading: str) -> str:
    """The README's section under ``## heading`` (without the heading), its links to ``docs/`` made relative to
    the docs folder; a link elsewhere is refused, as it would not lead anywhere from the docs."""
    text = (ROOT / "README.md").read_text()
    start = text.index(f"\n## {heading}\n") + len(f"\n## {heading}\n")
    end = text.find("\n## ", start)
    section = text[start:] if end < 0 else text[start:end]
    section = section.replace("](docs/", "](").strip()
    outside = [link for link in re.findall(r"\]\(([^)#]+)", section) if "/" in link and "://" not in link]
    if outside:
        raise ValueError(f"README's section {heading!r} links outside docs/: {outside}")
    return section


def filled(markdown: str) -> str:
    """``markdown`` with every generated block made again from the code."""
    markdown = TABLE_BLOCK.sub(lambda _: f"{MARKER}\n\n{markdown_table()}\n\n{END}", markdown)
    markdown = README_BLOCK.sub(lambda m: f"<!-- readme: {m[1]} -->\n\n{readme_section(m[1])}\n\n{README_END}",
                                markdown)
    return INCLUDE_BLOCK.sub(lambda m: f"<!-- include: {m[1]} -->\n\n{included(m[1])}\n\n{INCLUDE_END}", markdown)


def on_page_markdown(markdown: str, **_: Any) -> str:
    """MkDocs' hook: the blocks as the code says now."""
    return filled(markdown)


def main(argv: list[str]) -> int:
    """Write the generated blocks into the pages, or with ``--check`` only name the pages out of date."""
    check = "--check" in argv
    stale = []
    for page in PAGES:
        path = ROOT / page
        text = path.read_text()
        if filled(text) != text:
            stale.append(page)
            if not check:
                path.write_text(filled(text))
    for page in stale:
        print(f"{page}: {'out of date (python -m webapp.config.docs writes it)' if check else 'written'}")
    return 1 if check and stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
