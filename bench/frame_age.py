"""How old a frame is when its fMP4 fragment reaches an /mse client, after the RTP packet that ends it.

One live RTSP camera (GStreamer's RTSP server: 1920x1080 at 30 fps H.264 from
x264 with AAC beside it, as the tests' ``/av``) is shared by every client,
all in one run on one clock (``time.perf_counter``):

- camstream's own RTSP client (camera/sources/rtsp_tracks.py) alone, the
  earliest any client can have a frame: for each video frame, when the RTP
  packet with the marker bit (the frame's last) was read, and its NAL units;
- an /mse WebSocket client of camstream at this checkout and, with
  ``--compare``, one of an older camstream (a folder, or a revision taken
  out with ``git archive``) against the same camera at the same time;
- a plain PyAV reader (no camstream): when ``container.demux()`` yields the
  frame, which is when FFmpeg's H.264 parser lets it go.

Frames are matched by content: a hash of the frame's largest slice NAL unit,
the same bytes in the RTP payload, in FFmpeg's packet and in a fragment's
``mdat``. A frame's age at a client is when the client had it minus when its
marker packet arrived; keyframes (IDR) are reported apart from the others.

    python bench/frame_age.py --compare 11212ee      # about a minute
    python bench/frame_age.py --seconds 3 --size 320x240 --out -
"""

from __future__ import annotations

import argparse
import hashlib
import re
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import av
import websocket
from passthrough import FPS, GOP, HEIGHT, SYSTEM_PYTHON, WIDTH
from report import publish
from run import ROOT, Process, pinned

from camera.errors import SourceError
from camera.sources.rtsp_tracks import RtspTracks

AUDIO = ("audiotestsrc is-live=true ! audio/x-raw,rate=48000,channels=1 ! avenc_aac ! aacparse ! "
         "rtpmp4gpay name=pay1 pt=97")
SLICES = (1, 5)  # NAL unit types of a coded slice: non-IDR, IDR
# A client's frame is matched to the latest frame of the same bytes whose marker came before it, within this.
MATCH_WINDOW = 5.0


def key(nal: bytes) -> bytes:
    return hashlib.blake2b(nal, digest_size=16).digest()


def largest_slice(nals: list[bytes]) -> bytes | None:
    slices = [nal for nal in nals if nal and nal[0] & 0x1F in SLICES]
    return max(slices, key=lambda nal: (len(nal), nal)) if slices else None


def annexb_nals(data: bytes) -> list[bytes]:
    """The NAL units of an Annex B stream (what FFmpeg's RTSP demuxer hands over for H.264)."""
    starts = [match.end() for match in re.finditer(b"\x00\x00\x01", data)]
    nals = []
    for index, start in enumerate(starts):
        end = starts[index + 1] - 3 if index + 1 < len(starts) else len(data)
        nals.append(data[start:end].rstrip(b"\x00"))
    return nals


def length_prefixed_nals(data: bytes) -> list[bytes]:
    """The NAL units of an MP4 sample, each after a 4-byte length."""
    nals, offset = [], 0
    while offset + 4 <= len(data):
        (size,) = struct.unpack_from(">I", data, offset)
        nals.append(data[offset + 4:offset + 4 + size])
        offset += 4 + size
    return nals


# -- the earliest client: camstream's own RTSP reader ----------------------------------------------------------

class RtpClient:
    """camstream's own RTSP client (camera/sources/rtsp_tracks.py) alone, in a thread: each video frame as its
    marker packet is read, the earliest any client can have it."""

    def __init__(self, url: str) -> None:
        self.frames: list[tuple[float, int, bool, bytes | None]] = []  # marker time, RTP time, IDR, largest slice
        self.tracks = RtspTracks(url, "bench camera", open_timeout=10, read_timeout=10, audio=True)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        video = self.tracks.streams.video[0]
        try:
            for packet in self.tracks.demux(*self.tracks.streams.video, *self.tracks.streams.audio):
                if packet.stream is not video:
                    continue
                arrived = time.perf_counter()
                if self.stop.is_set():
                    return
                self.frames.append((arrived, packet.pts, packet.is_keyframe, largest_slice(annexb_nals(bytes(packet)))))
        except SourceError:
            return

    def close(self) -> None:
        self.stop.set()
        self.thread.join(15)
        self.tracks.close()


# -- the other clients: /mse and a plain PyAV reader -------------------------------------------------------------

