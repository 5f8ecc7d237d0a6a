"""Frame files, the index, reconciling after a crash, and retention, on real files and a real SQLite file."""

import os
import sqlite3
import subprocess
import sys
import time

import cv2
import pytest

from camera import PatternCamera
from camera.record import Limits, Recorder, RecordSettings, Retention, Storage, framefile, reconcile
from camera.record.exports import ExportCache
from camera.record.formats import frame_times, read
from camera.record.h264 import H264Writer
from tests.helpers import decode, make_jpeg, wait_until

T0 = 1_790_000_000.0


def write_segment(storage: Storage, camera: str, start: float, frames: int, fmt: str = "jpeg",
                  interval: float = 0.1, size: tuple[int, int] = (160, 120)) -> int:
    """A closed segment of ``frames`` frames from ``start``, with its row; returns the row's id."""
    name = storage.segment_name(camera, start, ".mjpeg" if fmt == "jpeg" else ".mp4")
    path = storage.path(name)
    writer = framefile.FrameWriter(path) if fmt == "jpeg" else H264Writer(path, start, 10)
    for i in range(frames):
        writer.write(make_jpeg(i, size), start + i * interval)
    writer.close()
    segment_id = storage.index.add_segment(camera, "continuous", fmt, name, start)
    storage.index.update_segment(segment_id, start + (frames - 1) * interval, frames, path.stat().st_size,
                                 open=False)
    return segment_id


def test_a_frame_file_is_an_mjpeg_stream_that_indexes_itself(tmp_path):
    path = tmp_path / "a.mjpeg"
    writer = framefile.FrameWriter(path)
    jpegs = [make_jpeg(i) for i in range(5)]
    for i, data in enumerate(jpegs):
        writer.write(data, T0 + i / 10)
    writer.close()
    refs = framefile.scan(path)
    assert [ref.timestamp for ref in refs] == [T0 + i / 10 for i in range(5)]
    frames = list(framefile.read(path, refs))
    for (timestamp, data), original in zip(frames, jpegs, strict=True):
        # The stamp is a comment segment: the picture decodes to the same pixels.
        assert (decode(data) == decode(original)).all()
    # Other tools read the file as a plain MJPEG stream.
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    count = 0
    while capture.read()[0]:
        count += 1
    assert count == 5


def test_a_frame_cut_short_by_a_crash_is_dropped_and_cut_off(tmp_path):
    path = tmp_path / "a.mjpeg"
    writer = framefile.FrameWriter(path)
    for i in range(3):
        writer.write(make_jpeg(i), T0 + i)
    writer.close()
    whole = path.stat().st_size
    with open(path, "ab") as file:
        file.write(framefile.stamp(make_jpeg(3), T0 + 3)[:500])
    assert len(framefile.scan(path)) == 3
    assert len(framefile.repair(path)) == 3 and path.stat().st_size == whole


def test_damage_in_the_middle_skips_to_the_next_frame(tmp_path):
    path = tmp_path / "a.mjpeg"
    parts = [framefile.stamp(make_jpeg(i), T0 + i) for i in range(3)]
    path.write_bytes(parts[0] + b"garbage" * 100 + parts[1] + parts[2])
    assert [ref.timestamp for ref in framefile.scan(path)] == [T0, T0 + 1, T0 + 2]


def test_stamp_refuses_what_is_not_a_jpeg():
    with pytest.raises(framefile.FrameFileError):
        framefile.stamp(b"not a jpeg", T0)


def test_h264_segments_hold_their_frame_times_and_pictures(tmp_path):
    storage = Storage(tmp_path / "store")
    write_segment(storage, "cam", T0, 25, fmt="h264", size=(320, 240))
    segment = storage.index.segments("cam")[0]
    times = frame_times("h264", storage.path(segment.path), segment.start)
    assert len(times) == 25 and abs(times[0] - T0) < 0.002 and abs(times[-1] - (T0 + 2.4)) < 0.002
    frames = list(read("h264", storage.path(segment.path), segment.start, T0 + 1.0))
    assert len(frames) == 15 and frames[0][1].shape == (240, 320, 3)


