"""Where a camera's pictures come from: one module per kind of source.

:func:`create_camera` turns a source string (``pattern``, ``0``,
``clip.mp4``, ``rtsp://...``, ``http://...``) into the right camera.
"""

from .factory import create_camera
from .files import VideoFileCamera
from .opencv import OpenCVCamera
from .packets import PacketCamera
from .pattern import PatternCamera
from .relay import HttpCamera
from .unusable import UnusableCamera

__all__ = ["HttpCamera", "OpenCVCamera", "PacketCamera", "PatternCamera", "UnusableCamera", "VideoFileCamera", "create_camera"]
