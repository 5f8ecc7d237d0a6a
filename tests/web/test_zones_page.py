"""The zone editor: an admin draws a zone on a tile's picture in Chromium, saves it, and the config file, the
zones API and the camera's tracked detections show it at once, the camera still running; the API answers 403
JSON to anyone but an admin, 400 JSON to a bad polygon, 409 with the TOML to paste without a config file; the
file keeps every other line (webapp/config/zonefile.py)."""

from __future__ import annotations

import json
import tomllib

import pytest

from camera import PatternCamera
from tests.auth_helpers import PASSWORDS, USERS, Client, Recorder, basic
from tests.conftest import Servers
from tests.helpers import get_json, wait_until
from tests.sources import SceneCamera
from webapp import create_app
from webapp.config.zonefile import Drawn, Unwritable, edited
from webapp.runtime.registry import runtime_of

FILE = """\
# The test's cameras.
fps = 10

[cameras.scene]
source = "pattern"   # the test gives the camera itself
detect = "tests.detectors:find_squares"
object_mask = [[[0, 0], [10, 0], [10, 10]]]  # replaced by the editor

# its porch, drawn by hand
[cameras.scene.zones.porch]
coordinates = [[0, 0], [50, 0], [50, 50], [0, 50]]
objects = ["person"]

[cameras.scene.objects.square]
min_score = 0.1

# the other camera, left alone
[cameras.yard]
source = "pattern"
detect = "motion"
"""


@pytest.fixture
def configured(tmp_path):
    """A camera with a square-finding detector, configured by a file, on an open server (everyone is admin)."""
    path = tmp_path / "camstream.toml"
    path.write_text(FILE)
    app = create_app({"CONFIG": str(path), "CAMERAS": {"scene": SceneCamera(), "yard": PatternCamera("yard", width=320)},
                      "DETECT_FPS": 10})
    with Servers() as servers:
        yield servers.start(app), path, app


def put(base: str, name: str, body: object, **headers: str) -> tuple[int, dict]:
    recorder = Recorder()
    answer = Client(base, recorder).request("PUT", f"/api/cameras/{name}/zones",
                                            json.dumps(body).encode() if not isinstance(body, bytes) else body,
                                            Content_Type="application/json", **headers)
    return answer.status, answer.json()


