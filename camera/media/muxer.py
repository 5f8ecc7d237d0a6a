"""A camera's packets into fragmented MP4 (CMAF), once for every viewer: an init segment, then a fragment a frame.

FFmpeg's MP4 muxer (through PyAV) does the writing, converting RTSP's
Annex B H.264 to MP4's length-prefixed samples; this module feeds it
packets with times it will accept, and cuts what it writes into the init
segment and fragments (see camera/media/boxes.py). FFmpeg closes a
fragment when the next packet arrives, so a fragment leaves one frame
interval after its frame came in.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from fractions import Fraction

import av

from .boxes import BoxError, Track, fragment_info, mime_type, split_boxes, tracks
from .h264 import ParameterSets

log = logging.getLogger("camstream.media")

# One fragment per frame, no moov index at the end, offsets from each moof (what MSE wants).
MOVFLAGS = "frag_every_frame+empty_moov+default_base_moof+skip_trailer"
# A source time that jumps further than this, or goes backwards, is taken as a new timeline.
MAX_STEP_SECONDS = 10.0


@dataclass(frozen=True)
class Fragment:
    """One ``moof`` + ``mdat``: its bytes, whether it starts with a keyframe, and its video's times in seconds
    (None for a fragment of audio alone)."""

    data: bytes
    keyframe: bool
    time: float | None
    duration: float


class _Sink(io.RawIOBase):
    """Where FFmpeg writes: collected until cut into boxes."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.buffer += data
        return len(data)


class FragmentMuxer:
    """Packets of a video stream (and an audio stream) in, an init segment and fragments out.

    Made from the input's streams; times are rebased to start at zero and
    made to increase, so a camera whose clock jumps or goes backwards
    still gives a stream a browser plays.
    """

    def __init__(self, video: av.video.stream.VideoStream, audio: av.audio.stream.AudioStream | None = None,
                 parameters: ParameterSets | None = None) -> None:
        self._sink = _Sink()
        self._output = av.open(self._sink, "w", format="mp4", options={"movflags": MOVFLAGS})
        self._video = self._output.add_stream_from_template(video)
        if video.codec_context.name == "hevc":
            # hvc1, not FFmpeg's default hev1: the sample entry Safari (and so iOS) plays.
            self._video.codec_tag = "hvc1"
        self.parameters = parameters
        if parameters is not None:
            # What the keyframe says, not what the stream said when it was opened (a new resolution, or no
            # parameter sets out of band at all).
            self._video.codec_context.extradata = parameters.extradata
            if parameters.width and parameters.height:
                self._video.codec_context.width, self._video.codec_context.height = parameters.width, parameters.height
        self._audio = self._output.add_stream_from_template(audio) if audio is not None else None
        self._inputs = {video.index: self._video}
        if audio is not None and self._audio is not None:
            self._inputs[audio.index] = self._audio
        self._last: dict[int, int] = {}
        self._offset: dict[int, int] = {}
        self._default_step = {video.index: _step(video), **({audio.index: _step(audio)} if audio is not None else {})}
        self.init: bytes | None = None
        self.mime_type = ""
        self._tracks: list[Track] = []
        self._video_track: Track | None = None
        self._head = b""

    def add(self, packet: av.Packet) -> list[Fragment]:
        """Mux one packet; the fragments (usually the previous packet's) that are now complete."""
        output = self._inputs.get(packet.stream.index)
        if output is None or packet.size == 0:
            return []
        dts, pts = self._times(packet)
        packet.dts, packet.pts = dts, pts
        packet.stream = output
        self._output.mux_one(packet)
        return self._collect()

    def close(self) -> list[Fragment]:
        """End the stream; the fragment of its last packet, which closing writes."""
        try:
            self._output.close()
        except (av.FFmpegError, OSError):
            return []
        try:
            return self._collect()
        except BoxError:
            return []

    def _times(self, packet: av.Packet) -> tuple[int, int]:
        """``packet``'s decode and presentation times in its own time base, increasing and starting near 0."""
        index = packet.stream.index
        step = self._default_step[index]
        raw = packet.dts if packet.dts is not None else packet.pts
        last = self._last.get(index)
        if raw is None:
            dts = 0 if last is None else last + step
        else:
            if index not in self._offset:
                self._offset[index] = -raw
            dts = raw + self._offset[index]
            limit = int(MAX_STEP_SECONDS / packet.time_base) if packet.time_base else 0
            if last is not None and (dts <= last or (limit and dts - last > limit)):
                # A clock that jumped: go on from where the stream was.
                self._offset[index] += last + step - dts
                dts = last + step
        self._last[index] = dts
        shift = (packet.pts - raw) if packet.pts is not None and raw is not None else 0
        return dts, dts + max(0, shift)

    def _collect(self) -> list[Fragment]:
        boxes, rest = split_boxes(bytes(self._sink.buffer))
        self._sink.buffer = bytearray(rest)
        fragments: list[Fragment] = []
        pending: bytes | None = None
        for kind, box in boxes:
            if kind in (b"ftyp", b"moov"):
                self._header(kind, box)
            elif kind == b"moof":
                pending = box
            elif kind == b"mdat" and pending is not None:
                fragments.append(self._fragment(pending, box))
                pending = None
        if pending is not None:
            # A moof whose mdat is not written yet: keep it for the next call.
            self._sink.buffer[:0] = pending
        return fragments

    def _header(self, kind: bytes, box: bytes) -> None:
        self._head = (self._head if kind == b"moov" else b"") + box
        if kind == b"moov":
            self.init = self._head
            self._tracks = tracks(self.init)
            video = next((track for track in self._tracks if track.kind == "vide"), None)
            if video is None:
                raise BoxError("an init segment without a video track")
            self._video_track = video
            self.mime_type = mime_type(self.init)

    def _fragment(self, moof: bytes, mdat: bytes) -> Fragment:
        track = self._video_track
        info = fragment_info(moof, track) if track is not None else None
        if track is None or info is None:  # audio only
            return Fragment(moof + mdat, False, None, 0.0)
        return Fragment(moof + mdat, info.keyframe, info.decode_time / track.timescale,
                        info.duration / track.timescale)


def _step(stream: av.stream.Stream) -> int:
    """A packet's usual length in its stream's time base: one frame (or 1024 audio samples)."""
    base = stream.time_base or Fraction(1, 90000)
    rate = getattr(stream, "average_rate", None) or getattr(stream, "guessed_rate", None)
    if stream.type == "audio":
        rate = Fraction(stream.sample_rate or 48000, 1024)
    seconds = 1 / Fraction(rate) if rate else Fraction(1, 30)
    return max(1, round(seconds / base))
