"""A camera's G.711 (PCMU, PCMA) reaches WebRTC viewers as it came: the same bytes the camera sent, in RTP
packets of PCMU/PCMA that aiortc, as a WHEP client, receives and decodes beside the camera's H.264.

The camera is GStreamer's RTSP server with H.264 and G.711 (paths of this
file's own), read by camstream's own RTSP client: its video muxed into
fMP4, its G.711 packets handed to the feed's takers (the WebRTC relay) as
they came.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import subprocess
import threading
from collections.abc import Iterator
from fractions import Fraction

import pytest
from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription

from camera.media.feed import MediaFeed
from camera.sources.packets import PacketCamera
from camera.webrtc import WebRtcEngine
from tests.helpers import wait_until
from tests.passthrough.test_rtsp import SERVER, SYSTEM_PYTHON, VIDEO

pytestmark = pytest.mark.slow

G711 = {
    "pcmu": "audiotestsrc is-live=true wave=sine ! audio/x-raw,rate=8000,channels=1 ! mulawenc ! "
            "rtppcmupay name=pay1 pt=0",
    "pcma": "audiotestsrc is-live=true wave=sine ! audio/x-raw,rate=8000,channels=1 ! alawenc ! "
            "rtppcmapay name=pay1 pt=8",
}


class G711Camera:
    """An RTSP camera with H.264 and G.711, read by camstream's PacketCamera on a thread of its own; what its
    feed hands its takers of the sound is kept, to compare with what the viewer got."""

    def __init__(self, url: str) -> None:
        self.camera = PacketCamera("door", url)
        self.feed = self.camera.media
        self.sent: list[bytes] = []
        self.codec: str | None = None
        self.feed.add_taker(self)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        for _ in self.camera.frames():
            if self._stop.is_set():
                return

    def audio_stream(self, codec: str | None, rate: int, channels: int) -> None:
        self.codec = codec

    def audio_packet(self, codec: str, data: bytes, time: float) -> None:
        self.sent.append(data)

    def stream_began(self, init: bytes) -> None:
        pass

    def fragment(self, fragment: object, at: float) -> None:
        pass

    def stream_ended(self) -> None:
        pass

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(15)


@pytest.fixture(scope="module")
def g711_rtsp() -> Iterator[str]:
    process = subprocess.Popen(
        [SYSTEM_PYTHON, str(SERVER), "0", *(f"/{name}={VIDEO} {audio}" for name, audio in G711.items())],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = process.stdout.readline() if process.stdout else ""
    if not line.startswith("ready"):
        process.kill()
        pytest.skip(f"GStreamer's RTSP server would not serve G.711 here: {line!r}")
    yield f"rtsp://127.0.0.1:{int(line.split()[1])}"
    process.kill()
    process.wait(10)


async def watch(engine: WebRtcEngine, feed: MediaFeed, audio_codec: str, packets: int) -> dict:
    """A WHEP client's view: the answer, and the audio payloads and video frames it received."""
    client = RTCPeerConnection()
    video = client.addTransceiver("video", direction="recvonly")
    video.setCodecPreferences([codec for codec in RTCRtpSender.getCapabilities("video").codecs
                               if codec.mimeType == "video/H264"])
    audio = client.addTransceiver("audio", direction="recvonly")
    audio.setCodecPreferences([codec for codec in RTCRtpSender.getCapabilities("audio").codecs
                               if codec.mimeType in ("audio/opus", audio_codec)])
    received: list[bytes] = []
    original = audio.receiver._handle_rtp_packet

    async def taken(packet, arrival_time_ms):  # type: ignore[no-untyped-def]
        received.append(packet.payload)
        return await original(packet, arrival_time_ms)
    audio.receiver._handle_rtp_packet = taken
    await client.setLocalDescription(await client.createOffer())
    loop = asyncio.get_running_loop()
    session = await loop.run_in_executor(None, engine.open, feed, "door", client.localDescription.sdp,
                                         lambda: True)  # streaming: the answer waits for the stream's codecs
    answer = session.pc.localDescription.sdp
    await client.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    tracks = [transceiver.receiver.track for transceiver in client.getTransceivers()]
    frames = 0
    sound = None
    try:
        for _ in range(300):
            if frames >= 5 and len(received) >= packets:
                break
            frame = await asyncio.wait_for(tracks[0].recv(), 20)
            frames += frame.width > 0
        sound = await asyncio.wait_for(tracks[1].recv(), 20)
    finally:
        await client.close()
        await loop.run_in_executor(None, engine.close, session.id)
    return {"answer": answer, "received": received, "frames": frames,
            "sound": (sound.sample_rate, sound.time_base) if sound is not None else None}


@pytest.mark.parametrize("name, mime, path", [("pcmu", "audio/PCMU", "pcmu"), ("pcma", "audio/PCMA", "pcma")])
def test_a_cameras_g711_reaches_a_webrtc_viewer_byte_for_byte_beside_its_h264(g711_rtsp, name, mime, path):
    camera = G711Camera(f"{g711_rtsp}/{name}")
    engine = WebRtcEngine()
    try:
        assert wait_until(lambda: camera.feed.live and len(camera.sent) >= 5, 30)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:  # Playwright's loop may run in this thread
            seen = pool.submit(asyncio.run, watch(engine, camera.feed, mime, 25)).result(90)
        assert f"{mime.split('/')[1]}/8000" in seen["answer"] and "opus" not in seen["answer"]
        assert seen["frames"] >= 5
        # Every payload the viewer got is the camera's own bytes, as they were: GStreamer's packets of 128 ms are
        # cut into RTP packets of 20 ms, never re-encoded.
        sent = b"".join(camera.sent)
        assert len(seen["received"]) >= 25 and all(len(payload) <= 160 and payload in sent
                                                   for payload in seen["received"])
        assert seen["sound"] == (8000, Fraction(1, 8000))
        relay = engine.relay_of(camera.feed)
        assert relay is not None and relay.status()["audio"] == path and relay.opus_packets == 0
        assert relay.g711_packets >= 25
    finally:
        engine.detach()
        camera.stop()