class MseClient:
    """An /mse WebSocket client: each binary message and when it arrived; parsed after the run."""

    def __init__(self, port: int, name: str) -> None:
        self.messages: list[tuple[float, bytes]] = []
        self.ws = websocket.create_connection(f"ws://127.0.0.1:{port}/mse/{name}", timeout=20)
        self.ws.recv()  # {"type": "mse", ...}
        self.init = self.ws.recv()
        self.video_track = _video_track(self.init)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        self.ws.settimeout(1.0)
        while not self.stop.is_set():
            try:
                message = self.ws.recv()
            except websocket.WebSocketTimeoutException:
                continue
            except (websocket.WebSocketException, OSError):
                return
            self.messages.append((time.perf_counter(), message))

    def arrivals(self) -> list[tuple[float, list[bytes]]]:
        """When each message came, with its video samples' slice NAL units."""
        out = []
        for arrived, message in self.messages:
            if isinstance(message, bytes):
                out.append((arrived, [nal for sample in _video_samples(message, self.video_track)
                                      for nal in length_prefixed_nals(sample) if nal and nal[0] & 0x1F in SLICES]))
        return out

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.ws.close()


class PyavReader:
    """FFmpeg's RTSP demuxer through PyAV, as camstream opens a camera: when ``demux()`` yields each packet."""

    def __init__(self, url: str) -> None:
        self.packets: list[tuple[float, list[bytes]]] = []
        self.stop = threading.Event()
        self.container = av.open(url, options={"rtsp_transport": "tcp"}, timeout=10)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            for packet in self.container.demux(self.container.streams.video[0]):
                arrived = time.perf_counter()
                if self.stop.is_set():
                    return
                if packet.size:
                    self.packets.append((arrived, [nal for nal in annexb_nals(bytes(packet))
                                                   if nal and nal[0] & 0x1F in SLICES]))
        except av.FFmpegError:
            return

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)
        self.container.close()


def _boxes(data: bytes, start: int, end: int):
    """(type, start of the box, start of its content, its end) for each box in ``data[start:end]``."""
    while start + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, start)
        header = 8
        if size == 1:
            size, header = struct.unpack_from(">Q", data, start + 8)[0], 16
        elif size == 0:
            size = end - start
        if size < header:
            return
        yield kind, start, start + header, start + size
        start += size


def _video_track(init: bytes) -> int:
    for kind, _, body, end in _boxes(init, 0, len(init)):
        if kind != b"moov":
            continue
        for kind, _, trak, trak_end in _boxes(init, body, end):
            if kind != b"trak":
                continue
            track_id, handler = None, None
            for kind, _, inner, inner_end in _boxes(init, trak, trak_end):
                if kind == b"tkhd":
                    track_id = struct.unpack_from(">I", init, inner + (20 if init[inner] == 1 else 12))[0]
                elif kind == b"mdia":
                    for kind, _, box, _end in _boxes(init, inner, inner_end):
                        if kind == b"hdlr":
                            handler = init[box + 8:box + 12]
            if handler == b"vide" and track_id is not None:
                return track_id
    raise ValueError("no video track in the init segment")


def _video_samples(data: bytes, video_track: int) -> list[bytes]:
    """The video samples of every ``moof`` in a message (its ``mdat`` bytes, by the ``trun`` sizes)."""
    samples = []
    for kind, moof, body, end in _boxes(data, 0, len(data)):
        if kind != b"moof":
            continue
        for kind, _, traf, traf_end in _boxes(data, body, end):
            if kind != b"traf":
                continue
            track, base, default_size, position = None, moof, 0, None
            for kind, _, box, _end in _boxes(data, traf, traf_end):
                flags = int.from_bytes(data[box + 1:box + 4], "big")
                if kind == b"tfhd":
                    track = struct.unpack_from(">I", data, box + 4)[0]
                    at = box + 8
                    if flags & 0x1:
                        base = struct.unpack_from(">Q", data, at)[0]
                        at += 8
                    at += 4 if flags & 0x2 else 0
                    at += 4 if flags & 0x8 else 0
                    if flags & 0x10:
                        default_size = struct.unpack_from(">I", data, at)[0]
                elif kind == b"trun" and track == video_track:
                    (count,) = struct.unpack_from(">I", data, box + 4)
                    at = box + 8
                    if flags & 0x1:
                        position = base + struct.unpack_from(">i", data, at)[0]
                        at += 4
                    at += 4 if flags & 0x4 else 0
                    for _ in range(count):
                        at += 4 if flags & 0x100 else 0
                        size = default_size
                        if flags & 0x200:
                            size = struct.unpack_from(">I", data, at)[0]
                            at += 4
                        at += (4 if flags & 0x400 else 0) + (4 if flags & 0x800 else 0)
                        if position is not None:
                            samples.append(data[position:position + size])
                            position += size
    return samples


