"""bench/soak.py --downloads reports memory growth as the slope of its RSS samples, in MB an hour."""

import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from soak import slope_mb_per_hour  # the bench's folder is its import root


def test_the_slope_is_mb_an_hour_and_steps_or_noise_do_not_fool_it():
    assert slope_mb_per_hour([(t, 300.0) for t in range(0, 1200, 10)]) == 0
    assert round(slope_mb_per_hour([(t, 300 + t / 60) for t in range(0, 1200, 10)])) == 60  # 1 MB a minute
    steps = [(t, 300 + 10 * (t // 60)) for t in range(0, 1200, 10)]  # 10 MB at each minute: 600 MB an hour
    assert 550 < slope_mb_per_hour(steps) < 650
    assert math.isnan(slope_mb_per_hour([(0, 1.0)]))
