"""Nothing in the storage folder is followed out of it: a symlink put where a recording goes (by whoever else
may write there) is never repaired, truncated, adopted or written through, and only names camstream writes are
adopted. Real files, real symlinks, a real server killed with SIGKILL."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from camera.record import Storage, framefile, reconcile
from camera.record import storage as storage_module
from camera.record.h264 import H264Writer
from tests.config.test_cli import env, running  # noqa: F401 - a fixture
from tests.helpers import MjpegReader, decode, get_json, make_jpeg, wait_until
from tests.record.test_record_files import T0, write_segment
from tests.record.test_record_index_damage import damage, recorded

# What an outside file holds: no frame file, so a repair would cut it to nothing.
PRECIOUS = b"someone else's file, not a recording\n" * 200


def outside(tmp_path: Path, name: str, data: bytes = PRECIOUS) -> Path:
    path = tmp_path / "elsewhere" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def frame_file_bytes(frames: int, half_frame: bool) -> bytes:
    """A frame file's bytes; with half a frame at the end, as a kill leaves one (a repair cuts that off)."""
    data = b"".join(framefile.stamp(make_jpeg(i), T0 + i / 10) for i in range(frames))
    return data + (framefile.stamp(make_jpeg(frames), T0 + 5)[:300] if half_frame else b"")


def test_after_a_kill_a_mjpeg_symlink_to_an_outside_file_is_never_truncated(tmp_path, running):  # noqa: F811
    root = tmp_path / "store"
    command = [sys.executable, "-m", "webapp", "--source", "pattern", "--width", "320", "--port", "0",
               "--record", "continuous", "--storage", str(root), "--min-free", "0", "--retain-days", "0"]
    server = running(command, env())
    server.wait_for_line(r"open http://localhost:(\d+)/")
    assert wait_until(lambda: any(path.stat().st_size > 0 for path in root.glob("recordings/default/*/*.mjpeg")),
                      30), "a segment is being written"
    server.process.kill()  # SIGKILL: the segment's row is left open, for the next start to repair
    server.process.wait(timeout=10)
    [writing] = root.glob("recordings/default/*/*.mjpeg")
    # The open segment's file, replaced by a link to a frame file elsewhere that a repair would cut short...
    cut_short = outside(tmp_path, "frames.mjpeg", frame_file_bytes(4, half_frame=True))
    writing.unlink()
    writing.symlink_to(cut_short)
    # ... and a link named like a segment the index lost, to a file a repair would cut to nothing.
    precious = outside(tmp_path, "precious.bin")
    lost = writing.with_name(f"{int(time.time() * 1000) - 60_000}.mjpeg")
    lost.symlink_to(precious)
    before = {path: path.read_bytes() for path in (cut_short, precious)}

    server = running(command, env())
    seen: list[str] = []
    port = server.wait_for_line(r"open http://localhost:(\d+)/", seen=seen).group(1)
    assert {path: path.read_bytes() for path in before} == before, "no outside file was written or cut"
    assert writing.is_symlink() and lost.is_symlink(), "left alone: not camstream's to delete either"
    assert any("left alone as not camstream's" in line for line in seen), seen
    url = f"http://127.0.0.1:{port}"
    with MjpegReader(f"{url}/video_feed") as reader:
        assert decode(reader.read(1)[0]).shape == (240, 320, 3), "the server goes on"
    assert wait_until(lambda: get_json(f"{url}/api/cameras/default")[1]["recording"]["state"] == "recording", 20)
    assert {path: path.read_bytes() for path in before} == before


def test_an_index_rebuild_never_truncates_an_outside_file_through_a_symlink(tmp_path):
    root = recorded(tmp_path / "store")
    [day] = (root / "recordings" / "default").iterdir()
    precious = outside(tmp_path, "precious.bin")
    cut_short = outside(tmp_path, "frames.mjpeg", frame_file_bytes(3, half_frame=True))
    (day / f"{int(T0 * 1000) + 50_000}.mjpeg").symlink_to(precious)
    (day / f"{int(T0 * 1000) + 60_000}.mjpeg").symlink_to(cut_short)
    (root / "clips" / "default" / f"9-{int(T0 * 1000)}.mjpeg").symlink_to(cut_short)
    before = {path: path.read_bytes() for path in (cut_short, precious)}
    damage(root / "camstream.db", "random bytes")

    storage = Storage(root)
    assert storage.set_aside is not None
    found = reconcile(storage)
    assert {path: path.read_bytes() for path in before} == before
    assert found.foreign == 3 and found.adopted == 6, found  # 3 segments, a clip, 2 snapshots
    segments = storage.index.segments("default")
    assert [segment.kind for segment in segments] == ["continuous"] * 3 + ["clip"], "only the real files"
    assert storage.index.event(9) is None, "no event made from a linked clip"


