"""One camera's video and audio made ready for RTP once, and handed to each WebRTC viewer's tracks.

The relay takes the camera's fMP4 from its MediaFeed (a fragment taker: on
the capture thread it only queues). On the WebRTC loop each video frame is
turned into Annex B and cut into RTP payloads (FU-A, STAP-A) **once**; each
AAC frame is transcoded to Opus once. A viewer's track gets those very
payloads; what it makes itself is only what must differ per viewer: the
RTP timestamps (and, in aiortc, the sequence numbers and SRTP).

The current GOP (from the newest keyframe) is kept: a new viewer is sent it
at once, its frames squeezed a millisecond apart, so its picture appears
without waiting for the camera's next keyframe; a viewer's PLI or FIR is
answered the same way, from the kept GOP, never by asking the camera.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from dataclasses import dataclass
from fractions import Fraction

import av
from aiortc import MediaStreamTrack
from aiortc.codecs.h264 import H264Encoder
from aiortc.mediastreams import MediaStreamError

from ..media.boxes import BoxError
from ..media.muxer import Fragment
from . import loop as webrtc_loop
from .opus import OPUS_FRAME, OpusTranscoder
from .samples import StreamInfo, annex_b, samples, stream_info

log = logging.getLogger("camstream.webrtc")

VIDEO_CLOCK = 90000
# Frames sent at once to start a viewer (or answer its PLI) are this many RTP ticks apart: 1 ms.
BURST_STEP = 90
# The step after a stream starts over (a camera reconnected), in RTP ticks.
RESTART_STEP = VIDEO_CLOCK // 30
# The most a kept GOP may hold; a camera that sends no keyframe for long keeps none (viewers wait).
MAX_GOP_FRAMES = 600
MAX_GOP_BYTES = 16 * 1024 * 1024
# Units a viewer may have waiting to be sent; beyond, it starts over from the kept GOP.
MAX_QUEUED = 150
# Fragments waiting for the loop; beyond (the loop is stuck), new ones are dropped until it catches up.
MAX_INBOX = 2000
# A viewer's keyframe requests answered at most this often, in seconds (a browser repeats PLI until it decodes).
KEYFRAME_ANSWER_SECONDS = 0.5


@dataclass(frozen=True)
class VideoUnit:
    """One frame of the camera, packetized once: its RTP payloads, its time on the camera's timeline."""

    payloads: list[bytes]
    time: float
    keyframe: bool
    generation: int


@dataclass(frozen=True)
class AudioUnit:
    """One Opus packet: its payload and where it starts, in 48 kHz samples, on the stream's timeline."""

    payload: bytes
    position: int
    generation: int


class Sendable:
    """What a track hands aiortc's sender: payloads made once, the viewer's own RTP timestamp (its clock)."""

    __slots__ = ("payloads", "timestamp")

    def __init__(self, payloads: list[bytes], timestamp: int) -> None:
        self.payloads = payloads
        self.timestamp = timestamp


class PassThroughPacker:
    """Stands in for aiortc's encoder on a sender: the payloads are made already, so it hands them on."""

    def pack(self, item: Sendable) -> tuple[list[bytes], int]:
        return item.payloads, item.timestamp


class _Track(MediaStreamTrack):
    """A viewer's track: :class:`Sendable` items in a bounded queue, read by aiortc's sender."""

    def __init__(self, relay: CameraRelay) -> None:
        super().__init__()
        self.relay = relay
        self._queue: asyncio.Queue[Sendable | None] = asyncio.Queue()
        self._last: int | None = None  # the RTP timestamp last queued
        self.sent = 0

    async def recv(self) -> Sendable:  # type: ignore[override]
        if self.readyState != "live":
            raise MediaStreamError
        item = await self._queue.get()
        if item is None:
            raise MediaStreamError
        self.sent += 1
        return item

    def _put(self, payloads: list[bytes], timestamp: int) -> None:
        if self._last is not None and timestamp <= self._last:
            timestamp = self._last + 1  # RTP time never goes back for a viewer
        self._last = timestamp
        self._queue.put_nowait(Sendable(payloads, timestamp))

    def stop(self) -> None:
        if self.readyState == "live":
            self._queue.put_nowait(None)
        super().stop()
        self.relay.remove(self)


