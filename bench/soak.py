"""The soak: many viewers of a camera whose upstream keeps dropping out.

Starts the bench upstream (bench/upstream.py) so that it goes away for
``--drop-for`` seconds every ``--drop-every`` seconds, a camstream server
relaying it, and ``--viewers`` viewers (bench/load.py) for ``--seconds``.
Samples the server's RSS, threads and open descriptors, and the camera's
state, and writes docs/soak.md: the numbers at the start and the end, the
longest gap any viewer saw between two frames, and how long the camera took
to stream again after each return of the upstream.

    python bench/soak.py                          # 10 minutes, 50 viewers
    python bench/soak.py --seconds 120 --out -
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from run import HERE, ROOT, Process, cpu_seconds, pinned, rss_mb, threads

IDLE_TIMEOUT = 3


def descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


class Recorder:
    """Samples the server and its camera's state once a second."""

    def __init__(self, pid: int, status_url: str) -> None:
        self.pid = pid
        self.status_url = status_url
        self.samples: list[dict] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def sample(self) -> dict:
        try:
            with urllib.request.urlopen(self.status_url, timeout=5) as response:
                state = json.load(response)["state"]
        except OSError as exc:
            state = f"status failed: {exc}"
        return {"t": time.time(), "rss_mb": rss_mb(self.pid), "threads": threads(self.pid),
                "fds": descriptors(self.pid), "state": state}

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            self.samples.append(self.sample())

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def recoveries(samples: list[dict], ups: list[float]) -> list[float]:
    """Seconds from each return of the upstream to the first sample that shows the camera streaming."""
    result = []
    for up in ups:
        later = [s["t"] for s in samples if s["t"] >= up and s["state"] == "streaming"]
        if later:
            result.append(round(later[0] - up, 1))
    return result


def report(command: str, args: argparse.Namespace, load: dict, start: dict, end: dict, idle: dict,
           downs: list[float], ups: list[float], recovered: list[float], states: list[str], cpu: float) -> str:
    viewers = load["fast"]
    rows = [("", "start", "end", "after the viewers left")]
    for key, label in (("rss_mb", "RSS (MB)"), ("threads", "threads"), ("fds", "open descriptors")):
        rows.append((label, *(f"{s[key]:.1f}" if key == "rss_mb" else str(s[key]) for s in (start, end, idle))))
    lines = [
        "# Soak",
        "",
        (f"Produced by `{command}` on {time.strftime('%Y-%m-%d')}: {args.viewers} viewers for {args.seconds:g} s "
        f"of one camera relaying the bench upstream (640x480, 30 fps), which went away for {args.drop_for:g} s "
        f"every {args.drop_every:g} s ({len(downs)} drops). Server pinned to core 0, the rest on core 1."),
        "",
        "| | " + " | ".join(rows[0][1:]) + " |",
        "| --- | --- | --- | --- |",
        *("| " + " | ".join(row) + " |" for row in rows[1:]),
        "",
        (f"- Viewers served: {viewers['served']}/{viewers['viewers']}, errors: {viewers['errors']}, "
        f"refused: {viewers['refused']}; median {viewers['fps_median']} fps over the whole run, drops included."),
        (f"- Longest gap any viewer saw between two frames: {viewers['longest_gap_ms']} ms "
        "(during a drop viewers get a \"no signal\" frame each second)."),
        (f"- Time from the upstream's return to the camera streaming again (1 s sampling): "
        f"{', '.join(f'{r:g} s' for r in recovered) or '–'}."),
        f"- Camera states seen: {', '.join(sorted(set(states)))}.",
        f"- Server CPU over the run: {cpu} %.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--viewers", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--drop-every", type=float, default=60)
    parser.add_argument("--drop-for", type=float, default=10)
    parser.add_argument("--out", default=str(ROOT / "docs" / "soak.md"), help="markdown file, or - for stdout")
    args = parser.parse_args()

    upstream = Process(pinned(1, [sys.executable, str(HERE / "upstream.py"), "--port", "0", "--drop-every",
                                  str(args.drop_every), "--drop-for", str(args.drop_for)]), r"READY (\d+)")
    server = Process(
        pinned(0, [sys.executable, "-m", "webapp", "--port", "0", "--idle-timeout", str(IDLE_TIMEOUT),
                   "--camera", f"cam=http://127.0.0.1:{upstream.match.group(1)}/"]),
        r"open http://localhost:(\d+)/", stream="stderr",
    )
    base = f"http://127.0.0.1:{server.match.group(1)}"
    try:
        urllib.request.urlopen(f"{base}/snapshot/cam.jpg", timeout=10).read()
        recorder = Recorder(server.pid, f"{base}/api/cameras/cam")
        command = pinned(1, [sys.executable, str(HERE / "load.py"), f"{base}/video_feed/cam",
                             "--viewers", str(args.viewers), "--seconds", str(args.seconds)])
        load_process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        time.sleep(10)
        start = recorder.sample()
        cpu_before, started = cpu_seconds(server.pid), time.monotonic()
        out, _ = load_process.communicate(timeout=args.seconds + 120)
        cpu = round(100 * (cpu_seconds(server.pid) - cpu_before) / (time.monotonic() - started), 1)
        end = recorder.samples[-2] if len(recorder.samples) > 1 else recorder.sample()
        time.sleep(IDLE_TIMEOUT + 3)
        idle = recorder.sample()
        recorder.stop()
    finally:
        server.stop()
        upstream.stop()
    load = json.loads(out)
    print(json.dumps({"load": load, "start": start, "end": end, "idle": idle}), file=sys.stderr)
    downs = [float(line.split()[1]) for line in upstream.lines if line.startswith("DOWN")]
    ups = [float(line.split()[1]) for line in upstream.lines if line.startswith("UP")]
    states = [s["state"] for s in recorder.samples]
    text = report("python bench/soak.py " + shlex.join(sys.argv[1:]), args, load, start, end, idle,
                  downs, ups, recoveries(recorder.samples, ups), states, cpu)
    if args.out == "-":
        print(text)
    else:
        Path(args.out).write_text(text)
        print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
