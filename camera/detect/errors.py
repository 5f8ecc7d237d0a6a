"""What can go wrong with a detector, each a one-line message with no secret in it."""


class DetectorError(Exception):
    """A detector that cannot give a result."""


class DetectorLoadError(DetectorError):
    """A detector that can never work as configured: a missing model, a file that is no detector."""


class DetectorCrashed(DetectorError):
    """The detector's worker process died or hung; it is restarted."""


class FrameError(DetectorError):
    """The detector raised on one frame; the next frame is tried as usual.

    ``details`` is the worker's traceback, for the log.
    """

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message)
        self.details = details
