"""A damaged recording index (not SQLite, cut short, a folder in its place) neither stops the server nor loses
a recording: it is set aside, named in the log, and a new one is built from the files."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from camera.record import Storage, framefile
from tests.config.test_cli import env, run_cli, running  # noqa: F401 - a fixture
from tests.helpers import MjpegReader, decode, get, get_json, make_jpeg, wait_until
from tests.record.test_record_files import T0, write_segment


def recorded(root: Path) -> Path:
    """A storage folder with three continuous segments and an event with its clip and both snapshots."""
    storage = Storage(root)
    for i in range(3):
        write_segment(storage, "default", T0 + i * 10, 5)
    event_id = storage.index.add_event("default", T0 + 40, "motion", 1.0, 1.0)
    clip = storage.clip_name("default", event_id, T0 + 39, ".mjpeg")
    writer = framefile.FrameWriter(storage.path(clip))
    for i in range(8):
        writer.write(make_jpeg(i), T0 + 39 + i * 0.25)
    writer.close()
    segment_id = storage.index.add_segment("default", "clip", "jpeg", clip, T0 + 39, event_id=event_id)
    storage.index.update_segment(segment_id, T0 + 39 + 7 * 0.25, 8, storage.path(clip).stat().st_size, open=False)
    for boxes in (False, True):
        storage.write_file(storage.snapshot_name("default", event_id, boxes), make_jpeg(3))
    storage.index.update_event(event_id, end=T0 + 41, labels={"motion": 0.9},
                               snapshot=storage.snapshot_name("default", event_id, False),
                               snapshot_boxes=storage.snapshot_name("default", event_id, True))
    storage.close()
    return root


def files_under(root: Path) -> dict[str, int]:
    return {str(path.relative_to(root)): path.stat().st_size for folder in ("recordings", "clips", "snapshots")
            for path in (root / folder).rglob("*") if path.is_file()}


def damage(index: Path, how: str) -> None:
    for companion in (index.with_name(index.name + "-wal"), index.with_name(index.name + "-shm")):
        companion.unlink(missing_ok=True)
    if how == "random bytes":
        index.write_bytes(os.urandom(20_000))
    elif how == "cut short":
        with open(index, "r+b") as file:
            file.truncate(index.stat().st_size // 3)
    else:
        index.unlink()
        index.mkdir()


@pytest.mark.parametrize("how", ["random bytes", "cut short", "a folder"])
def test_a_damaged_index_is_set_aside_and_rebuilt_from_the_recordings(tmp_path, running, how):  # noqa: F811
    root = recorded(tmp_path / "store")
    before = files_under(root)
    damage(root / "camstream.db", how)
    server = running([sys.executable, "-m", "webapp", "--source", "pattern", "--width", "320", "--port", "0",
                      "--record", "continuous", "--storage", str(root), "--min-free", "0", "--retain-days", "0"],
                     env())
    seen: list[str] = []
    port = server.wait_for_line(r"open http://localhost:(\d+)/", seen=seen).group(1)
    url = f"http://127.0.0.1:{port}"
    assert any("is damaged" in line and "set aside as camstream.db.damaged-" in line for line in seen), seen
    with MjpegReader(f"{url}/video_feed") as reader:
        assert decode(reader.read(1)[0]).shape == (240, 320, 3), "streaming comes up regardless"

    [aside] = [path for path in root.iterdir() if path.name.startswith("camstream.db.damaged-")]
    assert aside.is_dir() == (how == "a folder"), "kept as it was, for whoever wants to look"
    after = files_under(root)
    assert all(after.get(name) == size for name, size in before.items()), "no recording was deleted"
    segments = get_json(f"{url}/api/recordings?end={T0 + 100}")[1]["recordings"]
    assert [segment["kind"] for segment in segments] == ["continuous"] * 3 + ["clip"]
    assert [segment["start"] for segment in segments] == pytest.approx([T0, T0 + 10, T0 + 20, T0 + 39], abs=0.01)
    [event] = get_json(f"{url}/api/events")[1]["events"]
    assert event["start"] == pytest.approx(T0 + 39, abs=0.01) and event["end"] == pytest.approx(T0 + 40.75, abs=0.01)
    for part in ("snapshot.jpg", "snapshot.jpg?boxes=1"):
        status, _, body = get(f"{url}/api/events/{event['id']}/{part}")
        assert status == 200 and decode(body).shape == (120, 160, 3)
    status, _, clip = get(f"{url}/api/events/{event['id']}/clip.mp4")
    assert status == 200 and len(clip) > 1000, "the event's clip plays"
    assert wait_until(lambda: get_json(f"{url}/api/cameras/default")[1]["recording"]["state"] == "recording", 20)


def test_a_storage_folder_that_cannot_be_used_is_one_line(tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    result = run_cli("--source", "pattern", "--port", "0", "--record", "continuous", "--storage", str(blocked))
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"camstream: error: STORAGE '{blocked}' cannot be used: ")
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
