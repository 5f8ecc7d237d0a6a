"""An RTSP camera's tracks as PyAV packets, each frame handed on the moment its RTP marker is in.

:class:`RtspTracks` looks to the rest of camstream like the container
``av.open`` gives (``streams.video``, ``streams.audio``, ``demux()``,
``close()``), so camera/sources/packets.py reads it as it reads FFmpeg's;
but the RTSP and RTP under it are camstream's own (camera/sources/rtsp.py,
camera/media/rtp.py), and every video packet is a whole frame.

The streams themselves come from FFmpeg: a few bytes of the camera's own
(its parameter sets and first keyframe, its first AAC frames in ADTS) are
opened with PyAV, which gives a stream with the codec's parameters, for
the MP4 muxer's init segment and for the decoder.

The tracks' times are put on one clock: by the ``RTP-Info`` of the PLAY
answer when the server gives it (each track's RTP time at the start),
else by when each track's first packet arrived.
"""

from __future__ import annotations

import io
import logging
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

import av

from ..errors import SourceError
from ..limits import MAX_PIXELS
from ..media import rtp, sdp
from ..media.h264 import nal_units, sps_frame_rate, sps_size
from .rtsp import RtspRefused, RtspSession

log = logging.getLogger("camstream.camera")

VIDEO_CODECS = {"h264": "h264", "h265": "hevc"}
AUDIO_CODECS = {"mpeg4-generic": "aac", "pcmu": "pcm_mulaw", "pcma": "pcm_alaw"}
# How long the first keyframe may take after PLAY (a camera's keyframe interval is rarely above 10 s).
FIRST_KEYFRAME_SECONDS = 20.0
# How long an AAC track may take to send its first frame once the first keyframe is in.
FIRST_AUDIO_SECONDS = 1.0
# What is kept while waiting for it.
MAX_WAITING_UNITS = 2000
AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)


# "Unsupported Transport": a camera that sends RTP over UDP only.
UNSUPPORTED_TRANSPORT = 461


class NotHandled(Exception):
    """The camera sends no H.264 or H.265 video, or no RTP over TCP: it is read with FFmpeg's RTSP demuxer
    instead (``transport`` says over what)."""

    def __init__(self, reason: str, transport: str = "tcp") -> None:
        super().__init__(reason)
        self.transport = transport


@dataclass
class _Track:
    media: sdp.Media
    channel: int
    depacketizer: rtp.Depacketizer
    codec: str
    stream: av.stream.Stream | None = None
    offset: int | None = None  # added to a unit's unwrapped RTP time to give its pts
    start_rtp: int | None = None  # from RTP-Info

    @property
    def time_base(self) -> Fraction:
        return Fraction(1, self.media.clock_rate)


class _Streams:
    def __init__(self, video: list, audio: list) -> None:
        self.video, self.audio = video, audio


