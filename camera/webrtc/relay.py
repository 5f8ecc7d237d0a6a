"""One camera's video and audio made ready for RTP once, and handed to each WebRTC viewer's tracks.

The relay takes the camera's fMP4 from its MediaFeed (a fragment taker: on
the capture thread it only queues). On the WebRTC loop each video frame is
turned into Annex B and cut into RTP payloads (FU-A, STAP-A) **once**; each
AAC frame is transcoded to Opus once; G.711 the camera hands over
(:meth:`CameraRelay.audio_stream`, :meth:`CameraRelay.audio_packet`) is
passed on as it came; an H.265 camera's frames are made H.264 once, on a
thread of their own (camera/webrtc/transcode.py), while it has viewers. A viewer's track gets those very
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
import time
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
from .transcode import H264Transcoder

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
# Frame-to-viewer delays kept for the status's percentiles.
DELAY_SAMPLES = 2000
# A viewer's keyframe requests answered at most this often, in seconds (a browser repeats PLI until it decodes).
KEYFRAME_ANSWER_SECONDS = 0.5
# What a camera's sound reaches WebRTC viewers as (the status's ``audio``).
AUDIO_NONE, AUDIO_OPUS, AUDIO_PCMU, AUDIO_PCMA = "none", "opus-from-aac", "pcmu", "pcma"
# A camera's G.711 (FFmpeg's codec names) as WebRTC names it; WebRTC's G.711 is 8 kHz mono (RFC 3551).
G711 = {"pcm_mulaw": AUDIO_PCMU, "pcm_alaw": AUDIO_PCMA}
G711_RATE = 8000
# A G.711 packet longer than this (in samples: 120 ms) is cut into 20 ms ones: RTP packets stay under the MTU.
G711_MAX_SAMPLES = 960
G711_CUT = 160


def idle_relay_status(mime_type: str) -> dict[str, object]:
    """:meth:`CameraRelay.status` for a camera without a relay yet, from its fMP4's MIME type (the sound is
    known once a viewer comes: G.711 does not ride in the fMP4)."""
    video = ("passthrough" if "avc1" in mime_type or "avc3" in mime_type
             else "transcoded" if "hvc1" in mime_type or "hev1" in mime_type else "none")
    audio = AUDIO_OPUS if "mp4a" in mime_type else AUDIO_NONE
    return {"video": video, "audio": audio, "frames_packetized": 0, "frames_sent": 0, "frames_transcoded": 0,
            "transcode_dropped": 0,
            "opus_packets": 0, "g711_packets": 0, "dropped": 0, "send_delay_ms": None}


def delay_summary(delays: list[float]) -> dict[str, float] | None:
    """The median, 99th percentile and most of ``delays`` (seconds), in milliseconds; None for none."""
    if not delays:
        return None
    ordered = sorted(delays)
    return {"p50": round(1000 * ordered[len(ordered) // 2], 2),
            "p99": round(1000 * ordered[min(len(ordered) - 1, len(ordered) * 99 // 100)], 2),
            "max": round(1000 * ordered[-1], 2), "count": len(ordered)}


@dataclass(frozen=True)
class VideoUnit:
    """One frame of the camera, packetized once: its RTP payloads, its time on the camera's timeline."""

    payloads: list[bytes]
    time: float
    keyframe: bool
    generation: int
    # When the camera's fragment reached the relay (time.monotonic(), on the capture thread); None if unknown.
    arrived: float | None = None


@dataclass(frozen=True)
class AudioUnit:
    """One audio packet made once: Opus (its position in 48 kHz samples) or G.711 as the camera sent it (in
    8 kHz samples); ``samples`` is how long it lasts on that clock."""

    payload: bytes
    position: int
    generation: int
    codec: str = "opus"
    samples: int = OPUS_FRAME


