"""Reading an ONNX model's input shape and metadata without the onnx package.

An ``.onnx`` file is one protocol-buffers message (``ModelProto``). Only
a few of its fields matter here: the graph's inputs with their shapes, and
the ``metadata_props`` where Ultralytics stores ``imgsz`` and the class
``names``. A minimal reader of the wire format finds them and skips the
rest (the weights) by their length, so it costs nothing to add a
dependency for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

# Field numbers from onnx.proto.
MODEL_GRAPH, MODEL_METADATA = 7, 14
GRAPH_INPUT, GRAPH_INITIALIZER = 11, 5
VALUE_NAME, VALUE_TYPE = 1, 2
TYPE_TENSOR, TENSOR_SHAPE, SHAPE_DIM, DIM_VALUE, DIM_PARAM = 1, 2, 1, 1, 2
TENSOR_NAME = 8
ENTRY_KEY, ENTRY_VALUE = 1, 2

VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5


class OnnxFormatError(ValueError):
    """Bytes that are not an ONNX model."""


@dataclass
class OnnxInfo:
    """The inputs (name and shape, None for a dimension set at run time) and metadata of a model."""

    inputs: list[tuple[str, list[int | None]]] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)


def read_onnx_info(path: str | Path) -> OnnxInfo:
    """The inputs and metadata of the model in ``path``; :class:`OnnxFormatError` if it is not one."""
    data = Path(path).read_bytes()
    if not data:
        raise OnnxFormatError("the file is empty")
    return _model(memoryview(data))


def _model(data: memoryview) -> OnnxInfo:
    info = OnnxInfo()
    graph = None
    try:
        for number, value in _fields(data):
            if number == MODEL_GRAPH and isinstance(value, memoryview):
                graph = value
            elif number == MODEL_METADATA and isinstance(value, memoryview):
                entry = {n: bytes(v).decode("utf-8", "replace") for n, v in _fields(value)
                         if isinstance(v, memoryview)}
                info.metadata[entry.get(ENTRY_KEY, "")] = entry.get(ENTRY_VALUE, "")
        if graph is None:
            raise OnnxFormatError("no graph in the file")
        initializers = set()
        inputs = []
        for number, value in _fields(graph):
            if number == GRAPH_INITIALIZER and isinstance(value, memoryview):
                initializers.update(bytes(v).decode() for n, v in _fields(value)
                                    if n == TENSOR_NAME and isinstance(v, memoryview))
            elif number == GRAPH_INPUT and isinstance(value, memoryview):
                inputs.append(_value_info(value))
    except (IndexError, UnicodeDecodeError) as exc:
        raise OnnxFormatError(f"not an ONNX model ({exc})") from None
    # Old exports list the weights among the inputs too.
    info.inputs = [(name, shape) for name, shape in inputs if name not in initializers]
    return info


def _value_info(data: memoryview) -> tuple[str, list[int | None]]:
    name, shape = "", []
    for number, value in _fields(data):
        if number == VALUE_NAME and isinstance(value, memoryview):
            name = bytes(value).decode()
        elif number == VALUE_TYPE and isinstance(value, memoryview):
            for tensor in _children(value, TYPE_TENSOR):
                for shape_data in _children(tensor, TENSOR_SHAPE):
                    shape = [_dim(dim) for dim in _children(shape_data, SHAPE_DIM)]
    return name, shape


def _dim(data: memoryview) -> int | None:
    for number, value in _fields(data):
        if number == DIM_VALUE and isinstance(value, int):
            return value if value > 0 else None
    return None


def _children(data: memoryview, wanted: int) -> Iterator[memoryview]:
    for number, value in _fields(data):
        if number == wanted and isinstance(value, memoryview):
            yield value


def _fields(data: memoryview) -> Iterator[tuple[int, int | memoryview]]:
    """The (field number, value) pairs of one message: ints for numbers, views for everything with a length."""
    pos, end = 0, len(data)
    while pos < end:
        key, pos = _varint(data, pos)
        number, kind = key >> 3, key & 7
        if kind == VARINT:
            value, pos = _varint(data, pos)
            yield number, value
        elif kind == LENGTH:
            length, pos = _varint(data, pos)
            if pos + length > end:
                raise OnnxFormatError("a field runs past the end of the file")
            yield number, data[pos:pos + length]
            pos += length
        elif kind == FIXED64:
            pos += 8
        elif kind == FIXED32:
            pos += 4
        else:
            raise OnnxFormatError(f"unexpected protocol-buffers wire type {kind}")
        if number == 0:
            raise OnnxFormatError("field number 0")


def _varint(data: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise OnnxFormatError("a number longer than 64 bits")
