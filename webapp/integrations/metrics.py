"""``GET /metrics``: the app's numbers in Prometheus's text format, through prometheus-client.

A scrape reads what the cameras, detectors, recorders and the sender
already count (:class:`AppCollector`), so between scrapes nothing is spent
on metrics but the inference-time histogram, one observation per detector
result. Names follow Prometheus's conventions: a ``camstream_`` prefix,
``_total`` for counters, seconds and bytes as base units, a ``camera``
label per camera.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from flask import Blueprint, Response, current_app, request
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from camera import FAILED, IDLE, RECONNECTING, STARTING, STREAMING

from ..runtime.registry import Runtime, runtime_of

bp = Blueprint("metrics", __name__)

STATES = (IDLE, STARTING, STREAMING, RECONNECTING, FAILED)


@bp.get("/metrics")
def metrics() -> Response:
    """The text format Prometheus asks for in ``Accept`` (OpenMetrics, or the plain text format)."""
    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    return Response(encode(runtime_of(current_app).metrics.registry), content_type=content_type)


def collect_from(runtime: Runtime) -> None:
    """Have the runtime's registry read everything but the histogram from ``runtime`` at each scrape."""
    runtime.metrics.registry.register(AppCollector(runtime))


class AppCollector(Collector):
    """Everything but the histogram, read from the runtime at scrape time."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def collect(self) -> Iterator[Metric]:
        yield from self._cameras()
        yield from self._detection()
        yield from self._recording()
        yield from self._server()

    def _cameras(self) -> Iterator[Metric]:
        state = GaugeMetricFamily("camstream_camera_state", "1 for the state the camera is in", labels=["camera", "state"])
        captured = CounterMetricFamily("camstream_camera_frames_captured", "Frames read from the source", labels=["camera"])
        encoded = CounterMetricFamily("camstream_camera_frames_encoded", "Frames encoded to JPEG here", labels=["camera"])
        published = CounterMetricFamily("camstream_camera_frames_published", "Frames handed to viewers",
                                        labels=["camera"])
        fps = GaugeMetricFamily("camstream_camera_fps", "Frames published per second, measured", labels=["camera"])
        viewers = GaugeMetricFamily("camstream_camera_viewers", "Viewers watching the camera", labels=["camera"])
        outages = CounterMetricFamily("camstream_camera_reconnects", "Times the source was lost and reconnecting began",
                                      labels=["camera"])
        age = GaugeMetricFamily("camstream_camera_last_frame_age_seconds", "Age of the newest frame (absent before one)",
                                labels=["camera"])
        now = time.time()
        for name, camera in self.runtime.cameras.items():
            status = camera.status()
            for each in STATES:
                state.add_metric([name, each], 1.0 if status["state"] == each else 0.0)
            captured.add_metric([name], status["frames_captured"])
            encoded.add_metric([name], status["frames_encoded"])
            published.add_metric([name], status["frames_published"])
            fps.add_metric([name], status["measured_fps"])
            viewers.add_metric([name], status["viewers"])
            outages.add_metric([name], camera.outages)
            latest = camera.broadcaster.latest
            if latest is not None:
                age.add_metric([name], max(0.0, now - latest.timestamp))
        yield from (state, captured, encoded, published, fps, viewers, outages, age)

    def _detection(self) -> Iterator[Metric]:
        runs = CounterMetricFamily("camstream_detection_runs", "Detector results", labels=["camera"])
        errors = CounterMetricFamily("camstream_detection_errors", "Frames the detector failed on", labels=["camera"])
        restarts = CounterMetricFamily("camstream_detection_restarts", "Detector worker restarts", labels=["camera"])
        up = GaugeMetricFamily("camstream_detection_up", "1 while the detector runs", labels=["camera"])
        for name, detection in self.runtime.detections.items():
            status = detection.status()
            runs.add_metric([name], status["results"])
            errors.add_metric([name], status["errors"])
            restarts.add_metric([name], status["restarts"])
            up.add_metric([name], 1.0 if status["state"] == "running" else 0.0)
        yield from (runs, errors, restarts, up)

    def _recording(self) -> Iterator[Metric]:
        events = CounterMetricFamily("camstream_events", "Recorded events opened", labels=["camera"])
        written = CounterMetricFamily("camstream_recording_written_bytes", "Bytes of recording written",
                                      labels=["camera"])
        paused = GaugeMetricFamily("camstream_recording_paused", "1 while recording is paused (disk trouble)",
                                   labels=["camera"])
        for name, recorder in self.runtime.recorders.items():
            status = recorder.status()
            events.add_metric([name], status["events"])
            written.add_metric([name], status["bytes_written"])
            paused.add_metric([name], 1.0 if status["state"] == "paused" else 0.0)
        yield from (events, written, paused)

    def _server(self) -> Iterator[Metric]:
        slots, sender = self.runtime.slots, self.runtime.sender
        yield GaugeMetricFamily("camstream_streams_open", "Streams being served (video, events, WebSocket)",
                                value=slots.used)
        yield CounterMetricFamily("camstream_streams_refused", "Streams refused for want of a slot",
                                  value=slots.refused)
        yield CounterMetricFamily("camstream_sent_bytes", "Bytes the sender thread wrote to viewers",
                                  value=sender.bytes_sent)
        yield GaugeMetricFamily("camstream_sender_backlog", "Viewers whose connection was full at the last check",
                                value=sender.backlog)
        yield CounterMetricFamily("camstream_viewer_errors", "Viewers closed because serving them raised an error",
                                  value=sender.viewer_errors)
        connections = self.runtime.connections
        if connections.limit:
            counts = connections.as_dict()
            yield GaugeMetricFamily("camstream_connections_open", "Connections the server holds", value=counts["open"])
            closed = CounterMetricFamily("camstream_connections_closed", "Connections the server closed or refused",
                                         labels=["reason"])
            for reason in ("refused", "evicted", "idle_closed", "timed_out"):
                closed.add_metric([reason], counts[reason])
            yield closed
