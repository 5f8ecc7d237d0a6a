"""Recording four 1920x1080 30 fps H.264 cameras: by copy, against today's re-encoding path, in one run.

The cameras are GStreamer's RTSP server from Debian (system python) looping an H.264 file this script makes
once (bench/passthrough.py's scene, 4 Mbit/s), each with a 640x360 sub-stream; the server runs on core 1,
camstream (``python -m webapp``) on core 0. Rows, each for ``--seconds``, CPU of camstream and its detector
workers together:

1. the four cameras recorded continuously by copy, nothing else;
2. the same, with motion detection on each camera's 640x360 detect stream at 5 runs a second;
3. today's path on the same cameras (``--no-record-copy --record-format h264``): every frame decoded and
   encoded again with libx264 (the machine cannot keep up: the frames recorded per second say how far not).

Then an export of 10 minutes of recording by copy (made here as the recorder would have made it): how long to
its first byte and to its last, against reading the same bytes from the disk.

    python bench/record_copy.py                  # about 3 minutes
    python bench/record_copy.py --seconds 5 --out -
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from fractions import Fraction
from pathlib import Path

import av
from passthrough import FPS, SYSTEM_PYTHON, WARM_UP, make_source
from report import publish
from run import ROOT, Process, cpu_seconds, pinned

from camera.record import Storage

CAMERAS = 4
SUB = (640, 360)
EXPORT_MINUTES = 10
CLIP_MINUTES = 5


def make_sub_source(path: Path, seconds: int) -> None:
    """The sub-stream: the same kind of scene at 640x360, 500 kbit/s."""
    make_source(path, seconds, 500_000, SUB)


def rtsp_server(main: Path, sub: Path) -> Process:
    def pipeline(source: Path) -> str:
        return (f'multifilesrc location={source} loop=true caps="video/x-h264,stream-format=byte-stream,'
                f'framerate={FPS}/1" ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=-1')
    mounts = [f"/cam{index}={pipeline(main)}" for index in range(CAMERAS)]
    mounts += [f"/sub{index}={pipeline(sub)}" for index in range(CAMERAS)]
    return Process(pinned(1, [SYSTEM_PYTHON, str(ROOT / "tests" / "rtsp_server.py"), "0", *mounts]), r"ready (\d+)")


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of ``pid`` and its living descendants (camstream and its detector workers)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parent = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry))
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        try:
            total += cpu_seconds(current)
        except OSError:
            continue
        todo += children.get(current, [])
    return total


def statuses(base: str) -> dict:
    return {camera["name"]: camera for camera in
            json.loads(urllib.request.urlopen(f"{base}/api/cameras", timeout=10).read())["cameras"]}


def recorded(extra: list[str], url: str, folder: str, seconds: float) -> tuple[float, float, float, str]:
    """% of a core (camstream and its workers), frames written a second, Mbit/s written; and the formats."""
    cameras = [arg for index in range(CAMERAS) for arg in ("--camera", f"cam{index}={url}/cam{index}",
                                                          "--record", f"cam{index}=continuous")]
    server = Process(pinned(0, [sys.executable, "-m", "webapp", "--port", "0", *cameras, "--storage", folder,
                                "--min-free", "0", *extra]), r"open http://localhost:(\d+)/", stream="stderr")
    try:
        base = f"http://127.0.0.1:{server.match.group(1)}"
        time.sleep(WARM_UP)
        before, cpu_before, started = statuses(base), tree_cpu_seconds(server.pid), time.monotonic()
        time.sleep(seconds)
        cpu = 100 * (tree_cpu_seconds(server.pid) - cpu_before) / (time.monotonic() - started)
        after = statuses(base)
        frames = sum(after[name]["recording"]["frames_written"] - before[name]["recording"]["frames_written"]
                     for name in after) / seconds
        written = sum(after[name]["recording"]["bytes_written"] - before[name]["recording"]["bytes_written"]
                      for name in after) * 8 / seconds / 1e6
        formats = ",".join(sorted({camera["recording"]["format"] for camera in after.values()}))
        return cpu, frames, written, formats
    finally:
        server.stop()


def ffmpeg_floor(url: str, seconds: float) -> tuple[float, float, float, str]:
    """FFmpeg itself copying each camera to one-minute MP4 segments: the least reading RTSP costs."""
    with tempfile.TemporaryDirectory() as folder:
        copies = [subprocess.Popen(pinned(0, [
            "ffmpeg", "-loglevel", "quiet", "-rtsp_transport", "tcp", "-i", f"{url}/cam{index}", "-c", "copy",
            "-f", "segment", "-segment_time", "60", "-segment_format", "mp4", "-segment_format_options",
            "movflags=frag_keyframe+empty_moov", f"{folder}/cam{index}-%03d.mp4"])) for index in range(CAMERAS)]
        try:
            time.sleep(WARM_UP)
            before, started = sum(cpu_seconds(copy.pid) for copy in copies), time.monotonic()
            size_before = sum(path.stat().st_size for path in Path(folder).iterdir())
            time.sleep(seconds)
            elapsed = time.monotonic() - started
            cpu = 100 * (sum(cpu_seconds(copy.pid) for copy in copies) - before) / elapsed
            written = (sum(path.stat().st_size for path in Path(folder).iterdir()) - size_before) * 8 / elapsed / 1e6
        finally:
            for copy in copies:
                copy.terminate()
                copy.wait(10)
    return cpu, float("nan"), written, "ffmpeg"


def fake_recording(source: Path, folder: Path, minutes: int) -> tuple[float, float]:
    """``minutes`` of continuous recording by copy of camera ``cam``, as one-minute segments (fragmented MP4, a
    fragment a frame, as the recorder writes them), indexed: the span's start and end."""
    storage = Storage(folder)
    start = time.time() - minutes * 60 - 60
    with av.open(str(source)) as container:
        packets = [packet for packet in container.demux(container.streams.video[0]) if packet.size]
        template = container.streams.video[0]
        for minute in range(minutes):
            name = f"recordings/cam/bench/{minute}.copy.mp4"
            path = storage.path(name)
            path.parent.mkdir(parents=True, exist_ok=True)
            segment_start = start + minute * 60
            with av.open(str(path), "w", format="mp4", options={
                    "movflags": "frag_every_frame+empty_moov+default_base_moof"}) as output:
                stream = output.add_stream_from_template(template)
                stream.time_base = Fraction(1, 90000)
                for index in range(60 * FPS):
                    packet = packets[index % len(packets)]
                    packet.stream = stream
                    packet.pts = packet.dts = (minute * 60 * FPS + index) * 3000
                    packet.time_base = stream.time_base
                    output.mux(packet)
            row = storage.index.add_segment("cam", "continuous", "copy", name, segment_start)
            storage.index.update_segment(row, segment_start + 60, 60 * FPS, path.stat().st_size, open=False)
    # An event of CLIP_MINUTES in the middle, whose clip is cut from those segments.
    event = storage.index.add_event("cam", start + 90, "motion", 0.0, 0.0)
    storage.index.update_event(event, end=start + 90 + CLIP_MINUTES * 60, labels={"motion": 1.0}, best_score=1.0)
    storage.close()
    return start, start + minutes * 60


