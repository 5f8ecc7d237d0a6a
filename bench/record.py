"""Continuous recording beside viewers: CPU, disk per camera-hour and viewers' fps, pass-through vs H.264.

Four cameras relaying bench/upstream.py (640x480, 30 fps), served by
``python -m webapp`` pinned to core 0; 100 MJPEG viewers (25 per camera)
from the load tool on core 1, beside the upstream. Side by side in one run:
no recording, ``--record-format jpeg`` (frames stored as captured) and
``--record-format h264``, every camera ``--record NAME=continuous``.

    python bench/record.py                      # about 2 minutes
    python bench/record.py --seconds 5 --viewers 8 --out -
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from report import publish
from run import HERE, ROOT, Process, cpu_seconds, pinned

CAMERAS = ("c1", "c2", "c3", "c4")
VARIANTS = (("no recording", None), ("pass-through (jpeg)", "jpeg"), ("H.264 (PyAV, veryfast, crf 28)", "h264"))


def status(base: str) -> list[dict]:
    with urllib.request.urlopen(f"{base}/api/cameras", timeout=10) as response:
        return json.loads(response.read())["cameras"]


def folder_bytes(root: Path) -> int:
    return sum(path.stat().st_size for path in root.rglob("*") if path.is_file()) if root.exists() else 0


def run_variant(fmt: str | None, upstream_port: str, args: argparse.Namespace) -> dict:
    storage = Path(tempfile.mkdtemp(prefix="camstream-bench-"))
    command = [sys.executable, "-m", "webapp", "--port", "0", "--threads", "64", "--idle-timeout", "60"]
    for name in CAMERAS:
        command += ["--camera", f"{name}=http://127.0.0.1:{upstream_port}/"]
        if fmt:
            command += ["--record", f"{name}=continuous"]
    if fmt:
        command += ["--record-format", fmt, "--storage", str(storage), "--min-free", "0"]
    server = Process(pinned(0, command), r"open http://localhost:(\d+)/", stream="stderr")
    base = f"http://127.0.0.1:{server.match.group(1)}"
    try:
        for name in CAMERAS:
            urllib.request.urlopen(f"{base}/snapshot/{name}.jpg", timeout=10).read()
        time.sleep(3)  # past the first segment's opening
        before = {camera["name"]: camera for camera in status(base)}
        disk, cpu, started = folder_bytes(storage), cpu_seconds(server.pid), time.monotonic()
        tools = [subprocess.Popen(pinned(1, [sys.executable, str(HERE / "load.py"), f"{base}/video_feed/{name}",
                                             "--viewers", str(args.viewers // len(CAMERAS)),
                                             "--seconds", str(args.seconds)]),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for name in CAMERAS]
        results = []
        for tool in tools:
            out, err = tool.communicate(timeout=args.seconds + 120)
            if tool.returncode != 0:
                raise RuntimeError(f"load tool failed: {err.strip()}")
            results.append(json.loads(out)["fast"])
        wall = time.monotonic() - started
        cpu_percent = 100 * (cpu_seconds(server.pid) - cpu) / wall
        written = folder_bytes(storage) - disk
        after = {camera["name"]: camera for camera in status(base)}
    finally:
        server.stop()
        subprocess.run(["rm", "-rf", str(storage)], check=False)
    recorded = skipped = 0
    for name in CAMERAS:
        if after[name]["recording"]:
            recorded += after[name]["recording"]["frames_written"] - before[name]["recording"]["frames_written"]
            skipped += after[name]["recording"]["frames_skipped"] - before[name]["recording"]["frames_skipped"]
    rates = sorted(result["fps_median"] for result in results)
    return {
        "cpu_percent": round(cpu_percent, 1),
        "gb_per_camera_hour": round(written / len(CAMERAS) / wall * 3600 / 1e9, 2),
        "recorded_fps": round(recorded / len(CAMERAS) / wall, 1),
        "skipped": skipped,
        "viewer_fps": rates[len(rates) // 2],
        "viewer_fps_p5": min(result["fps_p5"] for result in results),
        "served": sum(result["served"] for result in results),
        "viewers": sum(result["viewers"] for result in results),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--viewers", type=int, default=100, help="in all, split over the four cameras")
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"), help="markdown file, or - for stdout")
    args = parser.parse_args()
    upstream = Process(pinned(1, [sys.executable, str(HERE / "upstream.py"), "--port", "0"]), r"READY (\d+) frames (.*)")
    try:
        results = [(label, run_variant(fmt, upstream.match.group(1), args)) for label, fmt in VARIANTS]
    finally:
        upstream.stop()
    command = "python bench/record.py " + shlex.join(sys.argv[1:])
    rows = [f"| {label} | {r['cpu_percent']} | {r['recorded_fps']} | {r['skipped']} | {r['gb_per_camera_hour']} "
            f"| {r['served']}/{r['viewers']} | {r['viewer_fps']} | {r['viewer_fps_p5']} |" for label, r in results]
    text = "\n".join([
        "## Continuous recording beside viewers",
        "",
        f"Produced by `{command.strip()}` on {time.strftime('%Y-%m-%d')}.",
        "",
        (f"Machine: {os.cpu_count()} cores; the server pinned to core 0, the upstream and the load tools on core 1. "
         f"Four cameras relaying one upstream (640x480, 30 fps, frames of {upstream.match.group(2)}), each recorded "
         f"continuously, {args.viewers} MJPEG viewers split over them, for {args.seconds:g} s. Server CPU is of one "
         "core (100 = all of core 0). \"Recorded fps\" is frames written per camera per second; \"skipped\" counts "
         "frames the recorders let go by because they were busy (newest frame wins). Disk per camera-hour is "
         "measured on the storage folder over the run."),
        "",
        ("| recording | server CPU % | recorded fps | skipped | GB per camera-hour | served | viewer fps median "
         "| viewer fps p5 |"),
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        *rows,
        "",
    ])
    publish(args.out, "record", text)


if __name__ == "__main__":
    main()