def test_an_admin_draws_a_zone_saves_it_and_the_file_and_detections_show_it(browser, configured):
    base, path, app = configured
    detection = runtime_of(app).detections["scene"]
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(base + "/", wait_until="domcontentloaded")
    page.click('[data-camera="scene"] [data-action="zones"]')
    status = ".zone-editor [data-zone-field=status]"
    page.wait_for_function(f"() => /saves into/.test(document.querySelector('{status}').textContent)",
                           timeout=15000, polling=100)
    page.wait_for_function("() => document.querySelector('.zone-editor img').naturalWidth === 320",
                           timeout=15000, polling=100)
    # The porch the file had is shown; the square moves along y 100-140: a zone over the lower half holds it.
    shapes = page.eval_on_selector_all(".zone-editor [data-zone-field=shapes] li", "items => items.map(i => i.textContent)")
    assert [shape.rstrip("×").strip() for shape in shapes] == ["zone porch", "object mask"]
    box = page.eval_on_selector(".zone-editor img", "img => { const r = img.getBoundingClientRect();"
                                                    " return [r.left, r.top, r.width, r.height]; }")
    for fx, fy in ((0.0, 0.5), (1.0, 0.5), (1.0, 1.0), (0.0, 1.0)):
        page.mouse.click(box[0] + fx * (box[2] - 1), box[1] + fy * (box[3] - 1))
    assert page.text_content(".zone-editor [data-zone-field=points]") == "4 corners"
    page.fill(".zone-editor [data-zone-field=name]", "drive")
    page.click(".zone-editor [data-zone-action=add]")
    # The object mask goes: a square's box under it would be dropped.
    page.click(".zone-editor li[data-kind=object_mask] [data-zone-action=remove]")
    page.click(".zone-editor [data-zone-action=save]")
    page.wait_for_function(f"() => /saved into/.test(document.querySelector('{status}').textContent)",
                           timeout=15000, polling=100)
    page.close()

    text = path.read_text()
    saved = tomllib.loads(text)["cameras"]
    drive = saved["scene"]["zones"]["drive"]["coordinates"]
    assert [[round(x / 32), round(y / 24)] for x, y in drive] == [[0, 5], [10, 5], [10, 10], [0, 10]]
    assert saved["scene"]["zones"]["porch"] == {"coordinates": [[0, 0], [50, 0], [50, 50], [0, 50]],
                                                "objects": ["person"]}
    assert "object_mask" not in saved["scene"] and saved["scene"]["objects"] == {"square": {"min_score": 0.1}}
    assert saved["yard"] == {"source": "pattern", "detect": "motion"}
    for kept in ("# The test's cameras.", "# the test gives the camera itself", "# the other camera, left alone"):
        assert kept in text, f"the file keeps {kept!r}"
    assert "# its porch, drawn by hand" in text, "the zone kept keeps its comment"

    api = get_json(f"{base}/api/cameras/scene/zones")[1]
    assert set(api["zones"]) == {"porch", "drive"} and api["object_mask"] == [] and api["writable"]
    assert "[cameras.scene.zones.drive]" in api["toml"]
    # Applied at once, without restarting the camera: its tracked boxes are in the zone.
    assert wait_until(lambda: any(d.get("zones") == ["drive"] for d in
                                  get_json(f"{base}/api/cameras/scene/detections")[1].get("detections", [])), 20), \
        "the detections carry the new zone"
    assert runtime_of(app).detections["scene"] is detection, "the camera and its detector were not started again"
    assert [zone.name for zone in detection.tracking.rules.zones] == ["porch", "drive"]


def test_bad_polygons_are_400_json_and_change_nothing(configured):
    base, path, _ = configured
    before = path.read_text()
    for body, message in [
        ({"zones": {"drive": {"coordinates": [[0, 0], [1, 1]]}}}, "3 to 100 [x, y] corners"),
        ({"zones": {"drive": {"coordinates": [[0, 0], [-5, 0], [5, 5]]}}}, "numbers from 0"),
        ({"zones": {"bad name!": {"coordinates": [[0, 0], [5, 0], [5, 5]]}}}, "zone name"),
        ({"object_mask": [[[0, 0], ["a", 0], [5, 5]]]}, "object_mask[0]"),
        ({"zones": {}, "mask": []}, "unknown key 'mask'"),
        ([1, 2], "JSON object"),
        (b"{not json", "as JSON"),
    ]:
        status, answer = put(base, "scene", body)
        assert status == 400 and message in answer["error"], (body, answer)
    assert put(base, "nowhere", {"zones": {}})[0] == 404
    assert path.read_text() == before


def test_a_required_zone_cannot_be_drawn_away(tmp_path, serve_app):
    path = tmp_path / "camstream.toml"
    path.write_text('[cameras.door]\nsource = "pattern"\ndetect = "motion"\nrequired_zones = ["drive"]\n\n'
                    '[cameras.door.zones.drive]\ncoordinates = [[0, 0], [5, 0], [5, 5]]\n')
    base = serve_app({"CONFIG": str(path)})
    status, answer = put(base, "door", {"zones": {}})
    assert status == 400 and "required_zones names zone 'drive'" in answer["error"]