def export(source: Path, url: str, seconds: float) -> str:
    with tempfile.TemporaryDirectory() as folder:
        begin, end = fake_recording(source, Path(folder), EXPORT_MINUTES)
        size_on_disk = sum(path.stat().st_size for path in Path(folder).glob("recordings/cam/bench/*.mp4"))
        server = Process(pinned(0, [sys.executable, "-m", "webapp", "--port", "0", "--camera", f"cam={url}/cam0",
                                    "--record", "continuous", "--storage", folder, "--min-free", "0"]),
                         r"open http://localhost:(\d+)/", stream="stderr")
        try:
            base = f"http://127.0.0.1:{server.match.group(1)}"
            timings = []
            span = f"{base}/api/recordings/cam.mp4?start={begin + 1}&end={end - 1}"
            clip = f"{base}/api/events/1/clip.mp4"
            for attempt, address in ((f"{EXPORT_MINUTES} min span, first (made while sent)", span),
                                     (f"{EXPORT_MINUTES} min span, again (the kept file)", span),
                                     (f"{CLIP_MINUTES} min event clip, first (cut from the segments)", clip),
                                     (f"{CLIP_MINUTES} min event clip, again (kept with the event)", clip)):
                started = time.monotonic()
                with urllib.request.urlopen(address, timeout=300) as response:
                    response.read(1)
                    first = time.monotonic() - started
                    size = 1 + sum(len(chunk) for chunk in iter(lambda: response.read(1 << 20), b""))
                timings.append((attempt, first, time.monotonic() - started, size))
        finally:
            server.stop()
        disk_started = time.monotonic()
        for path in sorted(Path(folder).glob("recordings/cam/bench/*.mp4")):
            path.read_bytes()
        disk = time.monotonic() - disk_started
    lines = [(f"Downloads of {EXPORT_MINUTES} minutes recorded by copy ({size_on_disk / 1e6:.0f} MB on disk; reading "
              f"them: {disk:.2f} s, from the page cache):"), "",
             "| download | first byte | whole | MB | MB/s |", "| --- | --- | --- | --- | --- |"]
    for attempt, first, whole, size in timings:
        lines.append(f"| {attempt} | {first * 1000:.0f} ms | {whole:.2f} s | {size / 1e6:.0f} | "
                     f"{size / 1e6 / whole:.0f} |")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> str:
    main_source = Path(args.source_dir) / "camstream-bench-1920x1080-4000000.h264"
    sub_source = Path(args.source_dir) / "camstream-bench-640x360-500000.h264"
    make_source(main_source, 10, 4_000_000)
    make_sub_source(sub_source, 10)
    camera = rtsp_server(main_source, sub_source)
    url = f"rtsp://127.0.0.1:{camera.match.group(1)}/shared"  # one stream a path for every client
    detect = [arg for index in range(CAMERAS) for arg in
              ("--detect", f"cam{index}=motion", "--detect-source", f"cam{index}={url}/sub{index}")]
    rows = []
    try:
        for label, extra in ((f"{CAMERAS} cameras recorded by copy", []),
                             (f"{CAMERAS} by copy + motion on 640x360 detect streams, 5/s", [*detect,
                                                                                             "--detect-fps", "5"]),
                             (f"{CAMERAS} re-encoded (today's path: decode + libx264)",
                              ["--no-record-copy", "--record-format", "h264"])):
            with tempfile.TemporaryDirectory() as folder:
                rows.append((label, *recorded(extra, url, folder, args.seconds)))
        rows.append((f"floor: {CAMERAS} x ffmpeg -c copy to MP4 segments", *ffmpeg_floor(url, args.seconds)))
        exported = export(main_source, url, args.seconds)
    finally:
        camera.stop()
    lines = [(f"`python bench/record_copy.py --seconds {args.seconds:g}`: {CAMERAS} cameras, 1920x1080 at {FPS} "
              f"fps, 4 Mbit/s H.264 from GStreamer's RTSP server (core 1); camstream and its detector workers on "
              f"core 0. CPU in % of one core; frames written a second for all {CAMERAS} (they send {CAMERAS * FPS})."),
             "",
             "| recording | CPU % | frames written/s | Mbit/s written | format |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {label} | {cpu:.1f} | {'-' if math.isnan(frames) else f'{frames:.0f}'} | {written:.1f} | {formats} |"
              for label, cpu, frames, written, formats in rows]
    return "\n".join(lines) + "\n\n" + exported


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--source-dir", default=tempfile.gettempdir())
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    args = parser.parse_args()
    publish(args.out, "record-copy", run(args))


if __name__ == "__main__":
    main()
