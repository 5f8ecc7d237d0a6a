"""A camera's AAC to Opus, once per camera: WebRTC browsers take Opus (or G.711), never AAC.

Every WebRTC viewer of the camera gets the very same Opus packets; only
the RTP around them (sequence numbers, timestamps, SRTP) is per viewer.
"""

from __future__ import annotations

import logging
from fractions import Fraction

import av

log = logging.getLogger("camstream.webrtc")

OPUS_RATE = 48000
# Samples in one Opus packet: 20 ms, what browsers send and expect.
OPUS_FRAME = 960
OPUS_BIT_RATE = 64000


class OpusTranscoder:
    """Raw AAC frames in (with the stream's AudioSpecificConfig); Opus packets of 20 ms out."""

    def __init__(self, config: bytes) -> None:
        self._decoder = av.CodecContext.create("aac", "r")
        self._decoder.extradata = config
        self._resampler = av.AudioResampler(format="s16", layout="stereo", rate=OPUS_RATE, frame_size=OPUS_FRAME)
        self._encoder = av.CodecContext.create("libopus", "w")
        self._encoder.sample_rate = OPUS_RATE
        self._encoder.layout = "stereo"
        self._encoder.format = "s16"
        self._encoder.time_base = Fraction(1, OPUS_RATE)
        self._encoder.bit_rate = OPUS_BIT_RATE
        self._encoder.options = {"application": "lowdelay"}
        self._failed = False

    def add(self, aac: bytes) -> list[bytes]:
        """The Opus packets that are whole once this AAC frame is in (usually one, sometimes none or two)."""
        out: list[bytes] = []
        try:
            for frame in self._decoder.decode(av.Packet(aac)):
                frame.pts = None
                for even in self._resampler.resample(frame):
                    out += [bytes(packet) for packet in self._encoder.encode(even)]
        except av.FFmpegError as exc:
            if not self._failed:
                log.warning("could not transcode the camera's AAC to Opus: %s", exc)
            self._failed = True
        return out
