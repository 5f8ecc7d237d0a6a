"""Detection beside 200 viewers: does a detector slow the video? Writes its section of docs/benchmarks.md.

One relayed 640x480, 30 fps camera (bench/upstream.py), served by ``python
-m webapp`` pinned to core 0 (its detector worker inherits that core, and
competes there at its lower priority), watched by 200 viewers (bench/load.py
on core 1), side by side in one run: with no detector, with ``motion``, and
with ``bench.detectors:burn``, 150 ms of pure-Python CPU per frame. While
the viewers watch, the newest detection result is read every 50 ms, which
gives the results per second, the inference time and the result age (when
the result was ready minus when its frame was captured).

    python bench/detect.py                    # about 4 minutes
    python bench/detect.py --viewers 20 --seconds 5 --rounds 1 --out -
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import threading
import time
import urllib.request
from pathlib import Path

from report import publish
from run import HERE, IDLE_TIMEOUT, ROOT, Process, cpu_seconds, pinned, scenario

VARIANTS = (("none", None), ("motion", "motion"), ("burn 150 ms", "bench.detectors:burn"))


def children(pid: int) -> list[int]:
    """The processes ``pid`` started (its detector worker)."""
    found = []
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            text = Path(f"/proc/{pid}/task/{task}/children").read_text()
        except FileNotFoundError:  # a thread that ended since the listing
            continue
        found += [int(child) for child in text.split()]
    return found


def cpu_of(pids: list[int]) -> float:
    """The CPU seconds of those of ``pids`` still running (a worker the server replaced is gone)."""
    total = 0.0
    for pid in pids:
        try:
            total += cpu_seconds(pid)
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


class ResultPoller:
    """Reads the newest detection result every 50 ms in the background; keeps each distinct one."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.results: dict[int, dict] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            try:
                with urllib.request.urlopen(self.url, timeout=5) as response:
                    result = json.loads(response.read())
            except OSError:
                continue
            self.results.setdefault(result["seq"], result)

    def stop(self) -> list[dict]:
        self._stop.set()
        self._thread.join()
        return [self.results[seq] for seq in sorted(self.results)]


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))], 1)


def run_variant(name: str, spec: str | None, upstream_port: str, args: argparse.Namespace) -> dict:
    command = [sys.executable, "-m", "webapp", "--port", "0", "--threads", "64", "--idle-timeout",
               str(IDLE_TIMEOUT), "--camera", f"cam=http://127.0.0.1:{upstream_port}/"]
    if spec:
        command += ["--detect", f"cam={spec}", "--detect-fps", str(args.detect_fps)]
    server = Process(pinned(0, command), r"open http://localhost:(\d+)/", stream="stderr")
    base = f"http://127.0.0.1:{server.match.group(1)}"
    try:
        urllib.request.urlopen(f"{base}/snapshot/cam.jpg", timeout=60).read()
        workers = children(server.pid)
        worker_cpu = cpu_of(workers)
        poller = ResultPoller(f"{base}/api/cameras/cam/detections") if spec else None
        if poller is not None:
            # The detector's first result: from here on it runs as it will (a busy machine starts it late).
            deadline = time.monotonic() + 60
            while not poller.results and time.monotonic() < deadline:
                time.sleep(0.05)
        warm = set(poller.results) if poller else set()
        started = time.monotonic()
        result = scenario(server, f"{base}/video_feed/cam", name, args.viewers, args.seconds)
        wall = time.monotonic() - started
        results = poller.stop() if poller else []
        worker_cpu = cpu_of(workers) - worker_cpu
    finally:
        server.stop()
    measured = [r for r in results if r["seq"] not in warm]
    ages = [(r["finished"] - r["timestamp"]) * 1000 for r in measured or results]
    # A result's inference time is its own, whenever it came: the first one counts too.
    inference = [r["inference_ms"] for r in results]
    result.update(
        detector=name,
        detector_cpu_percent=round(100 * worker_cpu / wall, 1) if spec else None,
        results_per_second=round(len(measured) / wall, 2) if spec else None,
        inference_ms_p50=percentile(inference, 50), inference_ms_p99=percentile(inference, 99),
        result_age_ms_p50=percentile(ages, 50), result_age_ms_p99=percentile(ages, 99),
    )
    return result


