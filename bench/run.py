"""Run camstream's load scenarios and write the results to docs/benchmarks.md.

The server (``python -m webapp``) runs pinned to core 0 and relays a paced
640x480, 30 fps MJPEG upstream (bench/upstream.py); the load tool
(bench/load.py) and the upstream run on core 1. For each scenario it records
the viewers' numbers, the server's CPU and RSS, and the load tool's own CPU,
so a saturated client shows.

    python bench/run.py                       # the full set, about 4 minutes
    python bench/run.py --viewers 1,50 --seconds 10 --slow-seconds 20 --out -
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from report import publish

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
IDLE_TIMEOUT = 3
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")


def pinned(core: int, command: list[str]) -> list[str]:
    """Run ``command`` on one core, where the machine has more than one (``BENCH_PIN=0`` runs it anywhere: the
    test suite's short runs, on a machine busy with other tests, must not crowd onto one core)."""
    if (os.cpu_count() or 1) > 1 and shutil.which("taskset") and os.environ.get("BENCH_PIN") != "0":
        return ["taskset", "-c", str(core), *command]
    return command


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mb(pid: int) -> float:
    pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    return pages * PAGE_SIZE / 2**20


def threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


class Process:
    """A child process whose first stdout/stderr line matching a pattern we wait for.

    Every line it prints on that stream is kept in ``lines``.
    """

    def __init__(self, command: list[str], pattern: str, stream: str = "stdout", cwd: Path = ROOT) -> None:
        self.command = command
        self.popen = subprocess.Popen(
            command, cwd=cwd, text=True,
            stdout=subprocess.PIPE if stream == "stdout" else subprocess.DEVNULL,
            stderr=subprocess.PIPE if stream == "stderr" else subprocess.DEVNULL,
        )
        source = self.popen.stdout if stream == "stdout" else self.popen.stderr
        found = threading.Event()
        self.match: re.Match | None = None
        self.lines: list[str] = []

        def scan() -> None:
            for line in source:
                self.lines.append(line)
                if self.match is None and (match := re.search(pattern, line)):
                    self.match = match
                    found.set()

        threading.Thread(target=scan, daemon=True).start()
        if not found.wait(60):
            self.stop()
            raise RuntimeError(f"{shlex.join(command)} never printed {pattern!r}")

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()


class Sampler:
    """Samples a process's RSS in the background; keeps the peak."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = rss_mb(pid)
        self.threads_peak = threads(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            self.peak = max(self.peak, rss_mb(self.pid))
            self.threads_peak = max(self.threads_peak, threads(self.pid))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def load(url: str, viewers: int, seconds: float, slow: int = 0) -> dict:
    command = pinned(1, [sys.executable, str(HERE / "load.py"), url, "--viewers", str(viewers),
                         "--seconds", str(seconds), "--slow", str(slow)])
    result = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 120, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"load tool failed: {result.stderr.strip()}")
    return json.loads(result.stdout)


def scenario(server: Process, url: str, name: str, viewers: int, seconds: float, slow: int = 0) -> dict:
    rss_before = rss_mb(server.pid)
    cpu_before = cpu_seconds(server.pid)
    sampler = Sampler(server.pid)
    started = time.monotonic()
    result = load(url, viewers, seconds, slow)
    wall = time.monotonic() - started
    sampler.stop()
    result.update(
        name=name,
        server_cpu_percent=round(100 * (cpu_seconds(server.pid) - cpu_before) / wall, 1),
        rss_before_mb=round(rss_before, 1),
        rss_peak_mb=round(sampler.peak, 1),
        rss_per_viewer_mb=round((sampler.peak - rss_before) / viewers, 3),
        threads_peak=sampler.threads_peak,
    )
    print(json.dumps(result), file=sys.stderr, flush=True)
    return result


def idle_cpu(server: Process, wait: float, seconds: float) -> float:
    time.sleep(wait)
    before = cpu_seconds(server.pid)
    time.sleep(seconds)
    return round(100 * (cpu_seconds(server.pid) - before) / seconds, 1)


def fmt(value: object) -> str:
    return "–" if value is None else str(value)


def table(results: list[dict], idle: dict[str, float], command: str, meta: str) -> str:
    lines = [
        "## Streaming: viewers on both stream paths",
        "",
        f"Produced by `{command}` on {time.strftime('%Y-%m-%d')}.",
        "",
        meta,
        "",
        ("| path | scenario | served | fps median | fps p5 | first frame median / max (ms) | frame age p50 / p99 / max (ms) "
         "| MB/s | errors | refused | server CPU % | RSS before → peak (MB) | RSS per viewer (MB) | load tool CPU % |"),
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for result in results:
        for group_name in ("fast", "slow"):
            group = result.get(group_name)
            if not group:
                continue
            label = result["name"] + (", the slow viewer" if group_name == "slow" else "")
            lines.append(
                f"| {result['path']} | {label} | {group['served']}/{group['viewers']} | {group['fps_median']} | {group['fps_p5']} "
                f"| {fmt(group['first_frame_ms_median'])} / {fmt(group['first_frame_ms_max'])} "
                f"| {fmt(group['age_ms_p50'])} / {fmt(group['age_ms_p99'])} / {fmt(group['age_ms_max'])} "
                f"| {group['mb_per_s']} | {group['errors']} | {group['refused']} "
                f"| {result['server_cpu_percent']} | {result['rss_before_mb']} → {result['rss_peak_mb']} "
                f"| {result['rss_per_viewer_mb']} | {result['client_cpu_percent']} |"
            )
    idle_text = ", ".join(f"{path} {cpu} %" for path, cpu in idle.items())
    lines += ["", f"With no viewers, after the idle timeout, server CPU: {idle_text}.", ""]
    return "\n".join(lines)


def run_path(path: str, extra: list[str], upstream_port: str, counts: list[int], args: argparse.Namespace,
             results: list[dict]) -> float:
    """Start a server for one stream path, run every scenario on it, return its idle CPU."""
    server = Process(
        pinned(0, [sys.executable, "-m", "webapp", "--port", "0", "--threads", str(args.threads),
                   "--idle-timeout", str(IDLE_TIMEOUT), "--camera", f"cam=http://127.0.0.1:{upstream_port}/", *extra]),
        r"open http://localhost:(\d+)/", stream="stderr",
    )
    url = f"http://127.0.0.1:{server.match.group(1)}/video_feed/cam"
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{server.match.group(1)}/snapshot/cam.jpg", timeout=10).read()
        for count in counts:
            name = f"{count} viewer{'s' if count > 1 else ''}"
            results.append(scenario(server, url, name, count, args.seconds) | {"path": path})
        if args.slow_seconds:
            fast = args.slow_fast_viewers
            name = f"{fast} fast + 1 slow (200 KB/s)"
            results.append(scenario(server, url, name, fast + 1, args.slow_seconds, slow=1) | {"path": path})
        # The camera stops IDLE_TIMEOUT s after the last viewer; measure after that.
        return idle_cpu(server, wait=IDLE_TIMEOUT + 2, seconds=args.idle_seconds)
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--viewers", default="1,50,200,500", help="comma-separated viewer counts")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--slow-seconds", type=float, default=60, help="length of the slow-viewer run; 0 skips it")
    parser.add_argument("--slow-fast-viewers", type=int, default=50, help="fast viewers beside the slow one")
    parser.add_argument("--threads", type=int, default=540)
    parser.add_argument("--idle-seconds", type=float, default=5, help="how long idle CPU is measured")
    parser.add_argument("--paths", default="sender,wsgi",
                        help="stream paths to compare: sender (the default server) and/or wsgi (--no-handoff)")
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"), help="markdown file, or - for stdout")
    args = parser.parse_args()
    counts = [int(n) for n in args.viewers.split(",") if n]

    upstream = Process(pinned(1, [sys.executable, str(HERE / "upstream.py"), "--port", "0"]), r"READY (\d+) frames (.*)")
    results = []
    idle = {}
    try:
        for path in [p for p in args.paths.split(",") if p]:
            extra = ["--no-handoff", "--max-viewers", str(args.threads - 8)] if path == "wsgi" else []
            idle[path] = run_path(path, extra, upstream.match.group(1), counts, args, results)
    finally:
        upstream.stop()

    command = "python bench/run.py " + shlex.join(sys.argv[1:])
    meta = (f"Machine: {os.cpu_count()} cores; server pinned to core 0, load tool and upstream on core 1. "
            f"Upstream: 640x480, 30 fps, JPEG quality 80, frames of {upstream.match.group(2)}; "
            f"server: `python -m webapp --threads {args.threads}`, relaying it. Path `sender`: the default, "
            "streams handed to the sender thread; path `wsgi`: `--no-handoff`, streams written through "
            f"waitress, a worker thread each. Each viewer count ran {args.seconds:g} s; "
            f"the slow-viewer run {args.slow_seconds:g} s.")
    text = table(results, idle, command.strip(), meta)
    publish(args.out, "run", text)


if __name__ == "__main__":
    main()
