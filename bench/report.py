"""docs/benchmarks.md holds one section per benchmark script; each rewrites only its own."""

from __future__ import annotations

import sys
from pathlib import Path

TITLE = "# Benchmarks\n\n"


def write_section(path: Path, name: str, text: str) -> None:
    """Put ``text`` into ``path`` between the markers of section ``name``, keeping every other section."""
    begin, end = f"<!-- begin {name} -->", f"<!-- end {name} -->"
    block = f"{begin}\n{text.strip()}\n{end}\n"
    old = path.read_text() if path.exists() else TITLE
    if begin in old and end in old:
        new = old[:old.index(begin)] + block + old[old.index(end) + len(end):].lstrip("\n")
    else:
        new = old.rstrip("\n") + "\n\n" + block
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(new)


def publish(out: str, name: str, text: str) -> None:
    """Print ``text`` (``out`` is ``-``) or write it as section ``name`` of the file ``out``."""
    if out == "-":
        print(text)
        return
    write_section(Path(out), name, text)
    print(f"wrote {out}", file=sys.stderr)
