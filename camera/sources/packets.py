"""Network cameras read as packets with PyAV: their own H.264 (or H.265) passed through, pictures decoded only on demand.

(Video files and HTTP streams that are not MJPEG are read the same way: camera/sources/files.py and relay.py.)

An RTSP camera already sends compressed video. Each packet is muxed once
into fragmented MP4 for every MSE viewer and HLS reader
(camera/media/); nothing is decoded for them. Pictures (for MJPEG viewers,
snapshots, detectors, recorders) are decoded only while one of those
watches, starting from the current GOP so the first one comes at once.
A codec a browser cannot be handed (MPEG-4, MJPEG over RTSP) is decoded as
before. AAC audio rides along in the fragments; other audio is left out.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from fractions import Fraction
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import av
import av.logging
import numpy as np

from .. import jpeg
from ..base import BaseCamera
from ..broadcast import Broadcaster
from ..errors import SourceError
from ..limits import MAX_PIXELS
from ..media import fmp4
from ..media.feed import MediaFeed
from ..media.h264 import ParameterSets, parameter_sets, sps_size
from ..media.muxer import FragmentMuxer
from ..pacing import RateLimit, RateMeter
from . import hardware
from .rtsp_tracks import NotHandled, RtspTracks

log = logging.getLogger("camstream.camera")

# Codecs handed to browsers as they are.
PASSED_THROUGH = {"h264", "hevc"}
# Sound WebRTC passes on as it came (PCMU, PCMA), which fMP4 does not carry.
G711 = ("pcm_mulaw", "pcm_alaw")
# Open and read timeouts, seconds: below the camera's stall timeout, so the source reports its own error.
OPEN_TIMEOUT = 4.0
READ_TIMEOUT = 4.0
# How long FFmpeg looks at a live stream before it is opened. Its default (5 s, and up to 4 s in practice on an
# RTSP camera) is spent before the first picture; the stream's description (SDP) and its first packets say what
# is needed, and a keyframe's parameter sets say the rest (see _muxer_for).
ANALYZE_SECONDS = 0.2
# Packets of the current GOP kept for decoding on demand: a camera with rarer keyframes decodes from the next one.
MAX_GOP_PACKETS = 600
# camstream's own query parameters, taken off the URL before it is opened.
TRANSPORTS = ("tcp", "udp")


def show_ffmpeg_logs() -> None:
    """Have PyAV's FFmpeg say what goes wrong (``libav.tcp: Connection ... failed``) in the Python log, for
    ``--log-level debug``; otherwise PyAV keeps FFmpeg quiet, and camstream reports the trouble itself."""
    av.logging.set_level(av.logging.WARNING)


def split_options(url: str) -> tuple[str, str]:
    """``url`` without camstream's ``transport=`` query parameter, and the RTSP transport (TCP by default).

    Only an RTSP URL is looked into: any other keeps its query as it is."""
    if not _is_rtsp(url):
        return url, "tcp"
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    chosen = [value.lower() for key, value in query if key == "transport" and value.lower() in TRANSPORTS]
    if not chosen:
        return url, "tcp"
    kept = [(key, value) for key, value in query if not (key == "transport" and value.lower() in TRANSPORTS)]
    return urlunsplit(parts._replace(query=urlencode(kept))), chosen[-1]


class PacketCamera(BaseCamera):
    """A network stream (``rtsp://``, ``rtmp://``, ``srt://``, ...) read as packets."""

    # Whether the source is taken to send video to pass through before it is first opened (the page tries MSE).
    expects_video = True
    # Seconds FFmpeg looks at the stream before it is opened; None for FFmpeg's own (a file is read at once).
    analyze_seconds: float | None = ANALYZE_SECONDS
    # The biggest picture the stream may claim before it is refused (--max-picture-pixels).
    max_pixels: int = MAX_PIXELS

    def __init__(self, name: str, url: str, *, audio: bool = True, hwaccel: str = hardware.NONE, **options) -> None:
        super().__init__(name, source=url, **options)
        self.url, self.transport = split_options(url)
        self.audio = audio
        self.hwaccel = hwaccel
        self._decoding: str | None = None
        # Set once the camera turned out to send what camstream's own RTSP reader does not read (no H.264/H.265).
        self._ffmpeg_rtsp = False
        self._whole_frames = False
        self._keyframes = KeyframeClock()
        self._frames_in = FrameCounter()
        self.media = MediaFeed(expected=self.expects_video)
        self._stream_info: dict = {}
        self._packets = 0
        self._bytes_in = 0
        self._rate_started = time.monotonic()
        self._rate_bytes = 0
        self._bitrate = 0.0
        self._decoded = 0

    def frames(self) -> Iterator[np.ndarray | None]:
        container = self._open()
        self._whole_frames = getattr(container, "whole_frames", False)
        muxer: FragmentMuxer | None = None
        try:
            video = next(iter(container.streams.video), None)
            if video is None:
                raise SourceError(f"{self.source} has no video")
            audio = self._audio_stream(container)
            passed = video.codec_context.name in PASSED_THROUGH
            self._note_stream(video, audio, passed)
            # camstream's own RTSP client (each frame handed on at its RTP marker), or FFmpeg's demuxer.
            self._stream_info["reader"] = "camstream" if self._whole_frames else "ffmpeg"
            check_picture_size(video.codec_context.width, video.codec_context.height, self.max_pixels)
            if not passed:
                self.media.refuse(f"its {video.codec_context.name} video is decoded, not passed through")
            decoder = Decoder(video, self._count_decoded, self.max_pixels)
            pictures = PictureRate(self.broadcaster)
            keyframes = self._keyframes = KeyframeClock()
            frames = self._frames_in = FrameCounter()
            streams = [video] + ([audio] if audio is not None and passed else [])
            # G.711 rides beside the fragments (fMP4 does not carry it), for WebRTC; AAC inside them.
            g711 = audio.codec_context.name if audio is not None and audio.codec_context.name in G711 else None
            muxed_audio = None if g711 else audio
            self.media.audio_stream(g711, audio.sample_rate if g711 else 0, audio.channels if g711 else 0)
            audio_config: bytes | None = None
            for packet in self._read(container, streams):
                self._count(packet)
                if packet.stream is not video:
                    if g711 and muxer is not None:
                        self.media.audio_packet(g711, bytes(packet), float(_seconds_of(packet)))
                    elif not g711:
                        audio_config = audio_config or fmp4.adts_config(bytes(packet))
                        if muxer is not None:
                            self._publish(muxer.add(packet))
                    continue
                if packet.is_keyframe:
                    keyframes.tick(packet)
                frames.tick(packet)
                if passed:
                    if packet.is_keyframe:
                        made = self._muxer_for(packet, muxer, video, muxed_audio, audio_config)
                        if made is not muxer:
                            muxer = made
                            self.media.begin(muxer.init, muxer.mime_type)
                    if muxer is not None:
                        self._publish(muxer.add(packet))
                wanted = not passed or self.broadcaster.wanted
                if not packet.is_keyframe and wanted and pictures.keyframes_enough(keyframes.interval):
                    wanted = False  # nobody needs a picture between keyframes: only keyframes are decoded
                yield decoder.take(packet, wanted, wanted and pictures.due())
        except av.FFmpegError as exc:
            raise SourceError(f"{self.source}: {_reason(exc)}") from None
        finally:
            self.media.end()
            container.close()

    def _read(self, container: av.container.InputContainer, streams: list) -> Iterator[av.Packet]:
        """The packets of ``streams`` as they come; a live stream that ends is an error (the camera reconnects)."""
        for packet in container.demux(*streams):
            if packet.size == 0:
                raise SourceError(f"{self.source} ended the stream")
            yield packet

    def _muxer_for(self, keyframe: av.Packet, muxer: FragmentMuxer | None, video: av.video.stream.VideoStream,
                   audio: av.audio.stream.AudioStream | None, audio_config: bytes | None) -> FragmentMuxer:
        """The muxer for the stream from ``keyframe`` on: a new one (a new init segment for every viewer) when
        the keyframe's parameter sets are not the ones the current muxer was made with."""
        found = parameter_sets(bytes(keyframe)) if video.codec_context.name == "h264" else None
        if muxer is not None and (found is None or found.sps == getattr(muxer.parameters, "sps", found.sps)):
            return muxer
        if found is not None:
            found = _with_size(found, self.max_pixels)
            if muxer is not None:
                log.info("camera %s: the stream changed (now %dx%d); viewers start over with it", self.name,
                         found.width, found.height)
                self._stream_info.update(width=found.width or None, height=found.height or None)
        return FragmentMuxer(video, audio, found, audio_config, whole_frames=self._whole_frames)

    def _open(self) -> av.container.InputContainer | RtspTracks:
        accelerator, decoding = hardware.accelerator(self.hwaccel)
        if _is_rtsp(self.url) and self.transport == "tcp" and not self._ffmpeg_rtsp:
            try:
                tracks = RtspTracks(self.url, self.source, open_timeout=OPEN_TIMEOUT, read_timeout=READ_TIMEOUT,
                                    audio=self.audio, hwaccel=accelerator, max_pixels=self.max_pixels)
            except NotHandled as exc:
                log.info("camera %s: %s: read with FFmpeg's RTSP demuxer over %s", self.name, exc,
                         exc.transport.upper())
                self._ffmpeg_rtsp = True
                self.transport = exc.transport
            except av.FFmpegError as exc:
                raise SourceError(f"could not open {self.source}: {_reason(exc)}") from None
            else:
                self._note_decoding(decoding)
                return tracks
        options = {"rtsp_transport": self.transport} if _is_rtsp(self.url) else {}
        # Also for the decoding FFmpeg does while it looks at the stream: a giant picture is refused, not made.
        options["max_pixels"] = str(self.max_pixels)
        if self.analyze_seconds is not None:
            options["analyzeduration"] = str(round(self.analyze_seconds * 1_000_000))
        self._note_decoding(decoding)
        try:
            return av.open(self.url, options=options, timeout=(OPEN_TIMEOUT, READ_TIMEOUT), hwaccel=accelerator)
        except av.FFmpegError as exc:
            raise SourceError(f"could not open {self.source}: {_reason(exc)}") from None

    def _note_decoding(self, decoding: str) -> None:
        if decoding != self._decoding and self.hwaccel != hardware.NONE:
            log.log(logging.WARNING if decoding.startswith("software") else logging.INFO,
                    "camera %s: decoding with %s", self.name, decoding)
        self._decoding = decoding

    def _audio_stream(self, container: av.container.InputContainer) -> av.audio.stream.AudioStream | None:
        audio = next(iter(container.streams.audio), None)
        if audio is None or not self.audio:
            return None
        if audio.codec_context.name not in ("aac", *G711):
            self._stream_info["audio_note"] = (f"{audio.codec_context.name} audio is left out (AAC rides along, "
                                               "G.711 goes to WebRTC)")
            return None
        return audio

    def _publish(self, fragments: list) -> None:
        for fragment in fragments:
            self.media.publish(fragment)

    def _count(self, packet: av.Packet) -> None:
        self._packets += 1
        self._bytes_in += packet.size
        self._rate_bytes += packet.size
        now = time.monotonic()
        if now - self._rate_started >= 2.0:
            self._bitrate = self._rate_bytes * 8 / (now - self._rate_started)
            self._rate_started, self._rate_bytes = now, 0

    def _count_decoded(self, count: int) -> None:
        self._decoded += count

    def _note_stream(self, video: av.video.stream.VideoStream, audio: av.audio.stream.AudioStream | None,
                     passed: bool) -> None:
        context = video.codec_context
        rate = video.average_rate or video.guessed_rate
        self._stream_info = {
            **{key: value for key, value in self._stream_info.items() if key == "audio_note"},
            "codec": context.name,
            "profile": context.profile,
            "width": context.width or None,
            "height": context.height or None,
            "fps": round(float(rate), 3) if rate else None,
            "audio": audio.codec_context.name if audio is not None else None,
            "mode": "passthrough" if passed else "transcode",
            "decoding": self._decoding_note(context),
        }

    def _decoding_note(self, context: av.video.codeccontext.VideoCodecContext) -> str:
        """What decodes this camera's pictures: ``software``, a device, or software and why."""
        if self._decoding is None or self._decoding.startswith("software") or context.is_hwaccel:
            return self._decoding or "software"
        return f"software ({self._decoding} does not decode {context.name} here)"

    def picture_size(self) -> tuple[int, int] | None:
        """Its frames' size, known from the stream before any frame is decoded."""
        width, height = self._stream_info.get("width"), self._stream_info.get("height")
        if self._size is None and width and height:
            return jpeg.target_size(width, height, self.width, self.height)
        return self._size

    def extra_viewers(self) -> int:
        return self.media.viewer_count

    def status(self) -> dict:
        status = super().status()
        if not self._stream_info:
            return status  # not opened yet, or relaying MJPEG
        info = dict(self._stream_info)
        interval = self._keyframes.interval
        info.update(keyframe_seconds=round(interval, 3) if interval is not None else None)
        info.update(bitrate=round(self._bitrate), packets=self._packets, bytes_in=self._bytes_in, decoded=self._decoded,
                    mime_type=self.media.mime_type or None, mse_viewers=self.media.viewer_count)
        if info.get("mode") != "passthrough":
            return {**status, "video": info}
        # What viewers see is the camera's own video, whatever is decoded: its rate and size. The rate of
        # pictures made for MJPEG, snapshots and detectors has a field of its own.
        return {**status, "measured_fps": round(self._frames_in.rate(), 2),
                "decoded_fps": status["measured_fps"],
                "width": info.get("width") or status["width"], "height": info.get("height") or status["height"],
                "video": info}

    def stop(self, timeout: float = 5.0) -> None:
        super().stop(timeout)
        self.media.close_all()


class PictureRate:
    """Whether the picture of the packet now in hand is wanted: every one while a viewer or a recorder takes
    every frame; while only a detector watches, a little more often than it runs (it keeps its own rate by the
    frames' times, so it must never find one missing)."""

    MARGIN = 1.25
    # A keyframe a little late (the camera's clock, the network) still counts as coming at the wanted rate.
    KEYFRAME_SLACK = 1.1

    def __init__(self, broadcaster: Broadcaster) -> None:
        self._broadcaster = broadcaster
        self._rate: float | None = None
        self._limit = RateLimit()

    def due(self) -> bool:
        rate = self._broadcaster.wanted_fps
        if rate is None:
            self._rate = None
            return True
        if rate != self._rate:
            self._rate, self._limit = rate, RateLimit(rate * self.MARGIN if rate else None)
        return bool(rate) and self._limit.allows(time.time())

    def keyframes_enough(self, keyframe_interval: float | None) -> bool:
        """Whether the keyframes alone come as often as pictures are wanted (a detector at 1 fps on a camera
        with a keyframe a second): then the frames between them need not be decoded at all."""
        rate = self._broadcaster.wanted_fps
        return bool(rate and keyframe_interval and rate * keyframe_interval <= self.KEYFRAME_SLACK)


class FrameCounter:
    """The rate of a stream's pictures as they arrive: one per new time (a picture may come as several
    packets of one time)."""

    def __init__(self) -> None:
        self._meter = RateMeter()
        self._last: int | None = None

    def tick(self, packet: av.Packet) -> None:
        at = packet.pts if packet.pts is not None else packet.dts
        if at is None or at != self._last:
            self._meter.tick()
        self._last = at

    def rate(self) -> float:
        return self._meter.rate()


class KeyframeClock:
    """How far apart the stream's keyframes come, in seconds of the stream's own time (None until two have
    come). A keyframe may come as several packets of one time (its parameter sets apart, over RTSP): one."""

    def __init__(self) -> None:
        self._last: float | None = None
        self.interval: float | None = None

    def tick(self, packet: av.Packet) -> None:
        if packet.pts is None or packet.time_base is None:
            return
        at = float(packet.pts * packet.time_base)
        if self._last is not None and at > self._last:
            self.interval = at - self._last
        if self._last is None or at > self._last:
            self._last = at


class Decoder:
    """Pictures from a video stream's packets, decoded only while wanted.

    The packets since the newest keyframe are kept, so that when pictures
    are wanted again the current one is ready at once.
    """

    def __init__(self, stream: av.video.stream.VideoStream, counted: Callable[[int], None],
                 max_pixels: int = MAX_PIXELS) -> None:
        self.context = stream.codec_context
        # FFmpeg refuses to allocate a picture beyond this, whatever a later SPS claims.
        self.context.options = {**self.context.options, "max_pixels": str(max_pixels)}
        self._gop: list[av.Packet] = []
        self._warm = False
        self._counted = counted

    def take(self, packet: av.Packet, wanted: bool, picture: bool = True) -> np.ndarray | None:
        """The picture of ``packet`` if pictures are wanted and ``picture`` says this one is (None if not, or if
        it gives none). A packet whose picture is not wanted is still decoded while pictures are: the next
        ones refer to it."""
        if packet.is_keyframe:
            self._gop = []
        if len(self._gop) < MAX_GOP_PACKETS:
            self._gop.append(packet)
        if not wanted:
            self._warm = False
            return None
        try:
            if not self._warm:
                self._warm = True
                if not packet.is_keyframe:
                    return self._catch_up(picture)
            return self._last_picture(self.context.decode(packet), picture)
        except av.FFmpegError:
            return None  # a broken packet: the next ones may decode; the camera's bad-frame count says so

    def _catch_up(self, picture: bool) -> np.ndarray | None:
        """Decode the kept GOP up to now; the newest picture."""
        frames = []
        for packet in self._gop:
            frames += self.context.decode(packet)
        return self._last_picture(frames, picture)

    def _last_picture(self, frames: list, picture: bool) -> np.ndarray | None:
        if not frames:
            return None
        self._counted(len(frames))
        return frames[-1].to_ndarray(format="bgr24") if picture else None


def _with_size(parameters: ParameterSets, max_pixels: int = MAX_PIXELS) -> ParameterSets:
    """``parameters`` with the picture size its SPS declares; a SourceError for a picture too large to decode,
    before anything is allocated for it."""
    size = sps_size(parameters.sps)
    if size is None:
        return parameters
    check_picture_size(*size, max_pixels)
    return ParameterSets(parameters.sps, parameters.pps, *size)


def check_picture_size(width: int, height: int, max_pixels: int = MAX_PIXELS) -> None:
    """A SourceError naming the size if a ``width`` x ``height`` picture is more than camstream decodes."""
    if width * height > max_pixels:
        raise SourceError(f"the camera's pictures are {width}x{height}, more than the {max_pixels:,} pixels "
                          f"camstream takes")


def _seconds_of(packet: av.Packet) -> Fraction:
    raw = packet.pts if packet.pts is not None else packet.dts
    return raw * packet.time_base if raw is not None and packet.time_base is not None else Fraction(0)


def _is_rtsp(url: str) -> bool:
    return url.lower().startswith(("rtsp://", "rtsps://"))


def _reason(exc: av.FFmpegError) -> str:
    """What FFmpeg said, without the URL it names (which may hold a password)."""
    text = getattr(exc, "strerror", None) or str(exc)
    return str(text).split(": '", 1)[0]