def middle(runs: list[dict], key: str, group: str | None = None) -> float | None:
    """The median of ``key`` (in ``group`` of each run, if given) over ``runs``."""
    values = [(run[group] if group else run)[key] for run in runs]
    values = [value for value in values if value is not None]
    return round(statistics.median(values), 2) if values else None


def table(rounds: list[list[dict]], command: str, meta: str) -> str:
    """A row per detector and round (against that round's run without one), then the medians over rounds."""
    def fmt(value: object) -> str:
        return "–" if value is None else str(value)

    def signed(value: float | None) -> str:
        return fmt(value) if value is None or value <= 0 else f"+{value}"

    lines = [
        "## Detection beside 200 viewers",
        "",
        f"Produced by `{command}` on {time.strftime('%Y-%m-%d')}.",
        "",
        meta,
        "",
        ("| round | detector | served | fps median | fps p5 | frame age p50 / p99 (ms) | p99 vs none (ms) "
         "| server CPU % | detector CPU % | results/s | inference p50 / p99 (ms) | result age p50 / p99 (ms) |"),
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for number, results in enumerate(rounds, 1):
        baseline = results[0]["fast"]["age_ms_p99"]
        for result in results:
            fast = result["fast"]
            ages = (fast["age_ms_p99"], baseline)
            result["delta"] = None if None in ages else round(ages[0] - ages[1], 1)
            lines.append(
                f"| {number} | {result['detector']} | {fast['served']}/{fast['viewers']} | {fast['fps_median']} "
                f"| {fmt(fast['fps_p5'])} | {fmt(fast['age_ms_p50'])} / {fmt(fast['age_ms_p99'])} | {signed(result['delta'])} "
                f"| {result['server_cpu_percent']} | {fmt(result['detector_cpu_percent'])} "
                f"| {fmt(result['results_per_second'])} | {fmt(result['inference_ms_p50'])} / "
                f"{fmt(result['inference_ms_p99'])} | {fmt(result['result_age_ms_p50'])} / {fmt(result['result_age_ms_p99'])} |")
    lines += ["", "Medians over the rounds:", "",
              "| detector | fps median | frame age p99 (ms) | p99 vs none (ms) | results/s | result age p99 (ms) |",
              "| --- | --- | --- | --- | --- | --- |"]
    for index, (name, _) in enumerate(VARIANTS):
        runs = [results[index] for results in rounds]
        lines.append(f"| {name} | {middle(runs, 'fps_median', 'fast')} | {middle(runs, 'age_ms_p99', 'fast')} "
                     f"| {signed(middle(runs, 'delta'))} | {fmt(middle(runs, 'results_per_second'))} "
                     f"| {fmt(middle(runs, 'result_age_ms_p99'))} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--viewers", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--detect-fps", type=float, default=5)
    parser.add_argument("--rounds", type=int, default=3, help="each detector this often, in turn, against noise")
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"), help="markdown file, or - for stdout")
    args = parser.parse_args()

    upstream = Process(pinned(1, [sys.executable, str(HERE / "upstream.py"), "--port", "0"]), r"READY (\d+) frames (.*)")
    try:
        rounds = [[run_variant(name, spec, upstream.match.group(1), args) for name, spec in VARIANTS]
                  for _ in range(args.rounds)]
    finally:
        upstream.stop()
    command = "python bench/detect.py " + shlex.join(sys.argv[1:])
    meta = (f"Machine: {os.cpu_count()} cores; server pinned to core 0 with its detector worker, load tool and "
            f"upstream on core 1. Upstream: 640x480, 30 fps, frames of {upstream.match.group(2)}. "
            f"{args.viewers} viewers for {args.seconds:g} s per detector, `--detect-fps {args.detect_fps:g}`, "
            f"the detectors in turn, {args.rounds} rounds (this machine's cores are shared, and one run's p99 "
            "swings by tens of ms). "
            "Detector CPU is the worker process's; result age is when a result was ready minus when its "
            f"frame was captured. Median of the per-viewer fps and percentiles of every frame's age, as in "
            "the streaming table.")
    text = table(rounds, command.strip(), meta)
    publish(args.out, "detect", text)


if __name__ == "__main__":
    main()
