"""GET /metrics: Prometheus's text format, read back with prometheus-client's own parser."""

import urllib.request

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from prometheus_client.parser import text_string_to_metric_families

from camera import HttpCamera
from tests.helpers import MjpegReader, UpstreamServer, get, make_jpeg, wait_until
from tests.sources import SceneCamera


def scrape(url: str) -> dict[tuple[str, tuple], float]:
    """Every sample as {(name, sorted labels): value}."""
    status, headers, body = get(url + "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(body.decode()):
        assert family.name.startswith("camstream_")
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


@pytest.fixture
def site(serve_app):
    return serve_app({"CAMERAS": {"scene": SceneCamera(rate=20), "other": SceneCamera("other", rate=20)},
                      "DETECT": {"scene": "motion"}, "DETECT_FPS": 10})


def test_cameras_detectors_and_the_server_are_counted(site):
    assert wait_until(lambda: value(scrape(site), "camstream_detection_runs_total", camera="scene") >= 5, 20)
    with MjpegReader(site + "/video_feed/scene") as reader:
        reader.read(5)
        during = scrape(site)
        assert value(during, "camstream_camera_viewers", camera="scene") == 1
        assert value(during, "camstream_streams_open") == 1
    assert value(during, "camstream_camera_state", camera="scene", state="streaming") == 1
    assert value(during, "camstream_camera_state", camera="scene", state="idle") == 0
    assert value(during, "camstream_camera_state", camera="other", state="idle") == 1
    assert value(during, "camstream_camera_frames_published_total", camera="scene") >= 5
    assert value(during, "camstream_camera_fps", camera="scene") > 0
    assert 0 <= value(during, "camstream_camera_last_frame_age_seconds", camera="scene") < 60
    assert ("camstream_camera_last_frame_age_seconds", (("camera", "other"),)) not in during, "no frame yet"
    assert value(during, "camstream_sent_bytes_total") > 5 * 1000
    runs = value(during, "camstream_detection_runs_total", camera="scene")
    observed = value(during, "camstream_detection_inference_seconds_count", camera="scene")
    assert abs(runs - observed) <= 1, "every result is in the histogram"
    assert value(during, "camstream_detection_inference_seconds_bucket", camera="scene", le="+Inf") == observed
    assert value(during, "camstream_detection_up", camera="scene") == 1
    # Counters only go up.
    after = scrape(site)
    for key, number in during.items():
        if key[0].endswith("_total"):
            assert after[key] >= number, key


def test_reconnects_are_counted(serve_app):
    jpegs = [make_jpeg(i) for i in range(5)]
    with UpstreamServer(jpegs, fps=20) as upstream:
        url = serve_app({"CAMERAS": {"door": HttpCamera("door", upstream.url, stall_timeout=1.0)}})
        with MjpegReader(url + "/video_feed/door") as reader:
            reader.read(3)
            assert value(scrape(url), "camstream_camera_reconnects_total", camera="door") == 0
            upstream.down()
            assert wait_until(lambda: value(scrape(url), "camstream_camera_state", camera="door",
                                            state="reconnecting") == 1, 15)
            upstream.up()
            assert wait_until(lambda: value(scrape(url), "camstream_camera_state", camera="door",
                                            state="streaming") == 1, 20)
        assert value(scrape(url), "camstream_camera_reconnects_total", camera="door") == 1


def test_recording_is_counted(serve_app, tmp_path):
    url = serve_app({"CAMERAS": {"yard": SceneCamera("yard", rate=10)}, "RECORD": "yard=continuous",
                     "STORAGE": str(tmp_path / "store"), "MIN_FREE": 0})
    assert wait_until(lambda: value(scrape(url), "camstream_recording_written_bytes_total", camera="yard") > 0, 20)
    samples = scrape(url)
    assert value(samples, "camstream_recording_paused", camera="yard") == 0
    assert value(samples, "camstream_events_total", camera="yard") == 0


def test_openmetrics_when_asked_for(site):
    request = urllib.request.Request(site + "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers["Content-Type"].startswith("application/openmetrics-text")
        families = list(openmetrics_families(response.read().decode()))
    assert any(family.name == "camstream_camera_frames_published" for family in families)
