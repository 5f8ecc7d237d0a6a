"""Streaming from FastAPI: the tutorial version, camstream's FastAPI example and camstream's own server.

One camera relaying bench/upstream.py (640x480, 30 fps). Each server runs
pinned to core 0; the load tool and the upstream share core 1. Side by side
in one run, each server gets 50, 200 and 500 viewers, one of them slow
(reading 200 KB/s through an 8 KB receive buffer, like a phone on weak
Wi-Fi). Writes its section of docs/benchmarks.md.

    python bench/frameworks.py                 # about 5 minutes
    python bench/frameworks.py --viewers 20 --seconds 5 --out -
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

from report import publish
from run import HERE, ROOT, Process, cpu_seconds, pinned

SERVERS = (
    "tutorial: sync generator, uvicorn",
    "FastAPI example, uvicorn",
    "FastAPI example, uvicorn --http examples.lowlatency:H11Protocol",
    "camstream's own server",
)
UVICORN_LISTENING = r"Uvicorn running on http://127\.0\.0\.1:(\d+)"


def start(index: int) -> tuple[Process, str]:
    """Start server ``index`` of :data:`SERVERS` on core 0; the upstream's URL is in the environment."""
    uvicorn = [sys.executable, "-m", "uvicorn", "--port", "0", "--log-level", "info", "--no-access-log"]
    if index == 0:
        command, pattern = [*uvicorn, "--app-dir", str(HERE), "tutorial_fastapi:app"], UVICORN_LISTENING
    elif index == 1:
        command, pattern = [*uvicorn, "examples.fastapi_app:app"], UVICORN_LISTENING
    elif index == 2:
        command = [*uvicorn, "--http", "examples.lowlatency:H11Protocol", "examples.fastapi_app:app"]
        pattern = UVICORN_LISTENING
    else:
        command = [sys.executable, "-m", "webapp", "--port", "0", "--threads", "64",
                   "--source", os.environ["CAMSTREAM_SOURCE"]]
        pattern = r"open http://localhost:(\d+)/"
    server = Process(pinned(0, command), pattern, stream="stderr")
    return server, f"http://127.0.0.1:{server.match.group(1)}"


def load(url: str, viewers: int, seconds: float) -> dict:
    command = pinned(1, [sys.executable, str(HERE / "load.py"), url, "--viewers", str(viewers), "--slow", "1",
                         "--seconds", str(seconds)])
    result = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 180, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"load tool failed: {result.stderr.strip()}")
    return json.loads(result.stdout)


def measure(index: int, counts: list[int], seconds: float) -> list[dict]:
    server, base = start(index)
    rows = []
    try:
        urllib.request.urlopen(base + "/video_feed", timeout=10).read(100_000)
        time.sleep(1)
        for count in counts:
            before, started = cpu_seconds(server.pid), time.monotonic()
            summary = load(base + "/video_feed", count, seconds)
            cpu = 100 * (cpu_seconds(server.pid) - before) / (time.monotonic() - started)
            rows.append({"server": SERVERS[index], "viewers": count, "cpu": round(cpu, 1), **summary})
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    finally:
        server.stop()
    return rows


def row(result: dict) -> str:
    fast, slow = result["fast"] or {}, result["slow"] or {}
    return (f"| {result['server']} | {result['viewers']} | {fast.get('served')}/{fast.get('viewers')} "
            f"| {fast.get('fps_median')} | {fast.get('fps_p5')} | {fast.get('age_ms_p50')} / {fast.get('age_ms_p99')} "
            f"| {slow.get('fps_median')} | {slow.get('age_ms_p50')} / {slow.get('age_ms_max')} | {result['cpu']} "
            f"| {result['client_cpu_percent']} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--viewers", default="50,200,500", help="comma-separated viewer counts, the slow one included")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"), help="markdown file, or - for stdout")
    args = parser.parse_args()
    counts = [int(n) for n in args.viewers.split(",") if n]
    upstream = Process(pinned(1, [sys.executable, str(HERE / "upstream.py"), "--port", "0"]), r"READY (\d+) frames (.*)")
    try:
        url = f"http://127.0.0.1:{upstream.match.group(1)}/"
        # Every server's children read these: the tutorial its UPSTREAM, the example CAMSTREAM_SOURCE.
        os.environ.update(PYTHONPATH=str(ROOT), UPSTREAM=url, CAMSTREAM_SOURCE=url)
        results = [result for index in range(len(SERVERS)) for result in measure(index, counts, args.seconds)]
    finally:
        upstream.stop()
    command = "python bench/frameworks.py " + shlex.join(sys.argv[1:])
    text = "\n".join([
        "## Streaming from FastAPI: the tutorial version, the example, camstream's server",
        "",
        f"Produced by `{command.strip()}` on {time.strftime('%Y-%m-%d')}.",
        "",
        (f"Machine: {os.cpu_count()} cores; each server pinned to core 0, the load tool and the upstream on core 1. "
         f"One camera relaying the upstream (640x480, 30 fps, frames of {upstream.match.group(2)}). "
         "The tutorial version is bench/tutorial_fastapi.py (the widely copied FastAPI port of the BaseCamera "
         "example: a sync generator per viewer, each frame fetched in one of anyio's 40 worker threads); the "
         "example is examples/fastapi_app.py (camera.viewers.aio), under plain uvicorn and with examples/lowlatency.py's "
         "protocol (at most 16 KB unsent per connection). Each count includes one slow "
         f"viewer (200 KB/s); each ran {args.seconds:g} s. Age: arrival minus capture (or upstream send) time."),
        "",
        ("| server | viewers | fast viewers served | fps median | fps p5 | age p50 / p99 (ms) | slow viewer fps "
         "| slow viewer age p50 / max (ms) | server CPU % | load tool CPU % |"),
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        *(row(result) for result in results),
        "",
    ])
    publish(args.out, "frameworks", text)


if __name__ == "__main__":
    main()
