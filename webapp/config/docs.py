"""The docs' settings page, made from the settings table, so the page can never tell another story than the code.

MkDocs runs this file as a hook (``hooks:`` in mkdocs.yml): in a page,
the line ``<!-- settings-table -->`` becomes :func:`markdown_table`, and
``<!-- include: PATH -->`` the file at PATH (from the project's root) as a
code block, so a shipped file shown in the docs is the file itself.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

# Absolute: MkDocs loads this file by its path, with camstream installed beside it (the docs extra).
from webapp.config.table import BOOL, CHOICE, ENTRIES, NAMES, SETTINGS, Setting

MARKER = "<!-- settings-table -->"
INCLUDE = re.compile(r"<!-- include: ([\w./-]+) -->")
ROOT = Path(__file__).resolve().parents[2]


def markdown_table() -> str:
    """Every setting, a row each: flag, variable, TOML key, default, whether a reload applies it, meaning."""
    rows = ["| flag | variable | TOML key | default | reload | meaning |", "| --- | --- | --- | --- | --- | --- |"]
    rows += [_row(setting) for setting in SETTINGS]
    return "\n".join(rows)


def _row(setting: Setting) -> str:
    flag = f"`{setting.flag}{' ' + setting.metavar if setting.metavar else ''}`" if setting.flag else ""
    if setting.flag and setting.repeat:
        flag += " (repeat)"
    key = f"`{setting.key.lower()}`" + (" (also per camera)" if setting.camera else "") if setting.toml else ""
    default = _default(setting)
    meaning = setting.help
    if setting.kind == BOOL and setting.flag:
        meaning = f"`{setting.flag}`: {meaning}"
    if setting.numeric and f"{setting.low:g}-{setting.high:g}" not in meaning:
        meaning += f"; {setting.low:g}-{setting.high:g}"
    if setting.kind == CHOICE:
        meaning += "; one of " + ", ".join(f"`{choice}`" for choice in setting.choices)
    if setting.kind in (NAMES, ENTRIES) and not setting.more:
        meaning += "; the variable is comma-separated"
    if setting.more:
        meaning += f"; {setting.more}"
    return (f"| {flag} | `{setting.variable}` | {key} | {default} | {'yes' if setting.reload else 'restart'} "
            f"| {_cell(meaning)} |")


def _default(setting: Setting) -> str:
    if setting.shown_default is not None:
        return _cell(setting.shown_default)
    if setting.kind == BOOL:
        return "`true`" if setting.default else "`false`"
    return f"`{setting.shown}`" if setting.shown is not None else ""


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def on_page_markdown(markdown: str, **_: Any) -> str:
    """MkDocs' hook: put the table, and the files, where a page asks for them."""
    return INCLUDE.sub(_included, markdown.replace(MARKER, markdown_table()))


def _included(match: re.Match[str]) -> str:
    path = ROOT / match[1]
    kind = {".conf": "nginx", ".toml": "toml", ".py": "python"}.get(path.suffix, "")
    return f"```{kind}\n{path.read_text().rstrip()}\n```"
