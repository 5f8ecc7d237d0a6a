"""A camera's packets into fragmented MP4 (CMAF), once for every viewer: an init segment, then a fragment a frame.

FFmpeg's MP4 muxer (through PyAV) writes the init segment, turning the
stream's parameters into ``avcC``/``hvcC``/``esds``; each packet then
becomes a fragment of its own the moment it arrives (camera/media/fmp4.py),
so no frame waits for the next one.

The times are the camera's, made safe for a player: per track, decode
times only go forward and are the running sum of the samples' durations,
so fragments follow each other without gap or overlap. A video sample
lasts the step from the previous frame's time (a zero, backward or absurd
step, as a camera's clock jump gives, counts as one usual frame: the
timeline goes on cleanly instead of bending); an AAC sample always lasts
1024 samples of its rate, since RTSP may give two frames of one packet a
single time. Audio that falls behind the camera's clock (lost packets)
catches up at once.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from fractions import Fraction

import av

from . import fmp4
from .boxes import mime_type, split_boxes, tracks
from .h264 import ParameterSets, starts_picture

log = logging.getLogger("camstream.media")

# No fragment index at the end, offsets from each moof (what MSE wants); FFmpeg writes the header alone.
MOVFLAGS = "empty_moov+default_base_moof+frag_custom+skip_trailer"
# A step in a source's clock longer than this, or one that goes backwards, is taken as a jump, not a frame's length.
MAX_STEP_SECONDS = 10.0
# Audio this far behind its own timestamps (lost packets) jumps ahead to them.
AUDIO_CATCH_UP_SECONDS = 0.1
AAC_FRAME_SAMPLES = 1024
# The most one picture may hold when it comes as several packets.
MAX_FRAME_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class Fragment:
    """One ``moof`` + ``mdat``: its bytes, whether it starts with a keyframe, and its video's decode time and
    duration in seconds on the stream's timeline (``time`` None for a fragment of audio alone)."""

    data: bytes
    keyframe: bool
    time: float | None
    duration: float


class _Sink(io.RawIOBase):
    """Where FFmpeg writes the init segment."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.buffer += data
        return len(data)


@dataclass(frozen=True)
class _Frame:
    """A video packet (or the packets of one picture) as an MP4 sample: its time in seconds (None if the camera
    gave none), its composition offset in seconds, and its length-prefixed bytes."""

    data: bytes
    seconds: Fraction | None
    composition: Fraction
    keyframe: bool

    @classmethod
    def of(cls, packet: av.Packet) -> _Frame:
        composition = Fraction(0)
        if packet.pts is not None and packet.dts is not None and packet.time_base is not None:
            composition = (packet.pts - packet.dts) * packet.time_base
        return cls(fmp4.length_prefixed(bytes(packet)), _seconds(packet), composition, packet.is_keyframe)

    def joined(self, other: _Frame) -> _Frame:
        if len(self.data) + len(other.data) > MAX_FRAME_BYTES:
            return self  # a picture that never ends: what is beyond the bound is dropped
        seconds = self.seconds if self.seconds is not None else other.seconds
        return _Frame(self.data + other.data, seconds, self.composition, self.keyframe or other.keyframe)


class _VideoClock:
    """A video track's decode times, in its timescale: each sample lasts the step from the previous one."""

    def __init__(self, default_step: int, max_step: int) -> None:
        self.default_step = default_step
        self.max_step = max_step
        self.next_time = 0
        self._last: int | None = None

    def place(self, source: int | None) -> tuple[int, int]:
        """The decode time and duration of the sample whose source time is ``source``."""
        step = self.default_step
        if source is not None and self._last is not None and 0 < source - self._last <= self.max_step:
            step = source - self._last
        if source is not None:
            self._last = source
        time, self.next_time = self.next_time, self.next_time + step
        return time, step


class _AudioClock:
    """An AAC track's decode times: 1024 samples a frame, catching up with the source after lost packets."""

    def __init__(self, frame: int, catch_up: int, max_step: int) -> None:
        self.frame = frame
        self.catch_up = catch_up
        self.max_step = max_step
        self.next_time: int | None = None
        self._offset = 0  # added to a source time to give where it falls on this track

    def place(self, source: int | None) -> int | None:
        """The decode time of the frame at ``source`` (the track's start is 0); None for a frame to drop: one
        from before the track starts."""
        if self.next_time is None:
            if source is not None and source < 0:
                return None
            self.next_time = max(0, source or 0)
            self._offset = self.next_time - (source or 0)
        elif source is not None:
            ahead = source + self._offset - self.next_time
            if ahead > self.max_step or ahead < -self.max_step:
                self._offset = self.next_time - source  # the source's clock jumped: go on from here
            elif ahead > self.catch_up:
                self.next_time += ahead  # frames were lost: what comes now plays when it should
        time = self.next_time
        self.next_time += self.frame
        return time