class VideoTrack(_Track):
    """A viewer's video: from a keyframe on, each frame at its camera time shifted onto the viewer's clock."""

    kind = "video"

    def __init__(self, relay: CameraRelay) -> None:
        super().__init__(relay)
        self._offset = 0
        self._generation = -1
        self._started = False
        self._answered_at = -1e9
        self.keyframe_answers = 0

    def start(self, gop: list[VideoUnit]) -> None:
        """Begin with the kept GOP at once, or wait for the next keyframe if there is none."""
        if gop:
            self._burst(gop)

    def offer(self, unit: VideoUnit) -> None:
        if not self._started or unit.generation != self._generation:
            if unit.keyframe:
                self._burst([unit])
            return
        if self._queue.qsize() >= MAX_QUEUED:  # the sender does not keep up: start over from the newest GOP
            self._drain()
            self._burst(self.relay.gop)
            return
        self._put(unit.payloads, round(unit.time * VIDEO_CLOCK) + self._offset)

    def keyframe_wanted(self) -> None:
        """The browser sent a PLI or FIR: the kept GOP again, at once (never asked of the camera). aiortc's
        sender calls this on the loop."""
        now = asyncio.get_running_loop().time()
        if now - self._answered_at < KEYFRAME_ANSWER_SECONDS or not self.relay.gop:
            return
        self._answered_at = now
        self.keyframe_answers += 1
        self._drain()
        self._burst(self.relay.gop)

    def _burst(self, gop: list[VideoUnit]) -> None:
        """Queue ``gop`` a millisecond apart after what went before; later frames keep their own spacing."""
        base = 0 if self._last is None else self._last + RESTART_STEP
        for index, unit in enumerate(gop):
            self._put(unit.payloads, base + index * BURST_STEP)
        self._offset = (self._last or 0) - round(gop[-1].time * VIDEO_CLOCK)
        self._generation = gop[-1].generation
        self._started = True

    def _drain(self) -> None:
        while not self._queue.empty():
            if self._queue.get_nowait() is None:
                self._queue.put_nowait(None)
                return


class AudioTrack(_Track):
    """A viewer's Opus: the camera's packets, timestamped on the viewer's own 48 kHz clock."""

    kind = "audio"

    def __init__(self, relay: CameraRelay) -> None:
        super().__init__(relay)
        self._offset: int | None = None
        self._generation = -1

    def offer(self, unit: AudioUnit) -> None:
        if self._offset is None or unit.generation != self._generation:
            self._offset = (0 if self._last is None else self._last + OPUS_FRAME) - unit.position
            self._generation = unit.generation
        if self._queue.qsize() >= MAX_QUEUED:
            return
        self._put([unit.payload], unit.position + self._offset)


