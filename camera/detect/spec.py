"""Detector spec strings: ``motion``, ``yolo:PATH``, ``MODULE:ATTR``, each with ``?name=value`` options,
``motion+SPEC``: SPEC run only where motion is seen, and ``remote:GROUP``: the detector of the workers of
GROUP, on other machines, through the broker (:mod:`camera.remote`).

A spec is parsed where it is configured, so a typo is an error at start-up;
the detector itself is built from it inside its worker process
(:mod:`camera.detect.build`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl

from ..limits import checked
from ..suggest import did_you_mean

MOTION, YOLO, PLUGIN, GATED, REMOTE = "motion", "yolo", "plugin", "gated", "remote"
GATE_PREFIX = "motion+"
PLUGIN_PATTERN = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", re.ASCII)
# A worker group's name: one token of a NATS subject.
GROUP_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}", re.ASCII)

# The options each kind takes, with their ranges (None: any text).
OPTIONS: dict[str, dict[str, tuple[float, float] | None]] = {
    MOTION: {"sensitivity": (0.0, 1.0), "min_area": (0.0, 100.0)},
    YOLO: {"labels": None, "nms": (0.0, 1.0)},
    PLUGIN: {},
    REMOTE: {},
}
# What a mistyped detector was likely meant to be.
DETECTOR_WORDS = ("motion", "yolo:PATH.onnx", "motion+yolo:PATH.onnx")
SYNTAX = ("motion, yolo:PATH.onnx or MODULE:ATTR (with ?name=value options), motion+ one of the last two, "
          "or remote:GROUP")


@dataclass(frozen=True)
class DetectorSpec:
    """A parsed spec: its kind, the model path or ``module:attr``, and its options."""

    text: str
    kind: str
    target: str = ""
    options: tuple[tuple[str, str | float], ...] = ()
    # For motion+SPEC: SPEC, which runs only where there is motion.
    inner: DetectorSpec | None = None

    def option(self, name: str, default: object = None) -> object:
        return dict(self.options).get(name, default)


def parse_spec(text: str) -> DetectorSpec:
    """Parse ``text``; :class:`ValueError` with one line saying what is wrong."""
    text = text.strip()
    if text.startswith(GATE_PREFIX):
        inner = parse_spec(text.removeprefix(GATE_PREFIX))
        if inner.kind in (MOTION, GATED, REMOTE):
            raise ValueError(f"detector {text!r}: motion+ takes another detector, not {inner.text!r}")
        return DetectorSpec(text, GATED, inner=inner)
    body, _, query = text.partition("?")
    if body == MOTION:
        kind, target = MOTION, ""
    elif body.startswith("yolo:"):
        kind, target = YOLO, body.removeprefix("yolo:")
        if not target:
            raise ValueError(f"detector {text!r} names no model: write yolo:PATH.onnx")
    elif body.startswith("remote:"):
        kind, target = REMOTE, body.removeprefix("remote:")
        if not GROUP_PATTERN.fullmatch(target):
            raise ValueError(f"detector {text!r}: a worker group is letters, digits, - and _ (remote:GROUP)")
    elif PLUGIN_PATTERN.fullmatch(body):
        kind, target = PLUGIN, body
    else:
        raise ValueError(f"unknown detector {text!r}{did_you_mean(body, DETECTOR_WORDS)}: use {SYNTAX}")
    return DetectorSpec(text, kind, target, _options(text, kind, query))


def _options(text: str, kind: str, query: str) -> tuple[tuple[str, str | float], ...]:
    allowed = OPTIONS[kind]
    options: list[tuple[str, str | float]] = []
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name not in allowed:
            takes = ", ".join(allowed) or "no options"
            raise ValueError(f"detector {text!r}: unknown option {name!r} ({kind} takes {takes})")
        bounds = allowed[name]
        options.append((name, value if bounds is None else checked(f"detector option {name}", value, float, *bounds)))
    return tuple(options)