@pytest.mark.parametrize("rebuild", [False, True])
def test_a_copy_mp4_symlink_is_not_adopted(tmp_path, rebuild):
    mp4 = tmp_path / "elsewhere" / "movie.mp4"
    mp4.parent.mkdir()
    writer = H264Writer(mp4, T0, 10)
    for i in range(10):
        writer.write(make_jpeg(i), T0 + i / 10)
    writer.close()
    before = mp4.read_bytes()
    storage = Storage(tmp_path / "store")
    write_segment(storage, "cam", T0, 3)
    link = storage.root / Path(storage.segment_name("cam", T0 + 20, ".copy.mp4"))
    link.symlink_to(mp4)
    storage.close()
    if rebuild:
        damage(tmp_path / "store" / "camstream.db", "cut short")

    storage = Storage(tmp_path / "store")
    found = reconcile(storage)
    assert [segment.format for segment in storage.index.segments()] == ["jpeg"], "the link is not in the index"
    assert link.is_symlink() and mp4.read_bytes() == before
    assert found.foreign == 1, found


@pytest.mark.parametrize("rebuild", [False, True])
def test_a_folder_named_with_a_newline_is_not_a_camera(tmp_path, rebuild):
    storage = Storage(tmp_path / "store")
    write_segment(storage, "cam", T0, 3)
    odd = storage.root / "recordings" / "cam\nroom" / "2026-01-01" / f"{int(T0 * 1000)}.mjpeg"
    odd.parent.mkdir(parents=True)
    odd.write_bytes(frame_file_bytes(5, half_frame=True))
    storage.close()
    if rebuild:
        damage(tmp_path / "store" / "camstream.db", "random bytes")

    storage = Storage(tmp_path / "store")
    found = reconcile(storage)
    assert {segment.camera for segment in storage.index.segments()} == {"cam"}
    assert found.foreign == 1 and odd.stat().st_size == len(frame_file_bytes(5, half_frame=True)), \
        "not camstream's: neither adopted, nor cut, nor deleted"


def test_paths_through_a_symlink_are_refused(tmp_path):
    storage = Storage(tmp_path / "store")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (storage.root / "recordings" / "cam").symlink_to(elsewhere, target_is_directory=True)
    (storage.root / "snapshots" / "cam").mkdir()
    (storage.root / "snapshots" / "cam" / "1.jpg").symlink_to(outside(tmp_path, "photo.jpg"))
    for bad in ("recordings/cam/2026-01-01/1.mjpeg", "snapshots/cam/1.jpg"):
        with pytest.raises(ValueError, match="symlink"):
            storage.path(bad)
    with pytest.raises(OSError):
        storage_module.open_inside(storage.root / "snapshots" / "cam" / "1.jpg")
    with pytest.raises(OSError):
        storage_module.open_inside(storage.root / "recordings" / "cam" / "x", root=storage.root)
    storage.remove("snapshots/cam/1.jpg")
    assert not (storage.root / "snapshots" / "cam" / "1.jpg").is_symlink(), "the link goes, not its target"
    assert (tmp_path / "elsewhere" / "photo.jpg").read_bytes() == PRECIOUS


def test_the_files_camstream_makes_are_never_written_through_a_symlink(tmp_path):
    root = tmp_path / "store"
    root.mkdir()
    lock_target, reserve_target = outside(tmp_path, "lock"), tmp_path / "elsewhere" / "reserve"
    (root / "camstream.lock").symlink_to(lock_target)
    with pytest.raises(OSError, match="symlink"):
        Storage(root)
    assert lock_target.read_bytes() == PRECIOUS, "not truncated to hold a pid"
    (root / "camstream.lock").unlink()
    (root / "reserve").symlink_to(reserve_target)  # dangling: opening it to write would make the target
    part_target = outside(tmp_path, "part")
    (root / "snapshots" / "cam").mkdir(parents=True)
    (root / "snapshots" / "cam" / "1.jpg.part").symlink_to(part_target)
    storage = Storage(root)
    assert not reserve_target.exists() and (root / "reserve").stat().st_size > 0 and not (root / "reserve").is_symlink()
    storage.write_file("snapshots/cam/1.jpg", make_jpeg(1))
    assert part_target.read_bytes() == PRECIOUS
    storage.close()


def test_a_symlinked_index_is_set_aside_and_a_symlinked_folder_refused(tmp_path):
    root = tmp_path / "store"
    Storage(root).close()
    index_target = outside(tmp_path, "index.db")
    (root / "camstream.db").unlink()
    (root / "camstream.db").symlink_to(index_target)
    storage = Storage(root)
    assert storage.set_aside is not None and storage.set_aside.is_symlink()
    storage.close()
    assert index_target.read_bytes() == PRECIOUS
    (root / "recordings").rename(root / "old")
    (root / "recordings").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    with pytest.raises(OSError, match="recordings/ in it is a symlink"):
        Storage(root)
    assert os.listdir(tmp_path / "elsewhere") == ["index.db"]
