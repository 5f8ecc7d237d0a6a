"""Video files, read as packets like a network camera: played at their own frame rate, from the start again at
their end.

A file of H.264 or H.265 is passed through to MSE and HLS viewers as an
RTSP camera's stream is (its frames decoded only while something wants
pictures); any other codec is decoded as it is played.
"""

from __future__ import annotations

from collections.abc import Iterator

import av

from ..errors import SourceError
from ..pacing import Pacer
from .packets import PacketCamera

FALLBACK_FILE_FPS = 25.0


class VideoFileCamera(PacketCamera):
    """A video file played at its own frame rate; ``loop`` plays it again from the start at its end."""

    analyze_seconds = None  # a file is read at once, so FFmpeg may look as long as it likes

    def __init__(self, name: str, path: str, *, loop: bool = True, **options) -> None:
        super().__init__(name, path, **options)
        self.loop = loop

    def _read(self, container: av.container.InputContainer, streams: list) -> Iterator[av.Packet]:
        video = streams[0]
        pacer = Pacer(file_fps(video))
        while True:
            count = 0
            for packet in container.demux(*streams):
                if packet.size == 0:
                    continue  # the demuxer's end-of-file marker
                if packet.stream is video:
                    count += 1
                    pacer.wait()
                yield packet
            if count == 0:
                raise SourceError(f"no frames could be read from {self.source}")
            if not self.loop:
                return
            container.seek(0)


def file_fps(video: av.video.stream.VideoStream) -> float:
    """The frame rate a file declares, or a common default when it declares none (or an absurd one)."""
    rate = video.average_rate or video.guessed_rate
    fps = float(rate) if rate else 0.0
    return fps if 0 < fps <= 240 else FALLBACK_FILE_FPS
