"""What ``pip install .`` puts in place: every package of the source tree, the page's files, the example config."""

import configparser
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_package_in_the_tree_is_installed():
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    listed = set(setup["options"]["packages"].split())
    found = {".".join(path.parent.relative_to(ROOT).parts) for top in ("camera", "webapp")
             for path in (ROOT / top).rglob("__init__.py")}
    assert found <= listed, f"missing from setup.cfg's packages: {sorted(found - listed)}"
    data = setup["options.package_data"]
    assert data["webapp.templates"].strip() == "*.html" and "*.js" in data["webapp.static"]


def _commands(text: str) -> list[str]:
    """The shell lines of a page's ``sh`` blocks and its inline code (a TOML file's comments), as a reader would
    copy them."""
    if text.lstrip().startswith("#") and "```" not in text:
        return [line.lstrip("#").strip() for line in text.splitlines()]
    blocks = re.findall(r"```sh\n(.*?)```", text, re.DOTALL)
    lines = [line.strip().removeprefix("# or, on the box: ") for block in blocks for line in block.splitlines()]
    return lines + re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", text, flags=re.DOTALL))


def test_every_camstream_command_in_the_docs_works_after_the_documented_install():
    # The README's install makes .venv/bin/camstream; a bare `camstream` is "command not found" until activated.
    pages = [ROOT / "README.md", ROOT / "examples" / "camstream.toml", *sorted((ROOT / "docs").glob("*.md"))]
    bare = [f"{page.name}: {command}" for page in pages for command in _commands(page.read_text())
            if re.match(r"#?\s*camstream (--|hash-password|token|worker)", command)]
    assert not bare, "run as .venv/bin/camstream (or python -m webapp):\n" + "\n".join(bare)
