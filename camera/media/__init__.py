"""A camera's own compressed video, passed through: fMP4 for MSE and HLS, made once per camera.

``boxes``   reading just enough of MP4's boxes: init segment, fragments, codec strings
``fmp4``    writing one fragment (``moof`` + ``mdat``), Annex B to MP4's length-prefixed samples
``h264``    an H.264 keyframe's parameter sets, and the picture size its SPS declares
``muxer``   packets into an init segment (FFmpeg's) and a fragment a frame with the camera's own timing
``feed``    the fan-out: every MSE viewer gets the same framed bytes, from the newest keyframe on
``hls``     segments of whole GOPs, a short window of them, the playlist
"""

from .feed import MediaFeed
from .muxer import Fragment, FragmentMuxer

__all__ = ["Fragment", "FragmentMuxer", "MediaFeed"]
