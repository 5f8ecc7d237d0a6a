"""bench/webrtc.py still works: a short real run, a small camera, one viewer of each path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def test_the_webrtc_bench_measures_both_paths_and_the_send_delay():
    import tests.passthrough.test_rtsp  # noqa: F401 - skips without GStreamer's RTSP server

    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "webrtc.py"), "--seconds", "2", "--warm-up", "4", "--counts", "1",
         "--size", "320x240", "--bitrate", "300000", "--out", "-"],
        capture_output=True, text=True, timeout=180, env={**os.environ, "BENCH_PIN": "0"}, check=True, cwd=ROOT)
    rows = {cells[1]: cells for cells in ([cell.strip() for cell in line.split("|")[1:-1]]
                                          for line in result.stdout.splitlines()
                                          if line.startswith("| 1 "))}
    assert set(rows) == {"MSE", "WebRTC"}, result.stdout
    assert int(rows["MSE"][3].split()[0]) > 0 and int(rows["WebRTC"][3].split()[0]) > 0, result.stdout
    webrtc = rows["WebRTC"]
    assert len(webrtc) == 9 and float(webrtc[5]) > 0 and float(webrtc[6]) > 0, result.stdout
    assert webrtc[7].count("/") == 2, result.stdout  # the send delay's p50 / p99 / max