class RtspTracks:
    """An RTSP camera opened over TCP: its video (H.264 or H.265) and its first AAC or G.711 track, if any."""

    whole_frames = True

    def __init__(self, url: str, source: str, *, open_timeout: float, read_timeout: float, audio: bool = True,
                 hwaccel: object = None, max_pixels: int = MAX_PIXELS) -> None:
        self.source = source
        self._hwaccel = hwaccel
        self._max_pixels = max_pixels
        self._templates: list[av.container.InputContainer] = []
        self._waiting: deque[tuple[_Track, rtp.Unit]] = deque()
        self.session = RtspSession(url, source, open_timeout=open_timeout, read_timeout=read_timeout)
        try:
            self._tracks = self._set_up(audio)
            self._started = time.monotonic()
            self._wait_for_keyframe()
        except BaseException:
            self.close()
            raise
        video = self._tracks[0]
        self.streams = _Streams([video.stream], [track.stream for track in self._tracks[1:] if track.stream])

    # -- set up ----------------------------------------------------------------------------------------------

    def _set_up(self, audio: bool) -> list[_Track]:
        session = self.session
        try:
            session.request("OPTIONS", session.target.url)
        except RtspRefused:
            pass  # some cameras answer OPTIONS only once signed in, or not at all: DESCRIBE says
        described = session.request("DESCRIBE", session.target.url, {"Accept": "application/sdp"})
        base = described.header("content-base") or described.header("content-location") or session.target.url
        medias = sdp.parse(described.body.decode("utf-8", "replace"))
        video = next((media for media in medias if media.kind == "video" and media.codec in VIDEO_CODECS), None)
        if video is None:
            raise NotHandled("no H.264 or H.265 video")
        tracks = [_Track(video, 0, _video_depacketizer(video), VIDEO_CODECS[video.codec])]
        sound = next((media for media in medias if media.kind == "audio" and media.codec in AUDIO_CODECS), None)
        if audio and sound is not None and _audio_ok(sound):
            tracks.append(_Track(sound, 2, _audio_depacketizer(sound), AUDIO_CODECS[sound.codec]))
        for track in list(tracks):
            try:
                session.request("SETUP", track.media.url(base), {
                    "Transport": f"RTP/AVP/TCP;unicast;interleaved={track.channel}-{track.channel + 1}"})
            except RtspRefused as refused:
                if track is tracks[0] and refused.status == UNSUPPORTED_TRANSPORT:
                    raise NotHandled("it sends no RTP over TCP", "udp") from None
                if track is tracks[0]:
                    raise
                tracks.remove(track)  # the camera would not send its sound: the video goes on alone
        played = session.request("PLAY", base, {"Range": "npt=0.000-"})
        self._played_at = time.monotonic()
        _take_rtp_info(played.header("rtp-info"), tracks, base)
        return tracks

    def _wait_for_keyframe(self) -> None:
        """Read until the first video keyframe (what the streams' parameters come from), keeping what came."""
        video = self._tracks[0]
        keyframe: rtp.Unit | None = None
        while keyframe is None:
            if time.monotonic() - self._started > FIRST_KEYFRAME_SECONDS:
                raise SourceError(f"{self.source} sent no keyframe in {FIRST_KEYFRAME_SECONDS:g} s")
            for track, unit in self._units():
                if len(self._waiting) < MAX_WAITING_UNITS:
                    self._waiting.append((track, unit))
                if track is video and unit.keyframe:
                    keyframe = unit
        sound = self._tracks[1] if len(self._tracks) > 1 and self._tracks[1].codec == "aac" else None
        heard = time.monotonic()
        while sound is not None and not any(track is sound for track, _ in self._waiting):
            # AAC's stream parameters come from its first frame, a few ms away; a camera that sends none soon
            # is watched without sound.
            if time.monotonic() - heard > FIRST_AUDIO_SECONDS:
                log.info("%s: its AAC track sent nothing: watched without sound", self.source)
                self._tracks.remove(sound)
                break
            for track, unit in self._units():
                if len(self._waiting) < MAX_WAITING_UNITS:
                    self._waiting.append((track, unit))
        while self._waiting and self._waiting[0][0] is video and not self._waiting[0][1].keyframe:
            self._waiting.popleft()  # frames before the first keyframe decode to nothing
        self._check_size(keyframe)
        video.stream = self._template(video.codec, keyframe.data, {"framerate": _frame_rate(video.media, keyframe),
                                                                   "max_pixels": str(self._max_pixels)})
        for track in self._tracks[1:]:
            track.stream = self._audio_template(track)

    def _check_size(self, keyframe: rtp.Unit) -> None:
        """A SourceError for an H.264 camera whose SPS claims a picture too large, before FFmpeg sees it."""
        sps = next((unit for unit in nal_units(keyframe.data) if unit[0] & 0x1F == rtp.H264_SPS), None)
        size = sps_size(sps) if sps and self._tracks[0].codec == "h264" else None
        if size is not None and size[0] * size[1] > self._max_pixels:
            raise SourceError(f"the camera's pictures are {size[0]}x{size[1]}, more than the {self._max_pixels:,} "
                              "pixels camstream takes")

    def _template(self, codec: str, data: bytes, options: dict[str, str]) -> av.stream.Stream:
        try:
            container = av.open(io.BytesIO(data), format=codec if codec != "aac" else "aac", options=options,
                                **({"hwaccel": self._hwaccel} if self._hwaccel is not None and codec in
                                   VIDEO_CODECS.values() else {}))
        except av.FFmpegError as exc:
            raise SourceError(f"{self.source}: its {codec} could not be read: {exc}") from None
        self._templates.append(container)
        stream = container.streams.video[0] if codec in VIDEO_CODECS.values() else container.streams.audio[0]
        return stream

    def _audio_template(self, track: _Track) -> av.stream.Stream | None:
        media = track.media
        if track.codec != "aac":
            layout = "mono" if media.channels == 1 else "stereo"
            return self._template("mulaw" if track.codec == "pcm_mulaw" else "alaw", b"\xff" * 160,
                                  {"sample_rate": str(media.clock_rate), "ch_layout": layout})
        config = media.audio_config()
        frames = [unit.data for kind, unit in self._waiting if kind is track][:4] or [b""]
        header = _adts_header(config or b"")
        if header is None:
            return None
        stream = self._template("aac", b"".join(header(len(frame)) + frame for frame in frames), {})
        stream.codec_context.extradata = config
        return stream

    # -- reading ---------------------------------------------------------------------------------------------

    def _units(self) -> Iterator[tuple[_Track, rtp.Unit]]:
        """The whole frames one interleaved chunk completes (RTCP and unknown channels give none)."""
        channel, chunk = self.session.read()
        track = next((track for track in self._tracks if track.channel == channel), None)
        if track is None:
            return
        try:
            packet = rtp.RtpPacket.parse(chunk)
        except rtp.RtpError:
            return
        if packet.payload_type != track.media.payload_type:
            return
        for unit in track.depacketizer.push(packet):
            yield track, unit

    def demux(self, *streams: av.stream.Stream) -> Iterator[av.Packet]:
        """The packets of ``streams`` as they come, each video packet a whole frame."""
        wanted = {id(stream) for stream in streams}
        while True:
            while self._waiting:
                track, unit = self._waiting.popleft()
                if id(track.stream) in wanted:
                    yield self._packet(track, unit)
            for track, unit in self._units():
                if id(track.stream) in wanted:
                    yield self._packet(track, unit)

    def _packet(self, track: _Track, unit: rtp.Unit) -> av.Packet:
        if track.offset is None:
            track.offset = self._offset(track, unit.time)
        packet = av.Packet(unit.data)
        packet.stream = track.stream
        packet.time_base = track.time_base
        packet.pts = packet.dts = unit.time + track.offset
        packet.is_keyframe = unit.keyframe
        return packet

    def _offset(self, track: _Track, first: int) -> int:
        """What puts this track's RTP times on the session's clock (0 at PLAY)."""
        rate = track.media.clock_rate
        if track.start_rtp is not None and all(other.start_rtp is not None for other in self._tracks):
            behind = ((first - track.start_rtp) & 0xFFFFFFFF)
            behind = behind - (1 << 32) if behind >= 1 << 31 else behind
            return -(first - behind)
        return round((time.monotonic() - self._played_at) * rate) - first

    def close(self) -> None:
        self.session.close()
        for container in self._templates:
            container.close()
        self._templates = []


