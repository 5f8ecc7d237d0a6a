"""The yolo:PATH detector on real ONNX models that the tests build: decoding, letterboxing, NMS, labels."""

import numpy as np
import pytest

from camera.detect import DetectorLoadError, parse_spec
from camera.detect.build import build_detector
from camera.detect.coco import COCO_NAMES
from camera.detect.yolo import PAD_VALUE, YoloDetector, letterbox
from tests.models import candidate, classifier_model, yolo_model


def frame(width: int, height: int) -> np.ndarray:
    return np.full((height, width, 3), 90, np.uint8)


def boxes(detections) -> list[tuple[str, float, tuple[int, int, int, int]]]:
    return [(d.label, round(d.score, 3), d.box) for d in detections]


def test_an_80_class_model_decodes_to_coco_names_in_frame_pixels(tmp_path):
    # A 640x480 frame in a 640x640 input: scale 1, 80 rows of grey above and below.
    model = yolo_model(tmp_path / "m.onnx", [
        candidate(320, 320, 100, 50, {0: 0.9}, 80),
        candidate(100, 200, 40, 60, {2: 0.7, 0: 0.2}, 80),
        candidate(500, 500, 10, 10, {5: 0.3}, 80),  # below the threshold
    ], classes=80)
    detector = YoloDetector(str(model), confidence=0.5)
    assert detector.names == list(COCO_NAMES) and detector.size == (640, 640)
    assert boxes(detector(frame(640, 480))) == [
        ("person", 0.9, (270, 215, 100, 50)),
        ("car", 0.7, (80, 90, 40, 60)),
    ]


def test_a_frame_wider_than_tall_maps_back_through_the_letterbox(tmp_path):
    # 1280x720 into 640x640: scale 0.5, the picture is 640x360 with 140 rows of padding on top.
    model = yolo_model(tmp_path / "m.onnx", [candidate(320, 320, 100, 50, {0: 0.8}, 2)], classes=2)
    detector = YoloDetector(str(model))
    assert boxes(detector(frame(1280, 720))) == [("class0", 0.8, (540, 310, 200, 100))]


def test_a_frame_taller_than_wide_maps_back_through_the_letterbox(tmp_path):
    # 480x960 into a 320x640 input (width x height): scale 2/3, 320x640 exactly, no padding;
    # into 640x640: scale 2/3 -> 320x640 with 160 columns of padding on the left.
    model = yolo_model(tmp_path / "m.onnx", [candidate(320, 320, 60, 30, {1: 0.6}, 2)], classes=2)
    detector = YoloDetector(str(model))
    assert boxes(detector(frame(480, 960))) == [("class1", 0.6, (195, 458, 90, 45))]
    wide_input = yolo_model(tmp_path / "n.onnx", [candidate(160, 320, 60, 30, {1: 0.6}, 2)], classes=2,
                            size=(320, 640))
    detector = YoloDetector(str(wide_input))
    assert detector.size == (320, 640)
    assert boxes(detector(frame(480, 960))) == [("class1", 0.6, (195, 458, 90, 45))]


def test_letterbox_keeps_the_aspect_and_pads_with_grey():
    image = np.full((100, 400, 3), 255, np.uint8)
    padded, scale, (left, top) = letterbox(image, (200, 200))
    assert padded.shape == (200, 200, 3) and scale == 0.5 and (left, top) == (0, 75)
    assert (padded[:75] == PAD_VALUE).all() and (padded[125:] == PAD_VALUE).all()
    assert (padded[75:125] == 255).all()
    tall = np.full((400, 100, 3), 255, np.uint8)
    padded, scale, (left, top) = letterbox(tall, (200, 200))
    assert scale == 0.5 and (left, top) == (75, 0)
    assert (padded[:, :75] == PAD_VALUE).all() and (padded[:, 75:125] == 255).all()


def test_boxes_are_clipped_to_the_frame(tmp_path):
    model = yolo_model(tmp_path / "m.onnx", [candidate(10, 100, 100, 40, {0: 0.9}, 1)], classes=1)
    # In the input: x from -40 to 60, y from 80 to 120; the frame starts 80 rows down.
    assert boxes(YoloDetector(str(model))(frame(640, 480))) == [("class0", 0.9, (0, 0, 60, 40))]
    assert boxes(YoloDetector(str(model))(frame(640, 640))) == [("class0", 0.9, (0, 80, 60, 40))]


def test_non_maximum_suppression_is_per_class(tmp_path):
    model = yolo_model(tmp_path / "m.onnx", [
        candidate(300, 300, 100, 100, {0: 0.9}, 2),
        candidate(305, 305, 100, 100, {0: 0.8}, 2),  # the same thing again: suppressed
        candidate(305, 305, 100, 100, {1: 0.7}, 2),  # the same place, another class: kept
        candidate(500, 500, 50, 50, {0: 0.6}, 2),    # elsewhere: kept
    ], classes=2)
    detections = YoloDetector(str(model), nms=0.5)(frame(640, 640))
    assert [(d.label, round(d.score, 2)) for d in detections] == [("class0", 0.9), ("class1", 0.7), ("class0", 0.6)]
    loose = YoloDetector(str(model), nms=0.99)(frame(640, 640))
    assert len(loose) == 4


