"""The soak: many viewers of a camera whose upstream keeps dropping out.

Starts the bench upstream (bench/upstream.py) so that it goes away for
``--drop-for`` seconds every ``--drop-every`` seconds, a camstream server
relaying it, and ``--viewers`` viewers (bench/load.py) for ``--seconds``.
Samples the server's RSS, threads and open descriptors, and the camera's
state, and writes docs/soak.md: the numbers at the start and the end, the
longest gap any viewer saw between two frames, and how long the camera took
to stream again after each return of the upstream.

``--downloads`` is the other soak, of memory while downloads are made (issue
36): a 1920x1080 30 fps H.264 camera from GStreamer's RTSP server (as
bench/record_copy.py makes it) recorded continuously with motion events on
its 640x360 sub-stream, MSE, MJPEG and SSE viewers and an HLS reader, and a
span download and an event clip every ``--every`` seconds. It prints the RSS
once a minute and its slope in MB an hour after ``--warm-up`` (a least-squares
line through the samples); ``--no-record-copy`` records the camera as frames
(``--record-format`` jpeg or h264), whose exports are encoded. Before issue 36's
fix such a server grew 2,690 MB an hour in the short run below; after it, 29.

    python bench/soak.py                          # 10 minutes, 50 viewers
    python bench/soak.py --seconds 120 --out -
    python bench/soak.py --downloads --seconds 1800 --out -
    python bench/soak.py --downloads --no-record-copy --seconds 1800 --out -
    python bench/soak.py --downloads --no-record-copy --seconds 720 --every 30 --span 5 --event-length 5 \
        --warm-up 240 --out -                     # the short run of docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
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


def slope_mb_per_hour(samples: list[tuple[float, float]]) -> float:
    """The least-squares slope of (seconds, MB) samples, in MB an hour."""
    if len(samples) < 2:
        return float("nan")
    n = len(samples)
    mean_t = sum(t for t, _ in samples) / n
    mean_m = sum(m for _, m in samples) / n
    spread = sum((t - mean_t) ** 2 for t, _ in samples)
    if spread == 0:
        return float("nan")
    return 3600 * sum((t - mean_t) * (m - mean_m) for t, m in samples) / spread


def _hls_reader(base: str, stop: threading.Event, counts: dict) -> None:
    """Reads the HLS playlist once a second and every segment it names that it has not read yet."""
    seen: set[str] = set()
    while not stop.wait(1.0):
        try:
            with urllib.request.urlopen(f"{base}/hls/cam/index.m3u8", timeout=20) as response:
                playlist = response.read().decode()
            for line in playlist.splitlines():
                if line and not line.startswith("#") and line not in seen:
                    seen.add(line)
                    with urllib.request.urlopen(f"{base}/hls/cam/{line}", timeout=20) as response:
                        counts["hls_bytes"] = counts.get("hls_bytes", 0) + len(response.read())
        except OSError as exc:
            counts["hls_errors"] = counts.get("hls_errors", 0) + 1
            counts["hls_last_error"] = str(exc)


def _downloader(base: str, every: float, span: float, stop: threading.Event, counts: dict) -> None:
    """Every ``every`` seconds: the last ``span`` seconds of recording, then the clip of the newest ended event
    not fetched yet. Each download is read to its end and thrown away."""
    fetched: set[int] = set()
    while not stop.wait(every):
        now = time.time()
        jobs = [("span", f"{base}/api/recordings/cam.mp4?start={now - span - 5:.3f}&end={now - 5:.3f}")]
        try:
            with urllib.request.urlopen(f"{base}/api/events?camera=cam&limit=20", timeout=20) as response:
                events = json.load(response)["events"]
            ended = [event["id"] for event in events if event["end"] is not None and event["id"] not in fetched]
            if ended:
                fetched.add(ended[0])
                jobs.append(("clip", f"{base}/api/events/{ended[0]}/clip.mp4"))
        except OSError as exc:
            counts["errors"] = counts.get("errors", 0) + 1
            counts["last_error"] = str(exc)
        for kind, url in jobs:
            try:
                with urllib.request.urlopen(url, timeout=600) as response:
                    size = sum(len(chunk) for chunk in iter(lambda: response.read(1 << 20), b""))
                counts[kind] = counts.get(kind, 0) + 1
                counts[f"{kind}_mb"] = round(counts.get(f"{kind}_mb", 0) + size / 1e6, 1)
            except OSError as exc:
                counts["errors"] = counts.get("errors", 0) + 1
                counts["last_error"] = f"{kind}: {exc}"


def downloads(args: argparse.Namespace) -> str:
    """The soak of memory while downloads are made; returns the report's text."""
    from passthrough import make_source
    from record_copy import SUB, make_sub_source, rtsp_server

    main_source = Path(tempfile.gettempdir()) / "camstream-bench-1920x1080-4000000.h264"
    sub_source = Path(tempfile.gettempdir()) / f"camstream-bench-{SUB[0]}x{SUB[1]}-500000.h264"
    make_source(main_source, 10, 4_000_000)
    make_sub_source(sub_source, 10)
    camera = rtsp_server(main_source, sub_source)
    url = f"rtsp://127.0.0.1:{camera.match.group(1)}"
    folder = tempfile.mkdtemp(prefix="camstream-soak-")
    extra = ([] if args.record_copy else ["--no-record-copy"]) + ["--record-format", args.record_format]
    server = Process(pinned(0, [sys.executable, "-m", "webapp", "--port", "0", "--idle-timeout", str(IDLE_TIMEOUT),
                                "--camera", f"cam={url}/cam0", "--record", "continuous", "--detect", "motion",
                                "--detect-source", f"cam={url}/sub0", "--detect-fps", "5",
                                "--event-max-length", str(args.event_length or args.every - 10), "--storage", folder,
                                "--min-free", "0", *extra]),
                     r"open http://localhost:(\d+)/", stream="stderr")
    base = f"http://127.0.0.1:{server.match.group(1)}"
    stop, counts = threading.Event(), {}
    loads, rss, lines = [], [], []
    try:
        urllib.request.urlopen(f"{base}/snapshot/cam.jpg", timeout=30).read()
        started = time.monotonic()
        for route, mode, viewers in (("mse/cam", "ws", args.mse), ("video_feed/cam", "mjpeg", 1),
                                     ("events", "events", 1)):
            loads.append(subprocess.Popen(pinned(1, [sys.executable, str(HERE / "load.py"), f"{base}/{route}",
                                                     "--mode", mode, "--viewers", str(viewers),
                                                     "--seconds", str(args.seconds)]),
                                          stdout=subprocess.PIPE, text=True))
        workers = [threading.Thread(target=_hls_reader, args=(base, stop, counts), daemon=True),
                   threading.Thread(target=_downloader, args=(base, args.every, args.span, stop, counts),
                                    daemon=True)]
        for worker in workers:
            worker.start()
        while (elapsed := time.monotonic() - started) < args.seconds:
            rss.append((elapsed, rss_mb(server.pid)))
            if len(rss) % 6 == 1:
                line = (f"{elapsed / 60:5.1f} min  RSS {rss[-1][1]:6.1f} MB  threads {threads(server.pid)}  "
                        f"fds {descriptors(server.pid)}  {json.dumps(counts)}")
                lines.append(line)
                print(line, file=sys.stderr, flush=True)
            time.sleep(10)
        stop.set()
        for worker in workers:
            worker.join(120)  # a download still being made is not waited out
        viewers = [json.loads(load.communicate(timeout=120)[0] or "{}") for load in loads]
        time.sleep(IDLE_TIMEOUT + 5)
        idle = rss_mb(server.pid)
    finally:
        stop.set()
        server.stop()
        camera.stop()
        shutil.rmtree(folder, ignore_errors=True)
    steady = [(t, m) for t, m in rss if t >= args.warm_up]
    served = ", ".join(f"{v.get('fast', {}).get('served', '?')}/{v.get('fast', {}).get('viewers', '?')}"
                       for v in viewers)
    how = "by copy" if args.record_copy else f"as frames ({args.record_format}, --no-record-copy; exports encoded)"
    return "\n".join([
        (f"Soak of downloads, camera recorded {how}, {args.seconds / 60:g} min: a {args.span:g} s span and an "
        f"event clip every {args.every:g} s, {args.mse} MSE viewers, 1 MJPEG, 1 SSE, 1 HLS reader."),
        "", *lines, "",
        (f"RSS {rss[0][1]:.1f} MB at the start, {rss[-1][1]:.1f} MB at the end, {idle:.1f} MB after the clients "
        f"left; slope after {args.warm_up / 60:g} min: {slope_mb_per_hour(steady):.0f} MB/hour."),
        f"Downloads: {json.dumps(counts)}; viewers served (MSE, MJPEG, SSE): {served}.", ""])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--viewers", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--drop-every", type=float, default=60)
    parser.add_argument("--drop-for", type=float, default=10)
    parser.add_argument("--out", default=str(ROOT / "docs" / "soak.md"), help="markdown file, or - for stdout")
    parser.add_argument("--downloads", action="store_true",
                        help="the soak of memory while downloads are made (see above) instead")
    parser.add_argument("--no-record-copy", dest="record_copy", action="store_false",
                        help="--downloads: record the camera as frames, so that its exports are encoded")
    parser.add_argument("--record-format", choices=("jpeg", "h264"), default="jpeg",
                        help="--downloads with --no-record-copy: the format the camera is recorded in")
    parser.add_argument("--every", type=float, default=60, help="--downloads: seconds between downloads")
    parser.add_argument("--span", type=float, default=50, help="--downloads: seconds of recording a span has")
    parser.add_argument("--mse", type=int, default=5, help="--downloads: MSE viewers")
    parser.add_argument("--event-length", type=float, default=0,
                        help="--downloads: longest event, so one ends in each round (default: --every - 10)")
    parser.add_argument("--warm-up", type=float, default=180, help="--downloads: seconds before the slope")
    args = parser.parse_args()
    if args.downloads:
        text = downloads(args)
        if args.out == "-" or args.out == parser.get_default("out"):
            print(text)
        else:
            Path(args.out).write_text(text)
        return

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