def test_the_index_is_sqlite_in_wal_mode(tmp_path):
    storage = Storage(tmp_path / "store")
    write_segment(storage, "cam", T0, 3)
    with sqlite3.connect(storage.index.path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("SELECT COUNT(*) FROM segments").fetchone()[0] == 1


def test_reconcile_drops_rows_without_files_adopts_files_without_rows_and_removes_strays(tmp_path, caplog):
    storage = Storage(tmp_path / "store")
    kept = write_segment(storage, "cam", T0, 3)
    lost = write_segment(storage, "cam", T0 + 10, 3)
    storage.path(storage.index.segment(lost).path).unlink()
    orphan = write_segment(storage, "cam", T0 + 20, 4)
    orphan_path = storage.index.segment(orphan).path
    storage.index.delete_segment(orphan)
    stray = storage.path("clips/cam/7-123.mjpeg")
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"half a clip")
    partial = storage.path("snapshots/cam/3.jpg.part")
    partial.parent.mkdir(parents=True)
    partial.write_bytes(b"x")
    storage.close()

    storage = Storage(tmp_path / "store")
    with caplog.at_level("INFO", "camstream.record"):
        found = reconcile(storage)
    assert (found.dropped, found.adopted, found.removed) == (1, 1, 2)
    segments = storage.index.segments("cam")
    assert next(segment.id for segment in segments) == kept
    adopted = [segment for segment in segments if segment.path == orphan_path]
    assert len(adopted) == 1 and adopted[0].frames == 4 and adopted[0].start == pytest.approx(T0 + 20)
    assert adopted[0].end == pytest.approx(T0 + 20.3)
    assert not stray.exists() and not partial.exists()
    assert "1 row(s) without a file dropped, 1 file(s) adopted, 2 removed" in caplog.text


def test_a_segment_left_open_by_a_killed_writer_is_cut_clean_and_closed(tmp_path):
    store = tmp_path / "store"
    script = f"""
import sys, time
sys.path.insert(0, {str(os.getcwd())!r})
from camera.record import Storage, framefile
from tests.helpers import make_jpeg
storage = Storage(__import__("pathlib").Path({str(store)!r}))
name = storage.segment_name("cam", {T0}, ".mjpeg")
writer = framefile.FrameWriter(storage.path(name))
segment = storage.index.add_segment("cam", "continuous", "jpeg", name, {T0})
for i in range(10):
    writer.write(make_jpeg(i), {T0} + i / 10)
storage.index.update_segment(segment, {T0} + 0.5, 6, 0)
# Half a frame, as a kill in the middle of a write leaves it.
writer._file.write(framefile.stamp(make_jpeg(10), {T0} + 1.0)[:300])
print("ready", flush=True)
time.sleep(60)
"""
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "ready"
    finally:
        process.kill()
        process.wait()
    storage = Storage(store)
    found = reconcile(storage)
    assert found.repaired == 1
    segment = storage.index.segments("cam")[0]
    assert not segment.open and segment.frames == 10 and segment.end == pytest.approx(T0 + 0.9)
    assert storage.path(segment.path).stat().st_size == segment.bytes


def test_retention_deletes_by_age_oldest_first(tmp_path):
    storage = Storage(tmp_path / "store")
    now = time.time()
    day = 86400
    ids = [write_segment(storage, "cam", now - age * day, 2) for age in (10, 9, 3, 1)]
    retention = Retention(storage, Limits(retain_days=5, max_bytes=None, min_free=0))
    assert retention.run_once() == 2
    left = [segment.id for segment in storage.index.segments()]
    assert left == ids[2:]
    assert sorted(p.name for p in (storage.root / "recordings" / "cam").rglob("*.mjpeg")) == \
        sorted(storage.path(storage.index.segment(i).path).name for i in ids[2:])