class Sendable:
    """What a track hands aiortc's sender: payloads made once, the viewer's own RTP timestamp (its clock)."""

    __slots__ = ("arrived", "payloads", "timestamp")

    def __init__(self, payloads: list[bytes], timestamp: int, arrived: float | None = None) -> None:
        self.payloads = payloads
        self.timestamp = timestamp
        self.arrived = arrived


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
        if item.arrived is not None:  # aiortc's sender packs and sends it as soon as this returns
            self.relay.delays.append(time.monotonic() - item.arrived)
        if self.kind == "video":
            self.relay.frames_sent += 1
        return item

    def _put(self, payloads: list[bytes], timestamp: int, arrived: float | None = None) -> None:
        if self._last is not None and timestamp <= self._last:
            timestamp = self._last + 1  # RTP time never goes back for a viewer
        self._last = timestamp
        self._queue.put_nowait(Sendable(payloads, timestamp, arrived))

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
        self._put(unit.payloads, round(unit.time * VIDEO_CLOCK) + self._offset, unit.arrived)

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
    """A viewer's sound: the camera's Opus (or G.711) packets, timestamped on the viewer's own clock.

    ``codec`` is what the viewer's answer names (``opus``, ``pcmu``, ``pcma``): packets of another codec (a
    camera that came back with other sound) are not sent to it."""

    kind = "audio"

    def __init__(self, relay: CameraRelay) -> None:
        super().__init__(relay)
        self._offset: int | None = None
        self._generation = -1
        self._step = OPUS_FRAME
        self.codec = "opus"

    def offer(self, unit: AudioUnit) -> None:
        if unit.codec != self.codec:
            return
        if self._offset is None or unit.generation != self._generation:
            self._offset = (0 if self._last is None else self._last + self._step) - unit.position
            self._generation = unit.generation
        self._step = unit.samples
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
        # G.711 the camera announced for its next stream (audio_stream), and what its sound is sent as now.
        self._announced: str | None = None
        self.audio_path = AUDIO_NONE
        self.g711_packets = 0
        # An H.265 camera's H.264 for WebRTC, made while it has video viewers, from its kept GOP on.
        self._transcoder: H264Transcoder | None = None
        self._hevc_gop: list[tuple[bytes, float, bool]] = []
        self._arrivals: dict[int, float] = {}  # a frame's RTP time: when it reached the relay, while transcoded
        self.frames_transcoded = 0
        # Counted for the report and tests: frames packetized and Opus packets made, once each for all viewers.
        self.frames_packetized = 0
        self.frames_sent = 0  # video frames handed to viewers' RTP senders, every viewer's
        self.opus_packets = 0
        self.dropped = 0
        # Seconds from a live frame reaching the relay to its payloads going to a viewer's RTP sender, the last
        # DELAY_SAMPLES of them (every viewer's): the status shows their median and 99th percentile.
        self.delays: deque[float] = deque(maxlen=DELAY_SAMPLES)

    # -- the capture thread: queue only ----------------------------------

    def stream_began(self, init: bytes) -> None:
        self._queue("began", init)

    def fragment(self, fragment: Fragment, at: float) -> None:
        self._queue("fragment", (fragment, time.monotonic()))

    def stream_ended(self) -> None:
        self._queue("ended", None)

    def audio_stream(self, codec: str | None, rate: int, channels: int) -> None:
        """The sound of the stream about to begin (called before :meth:`stream_began`, each time a stream is
        opened): G.711 (``pcm_mulaw``, ``pcm_alaw``) at 8 kHz mono is passed through as it comes; anything
        else (None: no sound besides the fMP4's AAC) is not."""
        passed = G711.get(codec or "") if rate == G711_RATE and channels == 1 else None
        if codec in G711 and passed is None:
            log.info("this camera's G.711 is %d Hz, %d channel(s): WebRTC takes 8 kHz mono; no sound", rate,
                     channels)
        self._queue("audio_stream", passed)

    def audio_packet(self, codec: str, data: bytes, time: float) -> None:
        """One packet of the camera's G.711, as it came (``time``: where it starts, seconds, unused but for
        order); sent to every WebRTC viewer as it is."""
        self._queue("audio_packet", (G711.get(codec), data))

    def _queue(self, what: str, item: object) -> None:
        with self._inbox_lock:
            if len(self._inbox) >= MAX_INBOX and what in ("fragment", "audio_packet"):
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
                    self._fragment(*item)  # type: ignore[misc]
                elif what == "audio_stream":
                    self._announced = item  # type: ignore[assignment]
                elif what == "audio_packet":
                    self._g711(*item)  # type: ignore[misc]
                else:
                    self.info, self.gop, self._gop_bytes = None, [], 0
                    self._announced, self.audio_path = None, AUDIO_NONE
                    self._stop_transcoding()
                    self.ready.clear()
            except (BoxError, ValueError, IndexError) as exc:
                log.warning("a fragment WebRTC could not read was skipped: %s", exc)

    def _began(self, init: bytes) -> None:
        self.info = stream_info(init)
        self.ready.set()
        self.generation += 1
        self.gop, self._gop_bytes = [], 0
        self._stop_transcoding()
        self._audio_position = 0
        self._opus = None
        if self._announced is not None:
            self.audio_path = self._announced
        elif self.info.audio_config:
            self._opus, self.audio_path = OpusTranscoder(self.info.audio_config), AUDIO_OPUS
        else:
            self.audio_path = AUDIO_NONE
        if not self.info.h264 and not self.info.hevc:
            log.info("this camera's video is neither H.264 nor H.265: WebRTC viewers get no picture")

    def _fragment(self, fragment: Fragment, arrived: float) -> None:
        info = self.info
        if info is None:
            return
        if fragment.time is None:
            if info.audio_track is not None and self._opus is not None and self._audio:
                for aac in samples(fragment.data, info.audio_track):
                    self._audio_frame(aac)
            return
        if info.video_track is None or not (info.h264 or info.hevc):
            return
        found = samples(fragment.data, info.video_track)
        if not found:
            return
        step = fragment.duration / len(found)
        for index, sample in enumerate(found):
            keyframe = fragment.keyframe and index == 0
            at = fragment.time + index * step
            if info.hevc:
                self._hevc_frame(sample, at, keyframe, arrived)
            else:
                self._video_frame(annex_b(sample, info.parameter_sets, keyframe), at, keyframe, arrived)

    def _hevc_frame(self, sample: bytes, at: float, keyframe: bool, arrived: float) -> None:
        """An H.265 frame: kept with its GOP, and made H.264 while the camera has video viewers."""
        if keyframe:
            self._hevc_gop = [(sample, at, True)]
        elif self._hevc_gop and len(self._hevc_gop) < MAX_GOP_FRAMES:
            self._hevc_gop.append((sample, at, False))
        else:
            self._hevc_gop = []
        if self._transcoder is not None:
            self._arrivals[round(at * VIDEO_CLOCK)] = arrived
            self._transcoder.add(sample, at, keyframe)
        elif self._video and self._hevc_gop:
            self._start_transcoding()

    def _start_transcoding(self) -> None:
        assert self.info is not None and self.info.hevc_config is not None
        generation = self.generation

        def deliver(data: bytes, at: float, keyframe: bool) -> None:  # on the transcoder's thread
            webrtc_loop.soon(self._transcoded, generation, data, at, keyframe)

        self._transcoder = H264Transcoder(self.info.hevc_config, deliver)
        self._transcoder.start_from(self._hevc_gop)

    def _stop_transcoding(self) -> None:
        if self._transcoder is not None:
            self._transcoder.close()
            self._transcoder = None
            self.gop, self._gop_bytes = [], 0

    def _transcoded(self, generation: int, data: bytes, at: float, keyframe: bool) -> None:
        if generation != self.generation or self._transcoder is None:
            return
        self.frames_transcoded += 1
        self._video_frame(data, at, keyframe, self._arrivals.pop(round(at * VIDEO_CLOCK), None))
        while len(self._arrivals) > MAX_GOP_FRAMES:  # frames the transcoder dropped
            self._arrivals.pop(next(iter(self._arrivals)))

    def _video_frame(self, data: bytes, at: float, keyframe: bool, arrived: float | None = None) -> None:
        packet = av.Packet(data)
        packet.pts, packet.time_base = 0, Fraction(1, VIDEO_CLOCK)
        payloads, _ = self._packer.pack(packet)
        self.frames_packetized += 1
        unit = VideoUnit(payloads, at, keyframe, self.generation, arrived)
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

    def _g711(self, path: str | None, data: bytes) -> None:
        """The camera's G.711 packet to every viewer as it came (cut in 20 ms pieces if too long for one RTP
        packet): the very bytes, only the RTP around them per viewer."""
        if path is None or path != self.audio_path or self.info is None:
            return
        pieces = [data] if len(data) <= G711_MAX_SAMPLES else [data[at:at + G711_CUT]
                                                                 for at in range(0, len(data), G711_CUT)]
        for piece in pieces:
            unit = AudioUnit(piece, self._audio_position, self.generation, path, len(piece))
            self._audio_position += len(piece)
            self.g711_packets += 1
            for track in list(self._audio):
                track.offer(unit)

    def status(self) -> dict[str, object]:
        """How the camera reaches WebRTC viewers: its video ``passthrough`` (``none`` when it is not H.264, or
        no stream runs), its sound, and what was made once for all of them."""
        info = self.info
        video = "none" if info is None else "passthrough" if info.h264 else "transcoded" if info.hevc else "none"
        transcoder = self._transcoder
        return {"video": video, "audio": self.audio_path if info is not None else AUDIO_NONE,
                "frames_packetized": self.frames_packetized, "frames_sent": self.frames_sent,
                "frames_transcoded": self.frames_transcoded,
                "transcode_dropped": transcoder.dropped if transcoder is not None else 0,
                "opus_packets": self.opus_packets, "g711_packets": self.g711_packets, "dropped": self.dropped,
                "send_delay_ms": delay_summary(list(self.delays))}

    # -- viewers (on the loop) ---------------------------------------------

    def video_track(self) -> VideoTrack:
        track = VideoTrack(self)
        self._video.add(track)
        track.start(self.gop)
        if self._transcoder is None and self.info is not None and self.info.hevc and self._hevc_gop:
            self._start_transcoding()
        return track

    def audio_track(self) -> AudioTrack:
        track = AudioTrack(self)
        self._audio.add(track)
        return track

    def remove(self, track: _Track) -> None:
        self._video.discard(track)  # type: ignore[arg-type]
        self._audio.discard(track)  # type: ignore[arg-type]
        if not self._video:
            self._stop_transcoding()  # nobody to make H.264 for: the next viewer starts it from the kept GOP

    @property
    def tracks(self) -> int:
        return len(self._video) + len(self._audio)