def test_only_an_admin_reads_or_saves_zones(tmp_path, serve_app):
    path = tmp_path / "camstream.toml"
    path.write_text('[cameras.door]\nsource = "pattern"\ndetect = "motion"\n')
    base = serve_app({"CONFIG": str(path), "USERS": USERS, "STORAGE": str(tmp_path / "store")})
    recorder = Recorder()
    viewer = Client(base, recorder, basic("dora", PASSWORDS["dora"]))
    answer = viewer.get("/api/cameras/door/zones")
    assert answer.status == 403 and answer.headers["Content-Type"] == "application/json"
    assert "only an admin" in answer.json()["error"]
    body = json.dumps({"zones": {"drive": {"coordinates": [[0, 0], [5, 0], [5, 5]]}}}).encode()
    answer = viewer.request("PUT", "/api/cameras/door/zones", body, Content_Type="application/json")
    assert answer.status == 403 and "only an admin" in answer.json()["error"]
    assert Client(base, recorder).get("/api/cameras/door/zones").status == 401
    admin = Client(base, recorder, basic("ada", PASSWORDS["ada"]))
    # From another site's page: refused before the route, as every admin write is.
    answer = admin.request("PUT", "/api/cameras/door/zones", body, Content_Type="application/json",
                           Origin="http://elsewhere.example")
    assert answer.status == 403 and "another site" in answer.json()["error"]
    assert "zones" not in tomllib.loads(path.read_text())["cameras"]["door"]
    answer = admin.request("PUT", "/api/cameras/door/zones", body, Content_Type="application/json")
    assert answer.status == 200 and answer.json()["zones"]["drive"]["coordinates"] == [[0, 0], [5, 0], [5, 5]]
    assert tomllib.loads(path.read_text())["cameras"]["door"]["zones"] == {
        "drive": {"coordinates": [[0, 0], [5, 0], [5, 5]]}}


def test_without_a_config_file_the_answer_is_the_toml_to_paste(serve_app):
    base = serve_app({"CAMERAS": {"door": PatternCamera("door", width=320)}, "DETECT": {"door": "motion"}})
    assert get_json(f"{base}/api/cameras/door/zones")[1]["writable"] is False
    status, answer = put(base, "door", {"zones": {"drive": {"coordinates": [[0, 0.5], [1, 0.5], [1, 1]],
                                                            "objects": ["car"]}},
                                        "motion_mask": [[[0, 0], [200, 0], [200, 30]]]})
    assert status == 409 and "without a config file" in answer["error"]
    pasted = tomllib.loads(answer["toml"])["cameras"]["door"]
    assert pasted == {"motion_mask": [[[0, 0], [200, 0], [200, 30]]],
                      "zones": {"drive": {"coordinates": [[0, 0.5], [1, 0.5], [1, 1]], "objects": ["car"]}}}


# -- the file's edit, line by line --------------------------------------------------------------------------


def test_the_edit_keeps_other_lines_and_refuses_a_layout_it_cannot_change():
    drawn = Drawn({"drive": {"coordinates": [[0, 0], [5.5, 0], [5, 5]]}}, motion_mask=[[[0, 0], [9, 0], [9, 9]]])
    new = edited(FILE, "yard", drawn)
    assert new.startswith(FILE.split("# the other camera")[0]), "everything before the camera's table is as it was"
    yard = tomllib.loads(new)["cameras"]["yard"]
    assert yard["motion_mask"] == [[[0, 0], [9, 0], [9, 9]]] and yard["zones"]["drive"]["coordinates"][1] == [5.5, 0]
    # Nothing drawn: the camera's zones and masks go, the rest stays.
    bare = tomllib.loads(edited(FILE, "scene", Drawn({})))["cameras"]["scene"]
    assert bare == {"source": "pattern", "detect": "tests.detectors:find_squares",
                    "objects": {"square": {"min_score": 0.1}}}
    crlf = edited(FILE.replace("\n", "\r\n"), "yard", drawn)
    assert crlf.count("\r\n") == crlf.count("\n") and tomllib.loads(crlf)["cameras"]["yard"]["zones"]
    # Labels are strings of any kind: written so that TOML reads them back as they were.
    odd = ['say "cheese"', "back\\slash", "caf\u00e9 \U0001f431", "tab\there"]
    labelled = edited(FILE, "yard", Drawn({"drive": {"coordinates": [[0, 0], [5, 0], [5, 5]], "objects": odd}}))
    assert tomllib.loads(labelled)["cameras"]["yard"]["zones"]["drive"]["objects"] == odd
    # A file with no camera tables: its top level is the one camera's.
    top = edited('source = "pattern"\nobject_mask = [[[0, 0], [1, 0], [1, 1]]]\n\n[users.ada]\npassword_hash = "x"\n',
                 "default", drawn, top_level=True)
    assert tomllib.loads(top)["zones"] == {"drive": {"coordinates": [[0, 0], [5.5, 0], [5, 5]]}}
    assert "object_mask" not in tomllib.loads(top) and tomllib.loads(top)["users"] == {"ada": {"password_hash": "x"}}
    # An inline table for the camera, a zone table of its own: changed in place; the camera as an inline table: not.
    inline = edited('[cameras.door]\nsource = "pattern"\nzones = { old = { coordinates = [[0, 0], [1, 0], [1, 1]] } }\n',
                    "door", drawn)
    assert tomllib.loads(inline)["cameras"]["door"]["zones"] == {"drive": {"coordinates": [[0, 0], [5.5, 0], [5, 5]]}}
    for text in ('[cameras]\ndoor = { source = "pattern" }\n', '[cameras.yard]\nsource = "pattern"\n'):
        with pytest.raises(Unwritable):
            edited(text, "door", drawn)