def _frame_rate(media: sdp.Media, keyframe: rtp.Unit) -> str:
    """The camera's frame rate as it says it: the SDP's ``a=framerate``, else its SPS's timing (H.264), else
    30. It is what the stream says; the status shows the rate measured as well."""
    said = media.frame_rate
    if said is None and media.codec == "h264":
        sps = next((unit for unit in nal_units(keyframe.data) if unit[0] & 0x1F == rtp.H264_SPS), None)
        said = sps_frame_rate(sps) if sps else None
    return f"{said:.3f}" if said and 1 <= said <= 240 else "30"


def _video_depacketizer(media: sdp.Media) -> rtp.Depacketizer:
    if media.codec == "h264":
        return rtp.H264Depacketizer(media.parameter_sets())
    return rtp.H265Depacketizer(media.parameter_sets())


def _audio_ok(media: sdp.Media) -> bool:
    """Whether the track is one camstream reads: AAC in its high-bit-rate mode (what cameras send), or G.711."""
    if media.codec != "mpeg4-generic":
        return True
    mode = media.fmtp.get("mode", "").lower()
    return mode == "aac-hbr" and media.fmtp.get("sizelength", "13") == "13" and media.audio_config() is not None


def _audio_depacketizer(media: sdp.Media) -> rtp.Depacketizer:
    if media.codec != "mpeg4-generic":
        return rtp.PassDepacketizer()

    def number(key: str, default: int) -> int:
        text = media.fmtp.get(key, "")
        return int(text) if text.isdigit() else default

    return rtp.AacDepacketizer(number("sizelength", 13), number("indexlength", 3), number("indexdeltalength", 3))


def _adts_header(config: bytes):
    """A maker of ADTS headers for the AAC an AudioSpecificConfig describes (None if it cannot say)."""
    if len(config) < 2:
        return None
    profile = config[0] >> 3
    rate_index = ((config[0] & 0x07) << 1) | (config[1] >> 7)
    channels = (config[1] >> 3) & 0x0F
    if not 1 <= profile <= 4 or rate_index >= len(AAC_RATES) or channels > 7:
        return None

    def header(size: int) -> bytes:
        length = size + 7
        return bytes([0xFF, 0xF1, ((profile - 1) << 6) | (rate_index << 2) | (channels >> 2),
                      ((channels & 3) << 6) | (length >> 11), (length >> 3) & 0xFF, ((length & 7) << 5) | 0x1F, 0xFC])

    return header


def _take_rtp_info(header: str, tracks: list[_Track], base: str) -> None:
    """Each track's RTP time at the start, from ``RTP-Info: url=...;seq=...;rtptime=...,url=...``."""
    for entry in header.split(","):
        fields = dict(part.strip().partition("=")[::2] for part in entry.split(";"))
        url, stamp = fields.get("url", ""), fields.get("rtptime", "")
        if not stamp.isdigit():
            continue
        for track in tracks:
            control = track.media.control
            if url and (url == track.media.url(base) or (control and url.endswith(control))):
                track.start_rtp = int(stamp)
