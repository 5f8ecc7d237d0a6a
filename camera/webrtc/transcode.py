"""A camera's H.265 made H.264 once for all its WebRTC viewers, on a thread of its own.

aiortc has no H.265 payloader, and most browsers do not offer H.265 over
WebRTC (Chromium only with a hardware decoder, Firefox not at all), so an
H.265 camera's WebRTC viewers get H.264 made from it: decoded and encoded
**once per camera**, whatever the number of viewers, and only while it
has any (the relay starts and stops this). x264 with ``ultrafast`` and
``zerolatency`` holds no frame back; a keyframe of the camera's is a
keyframe here too, so the kept GOP and a viewer's PLI work as for a camera
whose H.264 is passed through.

The loop never waits on it: samples go into a bounded queue (a queue that
fills, a machine too slow for it, drops frames until the next keyframe),
and what is encoded is handed back to the loop with ``deliver``.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from fractions import Fraction

import av
from av.video.frame import PictureType

log = logging.getLogger("camstream.webrtc")

CLOCK = 90000
# Samples waiting to be transcoded; beyond, frames are dropped until the next keyframe.
MAX_WAITING = 60
# Bits a second per pixel of a frame: 1080p gets about 4 Mbit/s, 320x240 the floor.
BITS_PER_PIXEL = 2
MIN_BIT_RATE = 300_000
X264_OPTIONS = {"preset": "ultrafast", "tune": "zerolatency", "profile": "baseline", "forced-idr": "1"}


class H264Transcoder:
    """H.265 samples in (as MP4 holds them, with the stream's ``hvcC``), H.264 access units (Annex B) out."""

    def __init__(self, hvcc: bytes, deliver: Callable[[bytes, float, bool], None]) -> None:
        self._decoder = av.CodecContext.create("hevc", "r")
        self._decoder.extradata = hvcc
        self._encoder: av.VideoCodecContext | None = None
        self._deliver = deliver
        self._waiting: queue.Queue[tuple[bytes, float, bool, bool] | None] = queue.Queue()
        self._skipping = False
        self._failed = False
        self.frames_in = 0
        self.frames_out = 0
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name="webrtc-transcode", daemon=True)
        self._thread.start()

    def add(self, sample: bytes, time: float, keyframe: bool, encode: bool = True) -> None:
        """One H.265 frame at ``time`` seconds (never waits). ``encode=False``: decoded only, to reach a frame
        later in its GOP (a new viewer's first picture is the newest frame, not the GOP's first)."""
        if keyframe:
            self._skipping = False
        elif self._skipping:
            self.dropped += 1
            return
        if self._waiting.qsize() >= MAX_WAITING:
            self._skipping = True
            self.dropped += 1
            return
        self._waiting.put((sample, time, keyframe, encode))

    def start_from(self, gop: list[tuple[bytes, float, bool]]) -> None:
        """Begin with the camera's current GOP (its keyframe first): every frame decoded, only the newest
        encoded, so the first picture is the newest one and comes at once."""
        for index, (sample, time, keyframe) in enumerate(gop):
            self._waiting.put((sample, time, keyframe, index == len(gop) - 1))

    def close(self) -> None:
        """Stop (the thread ends once what it holds is done; nothing more is delivered)."""
        self._deliver = lambda data, time, keyframe: None
        self._waiting.put(None)

    def _run(self) -> None:
        while True:
            item = self._waiting.get()
            if item is None:
                return
            sample, time, _, encode = item
            try:
                self._one(sample, time, encode)
            except (av.FFmpegError, ValueError) as exc:
                if not self._failed:
                    log.warning("could not make the camera's H.265 into H.264 for WebRTC: %s", exc)
                self._failed = True
                self._skipping = True

    def _one(self, sample: bytes, time: float, encode: bool) -> None:
        packet = av.Packet(sample)
        packet.pts = packet.dts = round(time * CLOCK)
        packet.time_base = Fraction(1, CLOCK)
        self.frames_in += 1
        for frame in self._decoder.decode(packet):
            if not encode:
                continue
            encoder = self._encoder_for(frame)
            fresh = self.frames_out == 0
            if frame.key_frame or fresh:
                frame.pict_type = PictureType.I
            else:
                frame.pict_type = PictureType.NONE
            frame.time_base = Fraction(1, CLOCK)
            for out in encoder.encode(frame.reformat(format="yuv420p") if frame.format.name != "yuv420p" else frame):
                self.frames_out += 1
                at = (out.pts or 0) / CLOCK
                self._deliver(bytes(out), at, bool(out.is_keyframe))

    def _encoder_for(self, frame: av.VideoFrame) -> av.VideoCodecContext:
        encoder = self._encoder
        if encoder is not None and (encoder.width, encoder.height) == (frame.width, frame.height):
            return encoder
        encoder = av.CodecContext.create("libx264", "w")
        encoder.width, encoder.height = frame.width, frame.height
        encoder.pix_fmt = "yuv420p"
        encoder.time_base = Fraction(1, CLOCK)
        encoder.gop_size = 100_000  # a keyframe where the camera makes one (or a viewer's start), not on a count
        encoder.max_b_frames = 0
        encoder.bit_rate = max(MIN_BIT_RATE, frame.width * frame.height * BITS_PER_PIXEL)
        encoder.options = dict(X264_OPTIONS)
        self._encoder = encoder
        self.frames_out = 0
        return encoder
