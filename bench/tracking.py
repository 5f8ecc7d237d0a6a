"""What tracking costs: 100 boxes a frame at 10 detections a second through a camera's tracker, beside its video.

A camera's tracking (camera/track/: filters, masks, norfair's tracker,
zones) runs on its detection thread for every result. This bench feeds
one :class:`~camera.track.tracking.Tracking` ``--boxes`` moving boxes a
frame (two labels, a zone, an object mask, a motion mask: every step of
the work) and measures the time each result takes, then runs it at
``--rate`` results a second on a thread beside a 30 fps pattern camera in
the same process (as in camstream: the GIL is shared) and counts the
frames the camera made with and without it. Writes its section of
docs/benchmarks.md (``--out -`` prints it).

    .venv/bin/python bench/tracking.py
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from report import publish

from camera.detect import Detection, DetectionResult
from camera.frame import Frame
from camera.sources.pattern import PatternCamera
from camera.track import Rules, Zone
from camera.track.tracking import Tracking

WIDTH, HEIGHT = 1920, 1080
RULES = Rules(zones=(Zone("drive", ((0.4, 0.5), (1.0, 0.5), (1.0, 1.0), (0.4, 1.0))),
                     Zone("porch", ((0.0, 0.5), (0.4, 0.5), (0.4, 1.0), (0.0, 1.0)))),
              object_mask=(((0.9, 0.0), (1.0, 0.0), (1.0, 0.1), (0.9, 0.1)),),
              motion_mask=(((0.0, 0.0), (0.3, 0.0), (0.3, 0.05), (0.0, 0.05)),))


class Scene:
    """``count`` boxes that wander: each a person or a car, stepping a few pixels a result."""

    def __init__(self, count: int, seed: int = 1) -> None:
        rng = np.random.default_rng(seed)
        self.xy = rng.uniform((0, 0), (WIDTH - 120, HEIGHT - 200), (count, 2))
        self.step = rng.normal(0, 6, (count, 2))
        self.labels = ["person" if i % 2 else "car" for i in range(count)]

    def detections(self) -> list[Detection]:
        self.xy = np.clip(self.xy + self.step, 0, (WIDTH - 120, HEIGHT - 200))
        return [Detection(label, 0.8, (int(x), int(y), 60, 150) if label == "person" else (int(x), int(y), 120, 80))
                for label, (x, y) in zip(self.labels, self.xy, strict=True)]


def time_results(boxes: int, results: int, rate: float) -> list[float]:
    """Seconds each of ``results`` results of ``boxes`` boxes took through one camera's tracking."""
    tracking, scene = Tracking(RULES, rate=rate), Scene(boxes)
    took = []
    for seq in range(results):
        frame = Frame(seq, b"", 1000.0 + seq / rate, WIDTH, HEIGHT)
        result = DetectionResult("bench", "yolo:bench.onnx", frame, scene.detections(), 0.0, frame.timestamp)
        started = time.perf_counter()
        tracking.apply(result)
        took.append(time.perf_counter() - started)
    return took


def frames_made(seconds: float, boxes: int, rate: float) -> tuple[int, int]:
    """Frames a 30 fps pattern camera made in ``seconds``, with tracking at ``rate`` beside it if ``boxes``;
    and how many results the tracking took."""
    camera = PatternCamera("bench", source="pattern", fps=30, width=640, height=480)
    wake = threading.Event()
    camera.hold()
    subscription = camera.broadcaster.watch(wake, fps=None)
    done = threading.Event()
    counted = [0]

    def track() -> None:
        tracking, scene = Tracking(RULES, rate=rate), Scene(boxes)
        seq, next_at = 0, time.monotonic()
        while not done.is_set():
            frame = Frame(seq, b"", time.time(), WIDTH, HEIGHT)
            tracking.apply(DetectionResult("bench", "yolo:bench.onnx", frame, scene.detections(), 0.0, time.time()))
            seq += 1
            next_at += 1 / rate
            done.wait(max(0.0, next_at - time.monotonic()))
        counted[0] = seq

    try:
        wake.wait(10)
        first = subscription.take()
        thread = threading.Thread(target=track, daemon=True) if boxes else None
        if thread:
            thread.start()
        time.sleep(seconds)  # the measuring span
        last = subscription.take() or first
        done.set()
        if thread:
            thread.join()
    finally:
        subscription.close()
        camera.unhold()
        camera.stop()
    return (last.seq - first.seq if first and last else 0), counted[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boxes", type=int, default=100)
    parser.add_argument("--rate", type=float, default=10.0, help="results a second")
    parser.add_argument("--results", type=int, default=600, help="results timed")
    parser.add_argument("--seconds", type=float, default=20.0, help="the camera's run, with and without tracking")
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"), help="markdown file, or - for stdout")
    args = parser.parse_args()
    time_results(args.boxes, 20, args.rate)  # warm-up: imports, numpy's first calls
    took = sorted(time_results(args.boxes, args.results, args.rate))
    median, p99 = statistics.median(took), took[min(len(took) - 1, int(len(took) * 0.99))]
    small = statistics.median(time_results(10, args.results, args.rate))
    # Alone and beside in turn, twice: the machine's other work falls on both alike.
    alone = beside = results = 0
    for _ in range(2):
        alone += frames_made(args.seconds / 2, 0, args.rate)[0]
        made, tracked = frames_made(args.seconds / 2, args.boxes, args.rate)
        beside, results = beside + made, results + tracked
    text = f"""## Tracking: {args.boxes} boxes a result at {args.rate:g} results a second (bench/tracking.py)

Produced by `python bench/tracking.py --boxes {args.boxes} --rate {args.rate:g} --results {args.results} --seconds {args.seconds:g}`
on {_machine()}. One camera's tracking (camera/track/: per-label filters, an object mask, a motion mask,
norfair's tracker with the centre distance of camera/track/tracking.py, two zones, stationary objects) fed
{args.boxes} wandering boxes (people and cars) a result, at 1920x1080; the time is what `Tracking.apply` took on
the detection thread, from the boxes the detector gave to the tracked ones every listener gets.

| | per result, median | per result, p99 | per box | share of one core at {args.rate:g}/s |
| --- | --- | --- | --- | --- |
| {args.boxes} boxes | {median * 1000:.2f} ms | {p99 * 1000:.2f} ms | {median / args.boxes * 1e6:.0f} µs | {median * args.rate * 100:.1f} % |
| 10 boxes | {small * 1000:.2f} ms | | {small / 10 * 1e6:.0f} µs | {small * args.rate * 100:.1f} % |

Beside the video: a 30 fps pattern camera in the same process made **{alone}** frames in {args.seconds:g} s
alone and **{beside}** in as long with the tracking of {args.boxes} boxes at {args.rate:g}/s running beside it
({results} results tracked; each run of {args.seconds / 2:g} s twice, in turn): {_verdict(alone, beside)}.
"""
    publish(args.out, "tracking", text)


def _verdict(alone: int, beside: int) -> str:
    lost = alone - beside
    if lost <= max(1, alone // 100):
        return "no frame lost to it (the difference is within a frame a second of the camera's own pacing)"
    return f"{lost} frames fewer ({lost / max(1, alone) * 100:.1f} %)"


def _machine() -> str:
    import os
    import platform
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores shared with other work"


if __name__ == "__main__":
    main()
