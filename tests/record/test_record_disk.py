"""A full disk and a read-only disk pause recording, with the reason in the status, while viewers and the
detector go on; recording resumes by itself. The disk is a small tmpfs mounted in a mount namespace of
the server's own (util-linux's unshare), so nothing else on the machine fills up."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.config.test_cli import env, running  # noqa: F401 - a fixture
from tests.helpers import MjpegReader, decode, get_json, wait_until

pytestmark = pytest.mark.slow


def can_mount_tmpfs(where: Path) -> str | None:
    """None if this machine lets us mount a tmpfs in a namespace of our own, else why not."""
    if not shutil.which("unshare") or not shutil.which("nsenter"):
        return "util-linux's unshare and nsenter are not installed"
    probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "mount", "-t", "tmpfs",
                            "-o", "size=1m", "tmpfs", str(where)], capture_output=True, text=True, check=False)
    return None if probe.returncode == 0 else f"cannot mount a tmpfs in a mount namespace: {probe.stderr.strip()}"


def on_a_small_disk(tmp_path: Path, running, size: str, options: str):  # noqa: F811 - the fixture, passed on
    """A server recording to a tmpfs of ``size`` of its own: it, its URL, and the tmpfs as seen from here."""
    disk = tmp_path / "disk"
    disk.mkdir()
    reason = can_mount_tmpfs(disk)
    if reason:
        pytest.skip(reason)
    command = (f"mount -t tmpfs -o size={size} tmpfs {disk} && exec {sys.executable} -m webapp --source pattern "
               f"--port 0 --record continuous --storage {disk}/store --segment-seconds 1 {options}")
    server = running(["unshare", "--mount", "--propagation", "private", "sh", "-c", command], env())
    port = server.wait_for_line(r"open http://localhost:(\d+)/").group(1)
    # The server's view of its tmpfs, from outside its namespace.
    inside = Path(f"/proc/{server.process.pid}/root") / str(disk).lstrip("/")
    return server, f"http://127.0.0.1:{port}", disk, inside


def test_a_full_disk_then_a_read_only_folder_pause_recording_recording_and_it_resumes(tmp_path, running):  # noqa: F811
    server, url, disk, inside = on_a_small_disk(tmp_path, running, "6m",
                                                "--fps 10 --width 320 --min-free 0 --detect motion")
    status = lambda: get_json(f"{url}/api/cameras/default")[1]
    assert wait_until(lambda: status()["recording"]["frames_written"] >= 10, 30)

    filler = inside / "filler"
    with open(filler, "wb", buffering=0) as file:  # unbuffered: nothing left to flush on a full disk
        try:
            while True:
                file.write(b"\0" * 65536)
        except OSError:
            pass
    assert wait_until(lambda: status()["recording"]["state"] == "paused", 20), status()["recording"]
    paused = status()
    # Whichever write met the full disk first says so: a segment's (ENOSPC) or the index's (SQLite's SQLITE_FULL).
    reason = paused["recording"]["reason"]
    assert "No space left on device" in reason or "database or disk is full" in reason, reason
    # Streaming and detection do not notice.
    with MjpegReader(f"{url}/video_feed") as reader:
        assert all(decode(frame).shape == (240, 320, 3) for frame in reader.read(10))
    results = paused["detection"]["results"]
    assert wait_until(lambda: status()["detection"]["results"] > results + 5, 20)
    assert status()["recording"]["state"] == "paused"

    filler.unlink()
    assert wait_until(lambda: status()["recording"]["state"] == "recording", 20), status()["recording"]
    written = status()["recording"]["frames_written"]
    assert wait_until(lambda: status()["recording"]["frames_written"] > written + 10, 20)

    # The recordings folder made read-only (a read-only view mounted over it): the next segment cannot open.
    recordings = disk / "store" / "recordings"
    in_namespace = ["nsenter", "-t", str(server.process.pid), "-m", "sh", "-c"]
    subprocess.run([*in_namespace, (f"mount --bind {recordings} {recordings} && "
                    f"mount -o remount,bind,ro {recordings}")], check=True)
    assert wait_until(lambda: status()["recording"]["state"] == "paused", 20), status()["recording"]
    assert "Read-only file system" in status()["recording"]["reason"]
    subprocess.run([*in_namespace, f"umount {recordings}"], check=True)
    assert wait_until(lambda: status()["recording"]["state"] == "recording", 20), status()["recording"]
    written = status()["recording"]["frames_written"]
    assert wait_until(lambda: status()["recording"]["frames_written"] > written + 10, 20)
    # What was recorded is listed, and nothing the pauses interrupted was left open: only the newest
    # segment is still being written.
    _, body = get_json(f"{url}/api/recordings")
    found = body["recordings"]
    assert len(found) >= 3 and all(segment["frames"] > 0 for segment in found[:-1]), found
    assert not any(segment["recording"] for segment in found[:-1]), found
    assert server.stop() == 0


def test_retention_makes_room_on_a_disk_full_to_the_last_byte_and_recording_goes_on(tmp_path, running):  # noqa: F811
    """A disk filled to its last byte by something else, which stays: the camera's own old recordings make the
    room (deleting index rows then needs room for SQLite's log), and recording goes on by itself."""
    server, url, _, inside = on_a_small_disk(tmp_path, running, "4m", "--fps 30 --width 640 --min-free 256KB")
    status = lambda: get_json(f"{url}/api/cameras/default")[1]["recording"]
    oldest = lambda: get_json(f"{url}/api/recordings?limit=1")[1]["recordings"][0]["id"]
    assert wait_until(lambda: status()["bytes_written"] >= 1_500_000, 60), status()
    first = oldest()

    with open(inside / "filler", "wb", buffering=0) as file:  # every byte of the disk, and it stays
        try:
            while True:
                file.write(b"\0" * 65536)
        except OSError:
            pass
    written = status()["frames_written"]
    assert wait_until(lambda: status()["state"] == "recording" and status()["frames_written"] > written + 60, 60), \
        (status(), list(server.lines.queue))
    assert oldest() > first, "the oldest recordings made the room"
    assert (inside / "filler").stat().st_size > 2_000_000
