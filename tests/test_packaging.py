"""What ``pip install .`` puts in place: every package of the source tree, the page's files, the example config."""

import configparser
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
