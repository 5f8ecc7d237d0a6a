"""Live detection beside every kind of viewer at once; writes its section of docs/benchmarks.md.

One camera relaying bench/upstream.py (640x480, 30 fps) with ``motion``
detection, served by ``python -m webapp`` pinned to core 0 (its detector
worker too). Side by side in one run, the load tool (core 1) opens 100
MJPEG viewers, 50 viewers of the stream with boxes drawn (``?overlay=1``),
50 WebSocket viewers and one slow one (200 KB/s), and 20 ``/events``
readers, all at once. Detector runs per second are counted with 1 viewer
and with all of them. Then, on a still scene, ``motion+`` gating in front
of a 150 ms pure-Python detector: the worker's CPU with nothing moving.

    python bench/live.py                      # about 2 minutes
    python bench/live.py --scale 0.1 --seconds 5 --out -
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
import urllib.request

from detect import children
from report import publish
from run import HERE, ROOT, Process, cpu_seconds, pinned

# (name, path, load tool mode, viewers, slow ones among them)
GROUPS = (
    ("MJPEG", "video_feed/cam", "mjpeg", 100, 0),
    ("overlay", "video_feed/cam?overlay=1", "mjpeg", 50, 0),
    ("WebSocket", "ws/cam", "ws", 51, 1),
    ("events", "events", "events", 20, 0),
)


def status(base: str) -> dict:
    with urllib.request.urlopen(f"{base}/api/cameras/cam", timeout=10) as response:
        return json.loads(response.read())


def start_server(upstream_port: str, spec: str, detect_fps: float) -> tuple[Process, str]:
    server = Process(pinned(0, [sys.executable, "-m", "webapp", "--port", "0", "--threads", "64",
                                "--camera", f"cam=http://127.0.0.1:{upstream_port}/", "--detect", f"cam={spec}",
                                "--detect-fps", str(detect_fps)]),
                     r"open http://localhost:(\d+)/", stream="stderr")
    base = f"http://127.0.0.1:{server.match.group(1)}"
    urllib.request.urlopen(f"{base}/snapshot/cam.jpg", timeout=10).read()
    return server, base


def load(base: str, groups: list[tuple[str, str, str, int, int]], seconds: float) -> dict[str, dict]:
    """Run one load tool per group at the same time; their summaries by group name."""
    tools = {name: subprocess.Popen(
        pinned(1, [sys.executable, str(HERE / "load.py"), f"{base}/{path}", "--mode", mode, "--viewers", str(count),
                   "--slow", str(slow), "--seconds", str(seconds)]),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for name, path, mode, count, slow in groups}
    results = {}
    for name, tool in tools.items():
        out, err = tool.communicate(timeout=seconds + 120)
        if tool.returncode != 0:
            raise RuntimeError(f"load tool for {name} failed: {err.strip()}")
        results[name] = json.loads(out)
    return results


def measured(server: Process, base: str, action) -> dict:
    """Run ``action()``; the server's and its detector's CPU meanwhile, and the detector's runs per second."""
    workers = children(server.pid)
    before = status(base)["detection"]
    cpu = cpu_seconds(server.pid), sum(cpu_seconds(pid) for pid in workers)
    started = time.monotonic()
    result = action()
    wall = time.monotonic() - started
    after = status(base)["detection"]
    return {
        "result": result,
        "server_cpu": round(100 * (cpu_seconds(server.pid) - cpu[0]) / wall, 1),
        "detector_cpu": round(100 * (sum(cpu_seconds(pid) for pid in workers) - cpu[1]) / wall, 1),
        "runs_per_s": round((after["results"] - before["results"]) / wall, 2),
        "gated": after["gated"] - before["gated"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every viewer count (at least 1 each)")
    parser.add_argument("--detect-fps", type=float, default=5)
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"), help="markdown file, or - for stdout")
    args = parser.parse_args()
    groups = [(name, path, mode, max(slow + 1, round(count * args.scale)), slow)
              for name, path, mode, count, slow in GROUPS]

    upstream = Process(pinned(1, [sys.executable, str(HERE / "upstream.py"), "--port", "0"]), r"READY (\d+) frames (.*)")
    try:
        server, base = start_server(upstream.match.group(1), "motion", args.detect_fps)
        try:
            one = measured(server, base, lambda: load(base, [("one", "video_feed/cam", "mjpeg", 1, 0)], args.seconds))
            everyone = measured(server, base, lambda: load(base, groups, args.seconds))
        finally:
            server.stop()
    finally:
        upstream.stop()
    still_upstream = Process(pinned(1, [sys.executable, str(HERE / "upstream.py"), "--port", "0", "--still"]),
                             r"READY (\d+) frames")
    try:
        server, base = start_server(still_upstream.match.group(1), "motion+bench.detectors:burn", args.detect_fps)
        try:
            time.sleep(3)  # past the gate's 2 s hold-over after the first frames
            still = measured(server, base, lambda: time.sleep(args.seconds))
        finally:
            server.stop()
    finally:
        still_upstream.stop()

    rows = []
    for name, _, _, count, slow in groups:
        summary = everyone["result"][name]
        for group_name, label in (("fast", f"{count - slow} {name}"), ("slow", f"1 slow {name} (200 KB/s)")):
            group = summary.get(group_name)
            if not group:
                continue
            rows.append(f"| {label} | {group['served']}/{group['viewers']} | {group['fps_median']} | {group['fps_p5']} "
                        f"| {group['age_ms_p50']} / {group['age_ms_p99']} | {group['messages_per_s']} "
                        f"| {summary['client_cpu_percent']} |")
    command = "python bench/live.py " + shlex.join(sys.argv[1:])
    text = "\n".join([
        "## Live detection beside every kind of viewer",
        "",
        f"Produced by `{command.strip()}` on {time.strftime('%Y-%m-%d')}.",
        "",
        (f"Machine: {os.cpu_count()} cores; server and its detector worker pinned to core 0, every load tool and the "
        f"upstream on core 1. Upstream: 640x480, 30 fps, frames of {upstream.match.group(2)}; `--detect cam=motion "
        f"--detect-fps {args.detect_fps:g}`. All groups watched at once for {args.seconds:g} s. For events, "
        "\"fps\" is events per second per reader; \"messages/s\" counts text messages (WebSocket) or events, "
        "all readers together. A WebSocket frame's age comes from the send time the upstream writes into each "
        "JPEG."),
        "",
        "| viewers | served | fps median | fps p5 | frame age p50 / p99 (ms) | messages/s | load tool CPU % |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        *rows,
        "",
        "| load | server CPU % | detector CPU % | detector runs/s | frames gated |",
        "| --- | --- | --- | --- | --- |",
        f"| 1 MJPEG viewer | {one['server_cpu']} | {one['detector_cpu']} | {one['runs_per_s']} | – |",
        (f"| all {sum(g[3] for g in groups)} viewers above | {everyone['server_cpu']} | {everyone['detector_cpu']} "
        f"| {everyone['runs_per_s']} | – |"),
        (f"| still scene, no viewers, `motion+` a 150 ms detector | {still['server_cpu']} | {still['detector_cpu']} "
        f"| {still['runs_per_s']} | {still['gated']} |"),
        "",
    ])
    publish(args.out, "live", text)


if __name__ == "__main__":
    main()
