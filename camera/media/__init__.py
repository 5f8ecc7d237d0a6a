"""A camera's own compressed video, passed through: fMP4 for MSE and HLS, made once per camera.

``boxes``   reading just enough of MP4's boxes: init segment, fragments, codec strings
``muxer``   packets into an init segment and a fragment a frame (FFmpeg's MP4 muxer, through PyAV)
``feed``    the fan-out: every MSE viewer gets the same framed bytes, from the newest keyframe on
``hls``     segments of whole GOPs, a short window of them, the playlist
"""

from .feed import MediaFeed
from .muxer import Fragment, FragmentMuxer

__all__ = ["Fragment", "FragmentMuxer", "MediaFeed"]
