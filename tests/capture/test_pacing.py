"""The source pacer and the frame-rate cap, on a fake clock: the same answers every run."""

import random

import pytest

from camera import pacing
from camera.pacing import Pacer, RateLimit


class FakeClock:
    """Stands in for time.monotonic and time.sleep inside camera.pacing."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(pacing.time, "monotonic", fake.monotonic)
    monkeypatch.setattr(pacing.time, "sleep", fake.sleep)
    return fake


def passed(cap: RateLimit, times: list[float]) -> list[float]:
    return [t for t in times if cap.allows(t)]


def test_a_paced_source_whose_first_frame_is_late_loses_nothing_to_the_cap():
    # What the flaky test saw: the pattern's first frame takes 1.5 intervals,
    # its pacer sends the next one straight after to catch up, then runs on
    # schedule. The old cap took the late first frame as its schedule and
    # dropped the frame after the burst.
    interval = 1 / 30
    times = [1.5 * interval, 1.5 * interval + 0.0003] + [k * interval for k in range(2, 40)]
    assert passed(RateLimit(30, RateLimit.SOURCE_BURST), times) == times


def test_a_paced_source_at_the_cap_loses_no_frame_whatever_its_delays(clock):
    # The pacer and the cap together, with the capture thread held up at
    # random (up to five intervals, as a busy machine does): every frame the
    # pacer lets out passes a cap of the same rate.
    rng = random.Random(9)
    for fps in (5, 15, 30, 60):
        pacer, cap = Pacer(fps), RateLimit(fps, RateLimit.SOURCE_BURST)
        interval = 1 / fps
        for _ in range(5000):
            pacer.wait()
            clock.now += rng.choice([0.0, 0.1, 0.5, 0.9, 1.2, 1.9, 2.5, 5.0]) * interval * rng.random()
            assert cap.allows(clock.now), f"a {fps} fps source lost a frame to a {fps} fps cap"
            clock.now += rng.random() * 0.2 * interval


@pytest.mark.parametrize("burst", [RateLimit.SOURCE_BURST, RateLimit.VIEWER_BURST])
@pytest.mark.parametrize("source_fps, cap_fps", [(60, 30), (30, 10), (30, 15), (25, 7.5), (120, 5)])
def test_a_faster_source_is_thinned_to_the_cap(source_fps, cap_fps, burst):
    rng = random.Random(source_fps * 1000 + cap_fps)
    seconds = 60
    times = [k / source_fps + rng.uniform(0, 0.2) / source_fps for k in range(seconds * source_fps)]
    kept = passed(RateLimit(cap_fps, burst), times)
    # The long-run rate is the cap's, give or take the frames of burst allowance.
    assert abs(len(kept) - seconds * cap_fps) <= burst + 1
    # ...and no window of a second holds more than the cap plus that burst.
    for start in range(len(kept)):
        window = [t for t in kept[start:start + int(cap_fps) + 4] if t - kept[start] < 1.0]
        assert len(window) <= cap_fps + burst + 1


def test_a_viewers_cap_sends_no_burst_when_it_starts():
    times = [k / 30 for k in range(300)]
    kept = [round(t * 30) for t in passed(RateLimit(5), times)]
    assert kept[:4] == [0, 5, 11, 17], "a quarter interval early at most, then on schedule"
    assert len(kept) == 51, "one every 6 frames after the first"


def test_no_cap_passes_everything():
    cap = RateLimit(None)
    assert all(cap.allows(t / 1000) for t in range(100))


def test_the_pacer_keeps_its_schedule_and_starts_a_new_one_when_far_behind(clock):
    pacer = Pacer(10)
    ticks = []
    for k in range(6):
        pacer.wait()
        ticks.append(round(clock.now - 1000.0, 6))
        if k == 2:
            clock.now += 0.15  # late by half an interval: caught up at once
        if k == 4:
            clock.now += 0.35  # late by more than an interval: a new schedule
    assert ticks[:5] == [0.0, 0.1, 0.2, 0.35, 0.4]
    assert ticks[5] == pytest.approx(0.75)
