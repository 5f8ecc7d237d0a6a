"""The docs' generated blocks are checked in, so they read on a Git host, and they are what the code says."""

import re
from pathlib import Path

from webapp.config import docs
from webapp.config.table import SETTINGS

ROOT = Path(__file__).resolve().parents[2]


def test_every_page_holds_its_blocks_as_the_code_makes_them():
    # Out of date (a setting added or changed, the shipped nginx file edited): python -m webapp.config.docs
    for page in docs.PAGES:
        text = (ROOT / page).read_text()
        assert docs.filled(text) == text, f"{page} is out of date: run python -m webapp.config.docs"
    assert docs.main(["--check"]) == 0


def test_the_settings_page_holds_the_table_itself():
    text = (ROOT / "docs" / "operations.md").read_text()
    block = text.split(docs.MARKER, 1)[1].split(docs.END, 1)[0]
    rows = [line for line in block.splitlines() if line.startswith("| ")]
    assert len(rows) == len(SETTINGS) + 2  # and the header and its rule
    for setting in SETTINGS:
        assert f"`{setting.variable}`" in block, setting.key


def test_the_scaling_page_holds_the_shipped_nginx_file_itself():
    shipped = (ROOT / "examples" / "nginx" / "camstream.conf").read_text()
    text = (ROOT / "docs" / "scaling.md").read_text()
    block = re.search(r"<!-- include: examples/nginx/camstream.conf -->\n\n```nginx\n(.*?)\n```\n\n<!-- /include -->",
                      text, re.DOTALL)
    assert block is not None, "the page holds the file between its markers"
    assert block[1] == shipped.rstrip()


def test_a_stale_block_is_found_and_written_again(tmp_path):
    page = (ROOT / "docs" / "operations.md").read_text()
    stale = page.replace("| `--port N`", "| `--port-of-old N`")
    assert stale != page and docs.filled(stale) == page
    bare = re.sub(re.escape(docs.MARKER) + ".*?" + re.escape(docs.END), docs.MARKER, page, flags=re.DOTALL)
    assert docs.filled(bare) == page  # a page with the marker alone gets its table


def test_the_table_has_short_columns_beside_its_meaning():
    # A code span never wraps: the setting and default columns stay narrow enough for the table to fit a
    # 1280-px page (checked in Chromium on the built site: 831 px wide in an 855-px column).
    table = docs.markdown_table()
    assert table.splitlines()[0] == "| setting | default | reload | meaning |"
    for line in table.splitlines()[2:]:
        cells = re.split(r"(?<!\\)\|", line)[1:-1]
        assert len(cells) == 4, line
        assert max(len(span) for span in re.findall(r"`[^`]*`", cells[0])) <= 36, line
        assert max((len(span) for span in re.findall(r"`[^`]*`", cells[1])), default=0) <= 24, line
        assert len(cells[1]) <= 70, line


def _features(text: str) -> list[str]:
    """A page's feature table: its rows, links made relative to docs/."""
    section = text.split("\n## What it does\n", 1)[1].split("\n## ", 1)[0]
    return [line.replace("](docs/", "](") for line in section.splitlines() if line.startswith("| **")]


def test_the_docs_home_page_tells_what_the_readme_tells():
    readme = (ROOT / "README.md").read_text()
    index = (ROOT / "docs" / "index.md").read_text()
    assert len(_features(readme)) >= 10
    assert _features(index) == _features(readme)
    # The opening paragraph too (the README's picture is in docs/, the page's beside it).
    assert index.split("\n\n")[1] == readme.split("\n\n")[1]
