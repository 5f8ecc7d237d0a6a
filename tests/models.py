"""Small real ONNX models that the tests build with the onnx package, in the shapes detectors meet.

A fake YOLO export's output is fixed: candidates the test chooses, so it
can check decoding, mapping and suppression to the pixel. The input still
flows through the graph (its mean, times zero, is added), so OpenCV runs a
real graph on the real letterboxed frame.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def candidate(cx: float, cy: float, w: float, h: float, scores: dict[int, float], classes: int) -> list[float]:
    """One column of a YOLO output: a box in input pixels and a score per class."""
    column = [cx, cy, w, h] + [0.0] * classes
    for index, score in scores.items():
        column[4 + index] = score
    return column


def yolo_model(path: Path, candidates: list[list[float]], classes: int, size: tuple[int, int] = (640, 640),
               metadata: dict[str, str] | None = None, dynamic: bool = False) -> Path:
    """An ONNX model shaped like an Ultralytics YOLOv8 export whose output holds ``candidates``.

    ``size`` is (width, height) of its input; ``dynamic`` leaves the input's
    height and width unnamed numbers, as ``yolo export dynamic=True`` does.
    """
    width, height = size
    output = np.zeros((1, 4 + classes, max(1, len(candidates))), np.float32)
    for index, column in enumerate(candidates):
        output[0, :, index] = column
    dims: list[int | str] = [1, 3, "height", "width"] if dynamic else [1, 3, height, width]
    image = helper.make_tensor_value_info("images", TensorProto.FLOAT, dims)
    result = helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(output.shape))
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["mean"], keepdims=0),
        helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
        helper.make_node("Add", ["candidates", "nothing"], ["output0"]),
    ]
    weights = [numpy_helper.from_array(output, "candidates"), numpy_helper.from_array(np.zeros((), np.float32), "zero")]
    return _save(path, helper.make_graph(nodes, "fake-yolo", [image], [result], initializer=weights), metadata)


def classifier_model(path: Path) -> Path:
    """An image classifier: (1, 3, 224, 224) in, (1, 1000) out: an ONNX model, but no detector."""
    image = helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 224, 224])
    result = helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 1000])
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["mean"], axes=[2, 3], keepdims=0),
        helper.make_node("MatMul", ["mean", "weights"], ["logits"]),
    ]
    weights = [numpy_helper.from_array(np.ones((3, 1000), np.float32), "weights")]
    return _save(path, helper.make_graph(nodes, "classifier", [image], [result], initializer=weights))


def _save(path: Path, graph: onnx.GraphProto, metadata: dict[str, str] | None = None) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    for key, value in (metadata or {}).items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path