def test_without_a_config_file_the_page_shows_the_toml_to_paste(browser, serve_app):
    base = serve_app({"CAMERAS": {"door": PatternCamera("door", width=320)}, "DETECT": {"door": "motion"}})
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(base + "/", wait_until="domcontentloaded")
    page.click('[data-camera="door"] [data-action="zones"]')
    status = ".zone-editor [data-zone-field=status]"
    page.wait_for_function(f"() => /no config file/.test(document.querySelector('{status}').textContent)",
                           timeout=15000, polling=100)
    page.wait_for_function("() => document.querySelector('.zone-editor img').naturalWidth > 0", timeout=15000,
                           polling=100)
    box = page.eval_on_selector(".zone-editor img", "img => { const r = img.getBoundingClientRect();"
                                                    " return [r.left, r.top, r.width, r.height]; }")
    page.select_option(".zone-editor [data-zone-field=kind]", "motion_mask")
    assert page.is_hidden(".zone-editor [data-zone-field=name]"), "a mask takes no name"
    for fx, fy in ((0.0, 0.0), (0.5, 0.0), (0.5, 0.1)):
        page.mouse.click(box[0] + fx * box[2], box[1] + fy * (box[3] - 1))
    page.click(".zone-editor [data-zone-action=add]")
    page.click(".zone-editor [data-zone-action=save]")
    page.wait_for_function("() => !document.querySelector('.zone-editor [data-zone-field=toml]').hidden",
                           timeout=15000, polling=100)
    pasted = tomllib.loads(page.input_value(".zone-editor [data-zone-field=toml]"))
    [mask] = pasted["cameras"]["door"]["motion_mask"]
    assert len(mask) == 3 and mask[0] == [0, 0] and 150 <= mask[1][0] <= 170
    assert "without a config file" in page.text_content(status)
    page.close()


def test_a_reload_gives_a_running_camera_its_new_zones_and_restarts_it_for_anything_else(configured):
    from webapp.runtime.lineup import reload

    _, path, app = configured
    detection = runtime_of(app).detections["scene"]
    path.write_text(FILE.replace('[cameras.scene.zones.porch]', '[cameras.scene.zones.drive]'))
    change = reload(app)
    assert "scene" in change.unchanged and runtime_of(app).detections["scene"] is detection
    assert [zone.name for zone in detection.tracking.rules.zones] == ["drive"]
    path.write_text(FILE.replace('[cameras.scene.zones.porch]', '[cameras.scene.zones.drive]')
                    .replace('detect = "tests.detectors:find_squares"', 'detect = "motion"'))
    change = reload(app)
    assert change.changed == ["scene"] and runtime_of(app).detections["scene"] is not detection