# -- matching and the report -------------------------------------------------------------------------------------

Frames = list[tuple[float, int, bool, bytes | None]]  # the raw client's: marker time, RTP time, IDR, largest slice


def arrivals_of(frames: Frames, arrivals: list[tuple[float, list[bytes]]], start: float,
                end: float) -> dict[float, float]:
    """When each frame whose marker came in [start, end) arrived at a client (by its marker time); a frame the
    client never got is left out."""
    by_key: dict[bytes, list[float]] = {}
    for marker, _, _, nal in frames:
        if nal is not None and start <= marker < end:
            by_key.setdefault(key(nal), []).append(marker)
    seen: dict[float, float] = {}
    for arrived, nals in arrivals:
        for nal in nals:
            before = [marker for marker in by_key.get(key(nal), []) if marker <= arrived < marker + MATCH_WINDOW]
            if before and before[-1] not in seen:
                seen[before[-1]] = arrived
    return seen


def stats(values: list[float]) -> str:
    """median | p90 | max in ms | how many."""
    if not values:
        return "– | – | – | 0"
    values = sorted(values)
    median = values[len(values) // 2]
    p90 = values[min(len(values) - 1, int(len(values) * 0.9))]
    return f"{median * 1000:.1f} | {p90 * 1000:.1f} | {values[-1] * 1000:.1f} | {len(values)}"


def rows_of(frames: Frames, clients: dict[str, dict[float, float]], start: float, end: float) -> list[str]:
    """Two table rows a client, keyframes and the other frames: the age's median, p90 and max, how many frames
    matched and how many never arrived."""
    measured = {marker: idr for marker, _, idr, nal in frames if nal is not None and start <= marker < end}
    lines = []
    for label, seen in clients.items():
        for kind, wanted in (("keyframes", True), ("other frames", False)):
            markers = [marker for marker, idr in measured.items() if idr is wanted]
            ages = [seen[marker] - marker for marker in markers if marker in seen]
            lines.append(f"| {label} | {kind} | {stats(ages)} | {len(markers) - len(ages)} |")
    return lines


def rtsp_server(width: int, height: int, kbits: int) -> Process:
    """The camera: a live encoder with AAC beside it, as the tests' ``/av`` (at 1080p here).

    Not bench/passthrough.py's H.264 file on a loop: GStreamer's payloader gives that stream (no timestamps in
    a raw H.264 file) one RTP time for every frame, which no camera does.
    """
    video = (f"videotestsrc is-live=true pattern=smpte horizontal-speed=8 ! "
             f"video/x-raw,width={width},height={height},framerate={FPS}/1 ! "
             f"x264enc tune=zerolatency speed-preset=ultrafast key-int-max={GOP} bitrate={kbits} ! h264parse ! "
             "rtph264pay name=pay0 pt=96 config-interval=-1")
    return Process(pinned(1, [SYSTEM_PYTHON, str(ROOT / "tests" / "rtsp_server.py"), "0", f"/cam={video} {AUDIO}"]),
                   r"ready (\d+)")


def camstream(url: str, folder: Path) -> Process:
    """``python -m webapp`` of the checkout in ``folder`` (this venv's python, the folder first on sys.path)."""
    return Process(pinned(0, [sys.executable, "-m", "webapp", "--port", "0", "--camera", f"cam={url}"]),
                   r"open http://localhost:(\d+)/", stream="stderr", cwd=folder)


def older_checkout(revision: str, into: Path) -> Path:
    """A folder holding camstream at ``revision``: the folder itself if it is one, else the revision's files."""
    if Path(revision).is_dir():
        return Path(revision)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def run(args: argparse.Namespace) -> str:
    width, height = (int(n) for n in args.size.split("x"))
    sys.setswitchinterval(0.0002)  # a reader thread that wakes must not wait 5 ms for the GIL
    camera = rtsp_server(width, height, args.bitrate // 1000)
    url = f"rtsp://127.0.0.1:{camera.match.group(1)}/shared/cam"
    servers: dict[str, Process] = {}
    mse: dict[str, MseClient] = {}
    with tempfile.TemporaryDirectory() as folder:
        try:
            rtp = RtpClient(url)
            servers["camstream, this checkout"] = camstream(url, ROOT)
            if args.compare:
                servers[f"camstream at {args.compare}"] = camstream(url, older_checkout(args.compare, Path(folder)))
            plain = PyavReader(url)
            for label, server in servers.items():
                mse[label] = MseClient(int(server.match.group(1)), "cam")
            # Every client joins before the window: GStreamer's shared media steps its RTP times back as one does.
            time.sleep(args.warm_up)
            start = time.perf_counter()
            time.sleep(args.seconds)
            end = time.perf_counter()
            time.sleep(1.0)  # the last frames' fragments
            for client in mse.values():
                client.close()
            plain.close()
            rtp.close()
        finally:
            for server in servers.values():
                server.stop()
            camera.stop()
    clients = {"plain PyAV reader, `container.demux()` yields it": arrivals_of(rtp.frames, plain.packets, start, end)}
    clients |= {f"{label}, its /mse fragment": arrivals_of(rtp.frames, client.arrivals(), start, end)
                for label, client in mse.items()}
    return report(rtp.frames, clients, start, end, args, (width, height))


def report(frames: Frames, clients: dict[str, dict[float, float]], start: float, end: float,
           args: argparse.Namespace, size: tuple[int, int]) -> str:
    command = "python bench/frame_age.py " + " ".join(sys.argv[1:])
    plain, head = list(clients.values())[:2]
    idr = {marker: is_idr for marker, _, is_idr, _ in frames}
    beyond = [head[marker] - plain[marker] for marker in head if marker in plain and not idr[marker]]
    lines = [
        "## Frame age (bench/frame_age.py)",
        "",
        (f"One RTSP camera, {size[0]}x{size[1]} at {FPS} fps, H.264 at about {args.bitrate / 1e6:g} Mbit/s "
         f"(GOP {GOP / FPS:g} s, x264 `tune=zerolatency`: a picture in several slices, parameter sets before each "
         "slice of a keyframe) with AAC 48 kHz, GStreamer's RTSP server (core 1) shared by every client; "
         "camstream's servers on core 0; all measured at once for "
         f"{args.seconds:g} s on one clock. A frame's time is when its RTP packet with the marker bit was read "
         "by camstream's RTSP reader alone, in the bench's process (TCP interleaved); its age at a client is how "
         "much later the client had it, matched by the bytes of its largest slice."),
        "",
        "| client | frames | age median ms | p90 ms | max ms | frames matched | never arrived |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        *rows_of(frames, clients, start, end),
        "| go2rtc 1.9.4, measured earlier (not in this run) | all | 0.2 | | | | |",
        "",
        (f"What camstream adds beyond the plain PyAV reader, frames other than keyframes: median "
         f"{_ms(beyond, 0.5)}, p90 {_ms(beyond, 0.9)} ms (negative: sooner)."),
        "",
        ("Why: FFmpeg's RTSP demuxer runs its H.264 parser on the stream (`AVSTREAM_PARSE_FULL`), and the RTP "
         "marker bit that ends a frame does not reach it, so the parser lets a frame go only when the next one "
         "starts: one frame interval, for every client that reads through FFmpeg (the plain PyAV reader's row, "
         "and camstream before it read RTSP itself, which also held a keyframe until the next packet to join "
         "its slices). camstream's own RTSP reader (camera/sources/rtsp.py, camera/media/rtp.py) ends a frame "
         "at its marker packet, and the frame's fragment leaves at once; what is left is Python and the "
         "loopback."),
        "",
        f"Command: `{command.strip()}`",
    ]
    return "\n".join(lines)


def _ms(values: list[float], quantile: float) -> str:
    if not values:
        return "–"
    values = sorted(values)
    return f"{values[min(len(values) - 1, int(len(values) * quantile))] * 1000:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--warm-up", type=float, default=6, help="seconds before measuring")
    parser.add_argument("--size", default=f"{WIDTH}x{HEIGHT}")
    parser.add_argument("--bitrate", type=int, default=4_000_000)
    parser.add_argument("--compare", help="an older camstream beside this one: a folder, or a git revision")
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    args = parser.parse_args()
    publish(args.out, "frame-age", run(args))


if __name__ == "__main__":
    main()