def test_retention_keeps_total_size_under_the_cap_with_many_small_segments(tmp_path):
    storage = Storage(tmp_path / "store")
    ids = [write_segment(storage, "cam", T0 + i * 2, 2) for i in range(60)]
    each = storage.index.segment(ids[0]).bytes
    cap = each * 20 + each // 2
    retention = Retention(storage, Limits(retain_days=None, max_bytes=cap, min_free=0))
    assert retention.run_once(now=T0) == 40
    left = storage.index.segments()
    assert [segment.id for segment in left] == ids[40:]
    assert storage.index.total_bytes() <= cap
    on_disk = sum(path.stat().st_size for path in (storage.root / "recordings").rglob("*.mjpeg"))
    assert on_disk == storage.index.total_bytes()


def test_kept_downloads_count_against_the_size_cap(tmp_path):
    storage = Storage(tmp_path / "store")
    ids = [write_segment(storage, "cam", T0 + i * 2, 2) for i in range(10)]
    each = storage.index.segment(ids[0]).bytes
    (storage.exports.folder / "kept.mp4").write_bytes(b"\0" * each * 3)
    retention = Retention(storage, Limits(retain_days=None, max_bytes=each * 10, min_free=0))
    assert retention.run_once(now=T0) == 3, "three segments' worth of downloads: the three oldest segments go"
    assert [segment.id for segment in storage.index.segments()] == ids[3:]


def test_retention_frees_space_down_to_the_minimum_and_never_touches_an_open_segment(tmp_path):
    storage = Storage(tmp_path / "store")
    for i in range(5):
        write_segment(storage, "cam", T0 + i, 2)
    open_id = storage.index.add_segment("cam", "continuous", "jpeg", "recordings/cam/x/1.mjpeg", T0 + 10)
    # A minimum above what the disk has: everything that may go, goes.
    retention = Retention(storage, Limits(retain_days=None, max_bytes=None, min_free=1 << 62))
    assert retention.run_once(now=T0) == 5
    assert [segment.id for segment in storage.index.segments()] == [open_id]


def test_deleting_an_event_takes_its_clip_and_snapshots(tmp_path):
    from camera.record import delete_event
    storage = Storage(tmp_path / "store")
    event_id = storage.index.add_event("cam", T0, "motion", 1, 1)
    clip = storage.clip_name("cam", event_id, T0 - 1, ".mjpeg")
    writer = framefile.FrameWriter(storage.path(clip))
    writer.write(make_jpeg(0), T0)
    writer.close()
    storage.index.add_segment("cam", "clip", "jpeg", clip, T0, event_id)
    snapshot = storage.snapshot_name("cam", event_id, boxes=False)
    storage.write_file(snapshot, make_jpeg(1))
    storage.index.update_event(event_id, end=T0 + 1, snapshot=snapshot)
    assert delete_event(storage, event_id)
    assert storage.index.event(event_id) is None and storage.index.segments() == []
    assert not storage.path(clip).exists() and not storage.path(snapshot).exists()
    assert not delete_event(storage, event_id)


def test_paths_from_the_index_stay_inside_the_storage_folder(tmp_path):
    storage = Storage(tmp_path / "store")
    for bad in ("../outside.mjpeg", "/etc/passwd", "recordings/../../x", ""):
        with pytest.raises(ValueError):
            storage.path(bad)


class FullDisk:
    """The index of a storage on a full disk: deleting rows fails, as SQLite's log cannot grow, until room is made
    (a file deleted, or the reserve given back)."""

    def __init__(self, storage: Storage, monkeypatch) -> None:
        self.full = True
        self.deletes_refused = 0
        for name in ("delete_segment", "delete_event"):
            monkeypatch.setattr(storage.index, name, self._refusing(getattr(storage.index, name)))
        for name in ("remove", "release_reserve"):
            monkeypatch.setattr(storage, name, self._making_room(getattr(storage, name)))

    def _refusing(self, delete):
        def refusing(*args):
            if self.full:
                self.deletes_refused += 1
                raise sqlite3.OperationalError("database or disk is full")
            return delete(*args)
        return refusing

    def _making_room(self, free):
        def making_room(*args):
            made = free(*args)
            self.full = False
            return made
        return making_room


