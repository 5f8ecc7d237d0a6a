"""``camstream worker``: run a detector for the cameras of any camstream, through the broker (camera/remote/)."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

from camera.detect import parse_spec
from camera.detect.errors import DetectorLoadError
from camera.detect.spec import GROUP_PATTERN, REMOTE

from ..config.table import BY_KEY, ENV_PREFIX
from ..config.values import names_list
from .parser import Parser, add_flag, fail

# The server's settings a worker takes too, with the same flags and variables.
SHARED = ("BROKER", "DETECT_CONFIDENCE", "DETECT_CLASSES", "LOG_LEVEL")


def worker_command(argv: Sequence[str]) -> int:
    """Join GROUP's workers on the broker and answer their cameras' frames with SPEC until stopped."""
    parser = Parser(prog="camstream worker",
                    description="Run a detector for the cameras of any camstream server that detects with "
                    "remote:GROUP through the same NATS broker. Start as many as you like, on any machine.")
    parser.add_argument("--group", required=True, help="the worker group to join (the server's remote:GROUP)")
    parser.add_argument("--detect", required=True, metavar="SPEC",
                        help="the detector: motion, yolo:PATH.onnx, MODULE:ATTR or motion+ one of the last two, "
                        "with ?name=value options")
    for key in SHARED:
        add_flag(parser, BY_KEY[key])
    args = parser.parse_args(argv)
    value = {key: getattr(args, key) if getattr(args, key) is not None else
             os.environ.get(ENV_PREFIX + key, BY_KEY[key].default) for key in SHARED}
    from camera.remote import parse_broker_url, run_worker

    try:
        if not value["BROKER"]:
            raise ValueError("--broker nats://HOST:4222 (or CAMSTREAM_BROKER) says where the broker is")
        url = parse_broker_url(str(value["BROKER"]))
        if not GROUP_PATTERN.fullmatch(args.group):
            raise ValueError(f"--group must be letters, digits, - and _, not {args.group[:40]!r}")
        spec = parse_spec(args.detect)
        if spec.kind == REMOTE:
            raise ValueError("a worker runs a detector itself: --detect motion, yolo:PATH.onnx or MODULE:ATTR")
        confidence = BY_KEY["DETECT_CONFIDENCE"].parse(value["DETECT_CONFIDENCE"])
    except ValueError as exc:
        return fail(str(exc))
    logging.basicConfig(level=str(value["LOG_LEVEL"]).upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sys.path.insert(0, os.getcwd())  # a MODULE:ATTR detector from the folder it is started in, as the server does
    try:
        return run_worker(url, args.group, spec, float(confidence), names_list(value["DETECT_CLASSES"]))
    except DetectorLoadError as exc:
        return fail(f"detector {spec.text!r}: {exc}")