class FragmentMuxer:
    """Packets of a video stream (and an AAC stream) in; an init segment, then a fragment for each packet."""

    def __init__(self, video: av.video.stream.VideoStream, audio: av.audio.stream.AudioStream | None = None,
                 parameters: ParameterSets | None = None, audio_config: bytes | None = None, *,
                 whole_frames: bool = False) -> None:
        self.parameters = parameters
        # Whether every video packet is a whole picture (camstream's own RTSP reader ends each at its RTP
        # marker), so that no keyframe need wait for the next packet.
        self.whole_frames = whole_frames
        if audio is not None and not (audio.codec_context.extradata or audio_config):
            log.info("an AAC stream whose configuration is not known yet is left out of this stream")
            audio = None
        self.init = _init_segment(video, audio, parameters, audio_config)
        self.mime_type = mime_type(self.init)
        found = tracks(self.init)
        self._video_track = next(track for track in found if track.kind == "vide")
        self._audio_track = next((track for track in found if track.kind == "soun"), None)
        self._video_stream = video
        self._audio_stream = audio if audio is not None and self._audio_track is not None else None
        self._hevc = video.codec_context.name == "hevc"
        scale = self._video_track.timescale
        self._video_clock = _VideoClock(_frame_step(video, scale), round(MAX_STEP_SECONDS * scale))
        self._audio_clock: _AudioClock | None = None
        if self._audio_track is not None and audio is not None:
            rate = audio.sample_rate or self._audio_track.timescale
            scale = self._audio_track.timescale
            self._audio_clock = _AudioClock(round(AAC_FRAME_SAMPLES * scale / rate), round(AUDIO_CATCH_UP_SECONDS * scale),
                                            round(MAX_STEP_SECONDS * scale))
        self._origin: Fraction | None = None  # the first video frame's time, in seconds: 0 on both tracks
        self._held: _Frame | None = None
        self._sequence = 0

    def add(self, packet: av.Packet) -> list[Fragment]:
        """The fragments that are whole once ``packet`` is in: usually its own, at once (none for a packet of
        another stream, an empty one, or audio before the first video frame).

        A keyframe alone waits for the next video packet (unless ``whole_frames``): a camera that repeats its parameter sets before
        each slice of a keyframe (as x264's sliced threads behind GStreamer's payloader do) has FFmpeg's parser
        hand over one picture as several packets, which must be one sample. A packet whose first slice is not
        its picture's first is joined to the keyframe held.
        """
        if packet.size == 0:
            return []
        if packet.stream is self._video_stream:
            return self._video(packet)
        if packet.stream is self._audio_stream and self._origin is not None:
            return self._audio(packet)
        return []

    def _video(self, packet: av.Packet) -> list[Fragment]:
        frame = _Frame.of(packet)
        if self._origin is None:
            self._origin = frame.seconds if frame.seconds is not None else Fraction(0)
        held, self._held = self._held, None
        if held is not None and not starts_picture(frame.data, self._hevc):
            self._held = held.joined(frame)
            return []
        out = [self._video_fragment(held)] if held is not None else []
        if frame.keyframe and not self.whole_frames:
            self._held = frame
        else:
            out.append(self._video_fragment(frame))
        return out

    def _video_fragment(self, frame: _Frame) -> Fragment:
        track = self._video_track
        assert self._origin is not None
        source = None if frame.seconds is None else round((frame.seconds - self._origin) * track.timescale)
        decode_time, duration = self._video_clock.place(source)
        composition = round(frame.composition * track.timescale)
        sample = fmp4.Sample(frame.data, duration, frame.keyframe, composition)
        data = fmp4.fragment(self._next_sequence(), track.track_id, decode_time, [sample])
        return Fragment(data, frame.keyframe, decode_time / track.timescale, duration / track.timescale)

    def _audio(self, packet: av.Packet) -> list[Fragment]:
        track, clock = self._audio_track, self._audio_clock
        assert track is not None and clock is not None and self._origin is not None
        seconds = _seconds(packet)
        source = None if seconds is None else round((seconds - self._origin) * track.timescale)
        decode_time = clock.place(source)
        if decode_time is None:
            return []
        sample = fmp4.Sample(fmp4.raw_aac(bytes(packet)), clock.frame)
        data = fmp4.fragment(self._next_sequence(), track.track_id, decode_time, [sample])
        return [Fragment(data, False, None, clock.frame / track.timescale)]

    def _next_sequence(self) -> int:
        self._sequence += 1
        return self._sequence


def _init_segment(video: av.video.stream.VideoStream, audio: av.audio.stream.AudioStream | None,
                  parameters: ParameterSets | None, audio_config: bytes | None) -> bytes:
    """``ftyp`` + ``moov`` for the streams, as FFmpeg's MP4 muxer writes them before any packet."""
    sink = _Sink()
    output = av.open(sink, "w", format="mp4", options={"movflags": MOVFLAGS})
    try:
        stream = output.add_stream_from_template(video)
        if video.codec_context.name == "hevc":
            # hvc1, not FFmpeg's default hev1: the sample entry Safari (and so iOS) plays.
            stream.codec_tag = "hvc1"
        if parameters is not None:
            # What the keyframe says, not what the stream said when it was opened (a new resolution, or no
            # parameter sets out of band at all).
            stream.codec_context.extradata = parameters.extradata
            if parameters.width and parameters.height:
                stream.codec_context.width, stream.codec_context.height = parameters.width, parameters.height
        if audio is not None:
            sound = output.add_stream_from_template(audio)
            config = audio.codec_context.extradata or audio_config
            if config:
                sound.codec_context.extradata = config
        output.start_encoding()
        boxes, _ = split_boxes(bytes(sink.buffer))
    finally:
        try:
            output.close()
        except (av.FFmpegError, OSError):
            pass
    return b"".join(data for kind, data in boxes if kind in (b"ftyp", b"moov"))


def _seconds(packet: av.Packet) -> Fraction | None:
    raw = packet.dts if packet.dts is not None else packet.pts
    if raw is None or packet.time_base is None:
        return None
    return raw * packet.time_base


def _frame_step(stream: av.video.stream.VideoStream, timescale: int) -> int:
    """A frame's usual length in ``timescale`` units, from the stream's rate (30 fps if it names none)."""
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    seconds = 1 / Fraction(rate) if rate and rate > 0 else Fraction(1, 30)
    return max(1, round(seconds * timescale))

