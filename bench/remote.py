"""Beyond one box: detectors on other processes through NATS, and HLS viewers through a caching nginx.

Writes its section of docs/benchmarks.md. Debian's nats-server and nginx, camstream (``python -m webapp``)
pinned to core 0, everything else (broker, workers, proxy, clients) on core 1.

1. Eight 10 fps test-pattern cameras detected at 5 runs a second each (40 a second in all) by a detector
   that takes 100 ms a frame (it sleeps: a GPU on another machine), run by 1, 2, 4 and 8 ``camstream worker``
   processes of one group: results a second, result age (frame to result, p50 and p99), timeouts; and
   camstream's CPU sending the frames through NATS, against running the same detector locally (a worker
   process per camera).
2. 1000 HLS readers of one 640x360 H.264 camera (GStreamer's RTSP server), each starting at the live edge
   and asking for the playlist every second and for every new segment: straight at camstream, and through
   nginx configured by examples/nginx/camstream.conf. camstream's CPU, and the requests that reached it.

    python bench/remote.py                  # about 3 minutes
    python bench/remote.py --seconds 5 --readers 200 --out -
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from passthrough import rtsp_server
from record_copy import make_sub_source, tree_cpu_seconds
from report import publish
from run import ROOT, Process, pinned

CAMERAS, CAMERA_FPS, DETECT_FPS = 8, 10, 5
WARM_UP = 6.0


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def statuses(base: str) -> list[dict]:
    return json.loads(urllib.request.urlopen(f"{base}/api/cameras", timeout=10).read())["cameras"]


def measure_detection(base: str, pid: int, seconds: float) -> dict:
    before, cpu_before, started = statuses(base), tree_cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - started
    cpu = 100 * (tree_cpu_seconds(pid) - cpu_before) / elapsed
    after = statuses(base)
    results = sum(a["detection"]["results"] - b["detection"]["results"] for a, b in zip(after, before, strict=True))
    remote = [camera["detection"].get("remote") or {} for camera in after]
    p50 = [camera["detection"]["result_age_ms"] for camera in after if camera["detection"]["result_age_ms"]]
    p99 = [camera["detection"]["result_age_p99_ms"] for camera in after if camera["detection"]["result_age_p99_ms"]]
    timeouts = sum(r.get("timeouts", 0) for r in remote) - sum(
        (camera["detection"].get("remote") or {}).get("timeouts", 0) for camera in before)
    return {"cpu": cpu, "results": results / elapsed, "p50": statistics.median(p50) if p50 else None,
            "p99": max(p99) if p99 else None, "timeouts": timeouts}


def detection_rows(args: argparse.Namespace) -> list[str]:
    port = free_port()
    broker = subprocess.Popen(pinned(1, [shutil.which("nats-server") or "/usr/sbin/nats-server", "-a", "127.0.0.1",
                                         "-p", str(port)]), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"nats://127.0.0.1:{port}"
    cameras = [arg for index in range(CAMERAS) for arg in ("--camera", f"cam{index}=pattern")]
    common = [sys.executable, "-m", "webapp", "--port", "0", *cameras, "--fps", str(CAMERA_FPS),
              "--detect-fps", str(DETECT_FPS)]
    rows = []
    try:
        remote = [arg for index in range(CAMERAS) for arg in ("--detect", f"cam{index}=remote:bench")]
        server = Process(pinned(0, [*common, *remote, "--broker", url]), r"open http://localhost:(\d+)/",
                         stream="stderr")
        workers: list[Process] = []
        try:
            base = f"http://127.0.0.1:{server.match.group(1)}"
            for count in (1, 2, 4, 8):
                while len(workers) < count:
                    workers.append(Process(pinned(1, [sys.executable, "-m", "webapp", "worker", "--broker", url,
                                                      "--group", "bench", "--detect", "bench.detectors:sleep_100ms"]),
                                           "answers group", stream="stderr"))
                time.sleep(WARM_UP)
                found = measure_detection(base, server.pid, args.seconds)
                rows.append((f"{count} worker(s) through NATS", found))
        finally:
            for worker in workers:
                worker.stop()
            server.stop()
        local = [arg for index in range(CAMERAS) for arg in ("--detect", f"cam{index}=bench.detectors:sleep_100ms")]
        server = Process(pinned(0, [*common, *local]), r"open http://localhost:(\d+)/", stream="stderr")
        try:
            time.sleep(WARM_UP)
            found = measure_detection(f"http://127.0.0.1:{server.match.group(1)}", server.pid, args.seconds)
            rows.append(("local: a worker process per camera", found))
        finally:
            server.stop()
    finally:
        broker.kill()
    lines = [(f"{CAMERAS} test-pattern cameras at {CAMERA_FPS} fps, each detected {DETECT_FPS} times a second "
              f"({CAMERAS * DETECT_FPS} a second asked for) by a detector of 100 ms a frame (sleeping), "
              f"--remote-in-flight 2; CPU is camstream's with its local workers (none when remote), on core 0."), "",
             "| detector | results/s | result age p50 | p99 | timeouts | camstream CPU % |",
             "| --- | --- | --- | --- | --- | --- |"]
    for label, found in rows:
        p50 = f"{found['p50']:.0f} ms" if found["p50"] is not None else "-"
        p99 = f"{found['p99']:.0f} ms" if found["p99"] is not None else "-"
        lines.append(f"| {label} | {found['results']:.1f} | {p50} | {p99} | {found['timeouts']} | {found['cpu']:.1f} |")
    return lines


async def hls_reader(port: int, path: str, stop_at: float, counts: dict) -> None:
    """One player: the playlist every second, each new segment once, on one keep-alive connection."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        counts["errors"] += 1
        return
    seen: set[str] = set()

    async def get(target: str) -> bytes:
        writer.write(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = int(re.search(rb"(?i)content-length: *(\d+)", head)[1])
        body = await reader.readexactly(length)
        if status != 200:
            raise OSError(f"{status} for {target}")
        return body

    try:
        while time.monotonic() < stop_at:
            playlist = (await get(f"{path}/index.m3u8")).decode()
            counts["playlists"] += 1
            names = re.findall(r'URI="([^"]+)"', playlist) + [line for line in playlist.splitlines()
                                                               if line and not line.startswith("#")]
            if not seen:  # a player starts at the live edge: the init segment and the newest segment
                seen.update(name for name in names[1:-1])
            for name in names:
                if name not in seen:
                    body = await get(f"{path}/{name}")  # awaited first: += around an await loses others' counts
                    counts["bytes"] += len(body)
                    counts["segments"] += 1
                    seen.add(name)
            await asyncio.sleep(1.0)
    except (OSError, asyncio.IncompleteReadError, TypeError) as exc:
        counts["errors"] += 1
        counts["last_error"] = repr(exc)[:200]
    finally:
        writer.close()


def readers(port: int, count: int, seconds: float) -> dict:
    counts = {"playlists": 0, "segments": 0, "bytes": 0, "errors": 0}

    async def run() -> None:
        stop_at = time.monotonic() + seconds
        await asyncio.gather(*(hls_reader(port, "/hls/cam", stop_at, counts) for _ in range(count)))

    asyncio.run(run())
    return counts


def start_nginx(folder: Path, upstream: int) -> tuple[subprocess.Popen, int]:
    port = free_port()
    site = (ROOT / "examples" / "nginx" / "camstream.conf").read_text()
    site = site.replace("127.0.0.1:8000", f"127.0.0.1:{upstream}").replace("listen 8080", f"listen 127.0.0.1:{port}")
    site = site.replace("/var/cache/nginx/camstream", str(folder / "cache"))
    (folder / "camstream.conf").write_text(site)
    temp = " ".join(f"{kind}_temp_path {folder / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (folder / "nginx.conf").write_text(
        ("user root;\n" if os.geteuid() == 0 else "")
        + f"worker_processes 1;\ndaemon off;\npid {folder / 'nginx.pid'};\nerror_log {folder / 'error.log'} warn;\n"
        f"worker_rlimit_nofile 8192;\nevents {{ worker_connections 4096; }}\nhttp {{\n"
        f" log_format cache '$upstream_addr';\n access_log {folder / 'access.log'} cache;\n {temp}\n"
        f" include {folder / 'camstream.conf'};\n}}\n")
    process = subprocess.Popen(pinned(1, [shutil.which("nginx") or "/usr/sbin/nginx", "-c", str(folder / "nginx.conf"),
                                          "-p", str(folder)]), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).read()
            return process, port
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("nginx did not start")


def hls_rows(args: argparse.Namespace) -> list[str]:
    source = Path(tempfile.gettempdir()) / "camstream-bench-640x360-500000.h264"
    make_sub_source(source, 10)
    camera = rtsp_server(source)
    url = f"rtsp://127.0.0.1:{camera.match.group(1)}/cam"
    rows = []
    try:
        server = Process(pinned(0, [sys.executable, "-m", "webapp", "--port", "0", "--camera", f"cam={url}",
                                    "--idle-timeout", "60"]), r"open http://localhost:(\d+)/", stream="stderr")
        try:
            upstream = int(server.match.group(1))
            urllib.request.urlopen(f"http://127.0.0.1:{upstream}/hls/cam/index.m3u8", timeout=30).read()
            time.sleep(WARM_UP)
            with tempfile.TemporaryDirectory() as folder:
                nginx, proxy = start_nginx(Path(folder), upstream)
                try:
                    for label, port in (("straight at camstream", upstream), ("through nginx", proxy)):
                        before = tree_cpu_seconds(server.pid)
                        started = time.monotonic()
                        counts = readers(port, args.readers, args.seconds)
                        cpu = 100 * (tree_cpu_seconds(server.pid) - before) / (time.monotonic() - started)
                        reached = None
                        if port == proxy:
                            # A request nginx passed on names the upstream it went to; one served from the cache, "-".
                            log = (Path(folder) / "access.log").read_text().split()
                            reached = sum(address != "-" for address in log)
                        rows.append((label, cpu, counts, reached))
                finally:
                    nginx.terminate()
                    nginx.wait(10)
        finally:
            server.stop()
    finally:
        camera.stop()
    lines = [(f"{args.readers} HLS readers of one 640x360 30 fps 0.5 Mbit/s H.264 camera (a sub-stream: the "
              f"readers' own Python, on core 1, cannot take {args.readers} times 4 Mbit/s) for {args.seconds:g} s, "
              "each starting at the live edge and then asking for the playlist every second and for each new "
              "segment (asyncio, one keep-alive connection each); camstream on core 0."), "",
             "| readers | camstream CPU % | playlists | segments | MB | requests reaching camstream | errors |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for label, cpu, counts, reached in rows:
        total = counts["playlists"] + counts["segments"]
        lines.append(f"| {label} | {cpu:.1f} | {counts['playlists']} | {counts['segments']} | "
                     f"{counts['bytes'] / 1e6:.0f} | {total if reached is None else reached} | {counts['errors']} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--readers", type=int, default=1000)
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    args = parser.parse_args()
    os.sched_setaffinity(0, {1})
    text = "\n".join(detection_rows(args)) + "\n\n" + "\n".join(hls_rows(args))
    publish(args.out, "remote", f"`python bench/remote.py --seconds {args.seconds:g} --readers {args.readers}`\n\n"
            + text)


if __name__ == "__main__":
    main()