class CameraRelay:
    """One camera's payloads for every WebRTC viewer, made on the WebRTC loop as its fragments come."""

    def __init__(self) -> None:
        self._inbox: deque[tuple[str, object]] = deque()
        self._scheduled = False
        self._inbox_lock = threading.Lock()
        self.info: StreamInfo | None = None
        # Set while a stream runs (its init segment read): an offer waits for it, to answer with its profile.
        self.ready = asyncio.Event()
        self.generation = 0
        self.gop: list[VideoUnit] = []
        self._gop_bytes = 0
        self._video: set[VideoTrack] = set()
        self._audio: set[AudioTrack] = set()
        self._packer = H264Encoder()
        self._opus: OpusTranscoder | None = None
        self._audio_position = 0
        # Counted for the report and tests: frames packetized and Opus packets made, once each for all viewers.
        self.frames_packetized = 0
        self.opus_packets = 0
        self.dropped = 0

    # -- the capture thread: queue only ----------------------------------

    def stream_began(self, init: bytes) -> None:
        self._queue("began", init)

    def fragment(self, fragment: Fragment, at: float) -> None:
        self._queue("fragment", fragment)

    def stream_ended(self) -> None:
        self._queue("ended", None)

    def _queue(self, what: str, item: object) -> None:
        with self._inbox_lock:
            if len(self._inbox) >= MAX_INBOX and what == "fragment":
                self.dropped += 1
                return
            self._inbox.append((what, item))
            if self._scheduled:
                return
            self._scheduled = True
        webrtc_loop.soon(self._drain)

    # -- the loop ----------------------------------------------------------

    def _drain(self) -> None:
        with self._inbox_lock:
            self._scheduled = False
            items = list(self._inbox)
            self._inbox.clear()
        for what, item in items:
            try:
                if what == "began":
                    self._began(item)  # type: ignore[arg-type]
                elif what == "fragment":
                    self._fragment(item)  # type: ignore[arg-type]
                else:
                    self.info, self.gop, self._gop_bytes = None, [], 0
                    self.ready.clear()
            except (BoxError, ValueError, IndexError) as exc:
                log.warning("a fragment WebRTC could not read was skipped: %s", exc)

    def _began(self, init: bytes) -> None:
        self.info = stream_info(init)
        self.ready.set()
        self.generation += 1
        self.gop, self._gop_bytes = [], 0
        self._audio_position = 0
        self._opus = OpusTranscoder(self.info.audio_config) if self.info.audio_config else None
        if not self.info.h264:
            log.info("this camera's video is not H.264: WebRTC viewers get no picture")

    def _fragment(self, fragment: Fragment) -> None:
        info = self.info
        if info is None:
            return
        if fragment.time is None:
            if info.audio_track is not None and self._opus is not None and self._audio:
                for aac in samples(fragment.data, info.audio_track):
                    self._audio_frame(aac)
            return
        if info.video_track is None or not info.h264:
            return
        found = samples(fragment.data, info.video_track)
        if not found:
            return
        step = fragment.duration / len(found)
        for index, sample in enumerate(found):
            keyframe = fragment.keyframe and index == 0
            self._video_frame(annex_b(sample, info.parameter_sets, keyframe), fragment.time + index * step, keyframe)

    def _video_frame(self, data: bytes, time: float, keyframe: bool) -> None:
        packet = av.Packet(data)
        packet.pts, packet.time_base = 0, Fraction(1, VIDEO_CLOCK)
        payloads, _ = self._packer.pack(packet)
        self.frames_packetized += 1
        unit = VideoUnit(payloads, time, keyframe, self.generation)
        size = len(data)
        if keyframe:
            self.gop, self._gop_bytes = [unit], size
        elif self.gop and len(self.gop) < MAX_GOP_FRAMES and self._gop_bytes + size <= MAX_GOP_BYTES:
            self.gop.append(unit)
            self._gop_bytes += size
        else:
            self.gop, self._gop_bytes = [], 0
        for track in list(self._video):
            track.offer(unit)

    def _audio_frame(self, aac: bytes) -> None:
        assert self._opus is not None
        for payload in self._opus.add(aac):
            unit = AudioUnit(payload, self._audio_position, self.generation)
            self._audio_position += OPUS_FRAME
            self.opus_packets += 1
            for track in list(self._audio):
                track.offer(unit)

    # -- viewers (on the loop) ---------------------------------------------

    def video_track(self) -> VideoTrack:
        track = VideoTrack(self)
        self._video.add(track)
        track.start(self.gop)
        return track

    def audio_track(self) -> AudioTrack:
        track = AudioTrack(self)
        self._audio.add(track)
        return track

    def remove(self, track: _Track) -> None:
        self._video.discard(track)  # type: ignore[arg-type]
        self._audio.discard(track)  # type: ignore[arg-type]

    @property
    def tracks(self) -> int:
        return len(self._video) + len(self._audio)
