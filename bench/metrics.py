"""What a Prometheus scrape of /metrics costs, with eight cameras streaming; writes its section of docs/benchmarks.md.

Eight test-pattern cameras at 640x480 (each held open as a detector would
hold it) and a `motion` detector on one, served by ``python -m webapp``;
``/metrics`` is fetched ``--scrapes`` times in a row, and the server's CPU
is compared with the same stretch of time without scrapes.

    python bench/metrics.py                 # about a minute
    python bench/metrics.py --scrapes 50 --out -
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
import urllib.request

from report import publish
from run import ROOT, Process, cpu_seconds, pinned

CAMERAS = 8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scrapes", type=int, default=300)
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"), help="markdown file, or - for stdout")
    args = parser.parse_args()
    command = [sys.executable, "-m", "webapp", "--port", "0", "--detect", "c0=motion"]
    for index in range(CAMERAS):
        command += ["--camera", f"c{index}=pattern"]
    server = Process(pinned(0, command), r"open http://localhost:(\d+)/", stream="stderr")
    base = f"http://127.0.0.1:{server.match.group(1)}"
    try:
        readers = [urllib.request.urlopen(f"{base}/video_feed/c{index}", timeout=10) for index in range(CAMERAS)]
        time.sleep(3)
        size = len(urllib.request.urlopen(f"{base}/metrics", timeout=10).read())
        quiet_cpu, started = cpu_seconds(server.pid), time.monotonic()
        time.sleep(5)
        baseline = (cpu_seconds(server.pid) - quiet_cpu) / (time.monotonic() - started)
        cpu, started = cpu_seconds(server.pid), time.monotonic()
        for _ in range(args.scrapes):
            urllib.request.urlopen(f"{base}/metrics", timeout=10).read()
        wall = time.monotonic() - started
        per_scrape = ((cpu_seconds(server.pid) - cpu) - baseline * wall) / args.scrapes
        for reader in readers:
            reader.close()
    finally:
        server.stop()
    text = "\n".join([
        "## What a /metrics scrape costs",
        "",
        f"Produced by `{shlex.join(['python', 'bench/metrics.py', *sys.argv[1:]])}` on {time.strftime('%Y-%m-%d')}.",
        "",
        (f"Machine: {os.cpu_count()} cores; server pinned to core 0 with {CAMERAS} pattern cameras streaming "
         f"(640x480, 30 fps, one viewer each) and `motion` on one. {args.scrapes} scrapes in a row; the server's CPU "
         "with the scrapes, less its CPU over the same time without them."),
        "",
        "| scrape size | server CPU per scrape | one scrape a second |",
        "| --- | --- | --- |",
        f"| {size / 1000:.1f} KB | {per_scrape * 1000:.2f} ms | {per_scrape * 100:.2f} % of a core |",
        "",
    ])
    publish(args.out, "metrics", text)


if __name__ == "__main__":
    main()
