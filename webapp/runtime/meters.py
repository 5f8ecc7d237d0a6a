"""An app's Prometheus registry, and what is measured as it happens: detectors' inference times.

Everything else ``/metrics`` shows is read at scrape time (see
webapp/integrations/metrics.py), so between scrapes nothing is spent on
metrics but one histogram observation per detector result.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Histogram

from camera.detect import CameraDetection

# Detector inference times, seconds: from a motion check to a slow model on a small CPU.
INFERENCE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """An app's own registry (not prometheus-client's global one: two apps in a process never mix)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.inference = Histogram(
            "camstream_detection_inference_seconds", "Detector time per frame, decoding included",
            ["camera"], buckets=INFERENCE_BUCKETS, registry=self.registry)

    def watch_detection(self, name: str, detection: CameraDetection) -> None:
        """Time the results of camera ``name``'s detector in the inference histogram."""
        child = self.inference.labels(camera=name)
        detection.add_result_listener(lambda result: child.observe(result.inference_ms / 1000))

    def forget_camera(self, name: str) -> None:
        """Drop a removed camera's inference times (the other metrics are read from the runtime)."""
        try:
            self.inference.remove(name)
        except KeyError:
            pass
