"""The benchmark tools still work: a short real run of each, with small numbers."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from camera import PatternCamera
from webapp import create_app

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
# The benches pin their servers to core 0 for steady numbers; a short run beside the rest of the suite must not.
UNPINNED = {**os.environ, "BENCH_PIN": "0"}


def test_the_load_tool_measures_fast_and_slow_viewers(serve):
    base = serve(create_app({"CAMERAS": {"cam": PatternCamera("cam", fps=30)}}))
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "load.py"), f"{base}/video_feed/cam",
         "--viewers", "4", "--slow", "1", "--slow-rate", "100000", "--seconds", "3"],
        capture_output=True, text=True, timeout=60, env=UNPINNED, check=True,
    )
    summary = json.loads(result.stdout)
    fast, slow = summary["fast"], summary["slow"]
    assert (fast["viewers"], fast["served"], fast["errors"]) == (3, 3, 0)
    assert fast["fps_median"] > 5 and fast["age_ms_p50"] is not None
    assert (slow["viewers"], slow["served"], slow["errors"]) == (1, 1, 0)
    assert slow["mb_per_s"] < 0.2, "the slow viewer's read rate is capped"


def test_the_load_tool_only_targets_loopback():
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "load.py"), "http://192.0.2.1/video_feed", "--seconds", "1"],
        capture_output=True, text=True, timeout=60, env=UNPINNED, check=False,
    )
    assert result.returncode != 0 and "loopback" in result.stderr


def test_the_runner_writes_a_table(tmp_path):
    out = tmp_path / "benchmarks.md"
    subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--viewers", "2", "--seconds", "1.5",
         "--slow-seconds", "1.5", "--slow-fast-viewers", "2", "--paths", "sender", "--threads", "16",
         "--idle-seconds", "0.5", "--out", str(out)],
        capture_output=True, text=True, timeout=180, env=UNPINNED, check=True, cwd=ROOT,
    )
    text = out.read_text()
    assert "Produced by `python bench/run.py --viewers 2" in text
    assert "| sender | 2 viewers | 2/2 |" in text
    assert "the slow viewer" in text and "server CPU: sender" in text


def test_the_connection_run_compares_both_servers():
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "connections.py"), "--idle", "10", "--slow", "2", "--requests", "2",
         "--hold", "0.5", "--burst", "5", "--out", "-"],
        capture_output=True, text=True, timeout=120, env=UNPINNED, check=True,
    )
    rows = [line for line in result.stdout.splitlines() if line.startswith(("| camstream", "| waitress-serve"))]
    assert len(rows) == 4, result.stdout
    # Small numbers: both servers answer every page load, and all five requests get a stream.
    assert all("no answer" not in row for row in rows[:2])
    assert rows[2].split("|")[2].strip() == "5" and rows[3].split("|")[2].strip() == "5"


def test_the_detection_bench_writes_its_section_and_keeps_the_others(tmp_path):
    out = tmp_path / "benchmarks.md"
    out.write_text("# Benchmarks\n\n<!-- begin run -->\nthe streaming table\n<!-- end run -->\n")
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "detect.py"), "--viewers", "2", "--seconds", "1", "--rounds", "1",
         "--out", str(out)],
        capture_output=True, text=True, timeout=180, env=UNPINNED, cwd=ROOT, check=False,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    text = out.read_text()
    assert "<!-- begin run -->\nthe streaming table\n<!-- end run -->" in text
    rows = {line.split(" | ")[1]: line for line in text.splitlines() if line.startswith("| 1 | ")}
    assert rows["none"].startswith("| 1 | none | 2/2 |")
    assert rows["motion"].startswith("| 1 | motion | 2/2 |")
    # The burner ran: it reported results (the bench waits for the first), and they took at least its 150 ms
    # each. How many came in the second measured depends on how busy the machine is.
    cells = rows["burn 150 ms"].split(" | ")
    assert cells[2] == "2/2" and float(cells[9]) >= 0 and float(cells[10].split(" / ")[0]) >= 150
    assert "Medians over the rounds" in text


def test_the_live_bench_runs_every_kind_of_viewer_at_once(tmp_path):
    out = tmp_path / "benchmarks.md"
    subprocess.run(
        [sys.executable, str(ROOT / "bench" / "live.py"), "--scale", "0.02", "--seconds", "1.5", "--out", str(out)],
        capture_output=True, text=True, timeout=180, env=UNPINNED, check=True, cwd=ROOT,
    )
    rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ") for line in out.read_text().splitlines()
            if line.startswith("| ") and not line.startswith("| ---")}
    for name, served in (("2 MJPEG", "2/2"), ("1 overlay", "1/1"), ("1 WebSocket", "1/1"),
                         ("1 slow WebSocket (200 KB/s)", "1/1"), ("1 events", "1/1")):
        assert rows[name][1] == served, rows[name]
    assert float(rows["1 WebSocket"][2]) > 0, "WebSocket frames arrived"
    assert float(rows["1 events"][5]) > 0, "events arrived"
    still = rows["still scene, no viewers, `motion+` a 150 ms detector"]
    assert int(still[4].rstrip(" |")) > 0, "the gate kept frames from the detector"


def test_the_auth_bench_compares_every_way_of_signing_in(tmp_path):
    out = tmp_path / "benchmarks.md"
    subprocess.run([sys.executable, str(ROOT / "bench" / "auth.py"), "--requests", "5", "--out", str(out)],
                   capture_output=True, text=True, timeout=180, env=UNPINNED, check=True, cwd=ROOT)
    rows = [line.split(" | ")[0].lstrip("| ") for line in out.read_text().splitlines()
            if line.startswith("| ") and "snapshots per second" not in line and "---" not in line]
    assert rows == ["open server, anonymous", "HTTP Basic (checked once, remembered)", "?token=", "session cookie"]


def test_the_frame_age_bench_matches_frames_at_every_client():
    # Importing the RTSP tests skips this one on a machine without GStreamer's RTSP server (and fails in CI).
    import tests.passthrough.test_rtsp  # noqa: F401

    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "frame_age.py"), "--seconds", "3", "--warm-up", "2",
         "--size", "320x240", "--bitrate", "400000", "--out", "-"],
        capture_output=True, text=True, timeout=120, env=UNPINNED, check=True, cwd=ROOT,
    )
    rows = {tuple(cell.strip() for cell in line.split("|")[1:3]): [cell.strip() for cell in line.split("|")[3:-1]]
            for line in result.stdout.splitlines() if line.startswith("| ") and "---" not in line}
    for client in ("plain PyAV reader, `container.demux()` yields it", "camstream, this checkout, its /mse fragment"):
        others = rows[(client, "other frames")]
        # Small numbers: the raw RTP client's frames are found again, by their bytes, at each client.
        assert int(others[3]) > int(others[4]), result.stdout
        assert float(others[0]) >= 0
