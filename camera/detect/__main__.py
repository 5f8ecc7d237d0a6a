"""``python -m camera.detect FD OPTIONS``: a detector worker process (see :mod:`camera.detect.worker`)."""

import sys

from .worker import main

main(sys.argv[1:])