@pytest.mark.parametrize("reserve", [True, False])
def test_retention_makes_room_on_a_disk_too_full_for_the_index_to_delete(tmp_path, monkeypatch, reserve):
    storage = Storage(tmp_path / "store")
    if not reserve:
        storage.release_reserve()
    old = [write_segment(storage, "cam", T0 - 10 * 86400 + i * 10, 5) for i in range(3)]
    kept = write_segment(storage, "cam", T0, 5)
    disk = FullDisk(storage, monkeypatch)
    retention = Retention(storage, Limits(retain_days=5, max_bytes=None, min_free=0))
    assert retention.run_once(now=T0) == 3
    assert disk.deletes_refused == 1, "refused once; then the room was made"
    assert [segment.id for segment in storage.index.segments()] == [kept]
    remaining = sorted(path.name for path in (tmp_path / "store" / "recordings").rglob("*.mjpeg"))
    assert remaining == [f"{int(T0 * 1000)}.mjpeg"], "the old segments' files are gone with their rows"
    assert all(storage.index.segment(segment_id) is None for segment_id in old)
    assert storage.keep_reserve() and (tmp_path / "store" / "reserve").stat().st_size == 1 << 20, \
        "the reserve is kept again once there is room"


def test_a_segment_closed_while_the_index_is_full_gets_its_row_once_it_has_room(tmp_path):
    """The index refuses the row of a segment that has just ended (SQLite's 'database or disk is full'): the
    recorder pauses, and on resuming the row says what the file holds, rather than the nothing it said at first."""
    storage = Storage(tmp_path / "store")
    retention = Retention(storage, Limits(min_free=0))
    camera = PatternCamera("cam", fps=20, width=160)
    recorder = Recorder(camera, storage, retention, RecordSettings(mode="continuous", segment_seconds=1.0))
    update = storage.index.update_segment
    refused = []

    def full_once(segment_id, *args, open=True, **kwargs):
        if not open and not refused:
            refused.append(segment_id)
            raise sqlite3.OperationalError("database or disk is full")
        return update(segment_id, *args, open=open, **kwargs)

    storage.index.update_segment = full_once
    recorder.start()
    try:
        assert wait_until(lambda: refused and recorder.status()["state"] == "paused", 20), recorder.status()
        assert wait_until(lambda: recorder.status()["state"] == "recording", 20), recorder.status()
    finally:
        recorder.stop()
        camera.stop()
    rows = {segment.id: segment for segment in storage.index.segments()}
    row = rows[refused[0]]
    assert row.frames > 0 and not row.open, "the refused row was brought up to date on resuming"
    assert row.frames == len(framefile.scan(storage.path(row.path)))
    storage.close()


def test_kept_downloads_go_after_their_time_and_beyond_their_room_oldest_first(tmp_path):
    cache = ExportCache(tmp_path / "exports", keep_seconds=60, max_bytes=250)
    made = []

    def make(size: int):
        def write(path):
            made.append(path.name)
            path.write_bytes(b"\0" * size)
        return write

    first = cache.get("a.mp4", make(100))
    assert cache.get("a.mp4", make(100)) == first and made == ["a.mp4.part"], "made beside it, kept: not again"
    cache.get("b.mp4", make(100))
    os.utime(first, (time.time() - 30, time.time() - 30))  # a used longest ago
    cache.get("c.mp4", make(100))  # 300 bytes: over the room, so the least recently used goes
    assert sorted(path.name for path in cache.folder.iterdir()) == ["b.mp4", "c.mp4"]
    old = cache.folder / "b.mp4"
    os.utime(old, (time.time() - 120, time.time() - 120))
    cache.prune()
    assert sorted(path.name for path in cache.folder.iterdir()) == ["c.mp4"], "past its time"
    with pytest.raises(ValueError):
        cache.get("d.mp4", lambda path: (_ for _ in ()).throw(ValueError("nothing recorded")))
    assert not (cache.folder / "d.mp4").exists() and cache._making == {}, "nothing kept of a failed making"