def test_the_confidence_threshold_and_the_class_filter(tmp_path):
    model = yolo_model(tmp_path / "m.onnx", [
        candidate(100, 100, 20, 20, {0: 0.95}, 80),
        candidate(300, 300, 20, 20, {2: 0.55}, 80),
        candidate(500, 500, 20, 20, {16: 0.45}, 80),
    ], classes=80)
    labels = lambda detector: [d.label for d in detector(frame(640, 640))]
    assert labels(YoloDetector(str(model), confidence=0.5)) == ["person", "car"]
    assert labels(YoloDetector(str(model), confidence=0.4)) == ["person", "car", "dog"]
    assert labels(YoloDetector(str(model), confidence=0.4, classes=["car", "dog"])) == ["car", "dog"]
    assert labels(YoloDetector(str(model), confidence=0.96)) == []
    with pytest.raises(DetectorLoadError, match="has no class 'unicorn'"):
        YoloDetector(str(model), classes=["person", "unicorn"])


def test_names_from_a_labels_file_or_from_the_model(tmp_path):
    model = yolo_model(tmp_path / "m.onnx", [candidate(100, 100, 20, 20, {1: 0.9}, 3)], classes=3,
                       metadata={"names": "{0: 'cat', 1: 'hat', 2: 'bat'}", "imgsz": "[640, 640]"})
    assert YoloDetector(str(model)).names == ["cat", "hat", "bat"]
    labels = tmp_path / "labels.txt"
    labels.write_text("red\ngreen\n\nblue\n")
    detector = YoloDetector(str(model), labels=str(labels))
    assert [d.label for d in detector(frame(640, 640))] == ["green"]
    labels.write_text("red\ngreen\n")
    with pytest.raises(DetectorLoadError, match="has 2 names; the model has 3 classes"):
        YoloDetector(str(model), labels=str(labels))
    with pytest.raises(DetectorLoadError, match="cannot read the labels file"):
        YoloDetector(str(model), labels=str(tmp_path / "missing.txt"))


def test_a_dynamic_input_takes_its_size_from_the_metadata(tmp_path):
    model = yolo_model(tmp_path / "m.onnx", [candidate(160, 160, 20, 20, {0: 0.9}, 1)], classes=1,
                       size=(320, 320), dynamic=True, metadata={"imgsz": "[320, 320]"})
    detector = YoloDetector(str(model))
    assert detector.size == (320, 320)
    assert boxes(detector(frame(320, 320))) == [("class0", 0.9, (150, 150, 20, 20))]


@pytest.mark.parametrize("make, message", [
    (lambda path: path, "no model file"),
    (lambda path: (path.write_bytes(b""), path)[1], "is not an ONNX model"),
    (lambda path: (path.write_text("not a model at all\n" * 10), path)[1], "is not an ONNX model"),
    (lambda path: classifier_model(path), "is not a YOLO detection model"),
])
def test_a_file_that_is_no_detector_is_a_clear_load_error(tmp_path, make, message):
    path = make(tmp_path / "model.onnx")
    with pytest.raises(DetectorLoadError, match=message) as caught:
        build_detector(parse_spec(f"yolo:{path}"))
    assert "\n" not in str(caught.value)


def test_spec_options_reach_the_detector(tmp_path):
    model = yolo_model(tmp_path / "m.onnx", [
        candidate(300, 300, 100, 100, {0: 0.9}, 2),
        candidate(305, 305, 100, 100, {0: 0.8}, 2),
    ], classes=2)
    (tmp_path / "names.txt").write_text("alpha\nbeta\n")
    detector = build_detector(parse_spec(f"yolo:{model}?nms=0.99&labels={tmp_path / 'names.txt'}"))
    assert [d.label for d in detector(frame(640, 640))] == ["alpha", "alpha"]


@pytest.mark.parametrize("text, message", [
    ("yolo:", "names no model"),
    ("yolo:m.onnx?nms=2", "nms must be a number from 0 to 1"),
    ("yolo:m.onnx?size=3", "unknown option 'size'"),
    ("motion?sensitivity=high", "sensitivity must be a number"),
    ("haar", "unknown detector 'haar'"),
    ("tests.detectors:raising?x=1", "unknown option 'x'"),
    ("motion+motion", "motion\\+ takes another detector"),
    ("motion+haar", "unknown detector 'haar'"),
])
def test_bad_specs_are_one_line_errors(text, message):
    with pytest.raises(ValueError, match=message):
        parse_spec(text)


def test_a_gated_spec_holds_the_detector_it_gates():
    spec = parse_spec("motion+yolo:m.onnx?nms=0.4")
    assert spec.kind == "gated" and spec.inner == parse_spec("yolo:m.onnx?nms=0.4")
