"""WHEP's HTTP side without a browser: what is refused and how (4xx JSON, never 500), OPTIONS and PATCH, the
ICE servers handed out, the settings, and an answer's candidates (127.0.0.1, the port range).

Offers here are made by aiortc itself, as a WHEP client in Python would.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from aiortc import RTCPeerConnection, RTCRtpSender

from camera.webrtc import parse_ice_server, parse_port_range
from camera.webrtc.relay import BURST_STEP, CameraRelay, VideoUnit
from tests.auth_helpers import USERS
from tests.conftest import Servers
from tests.helpers import free_port
from webapp import create_app
from webapp.api.webrtc import EXTENSION
from webapp.config.values import ConfigError
from webapp.runtime.registry import runtime_of


@pytest.fixture
def servers() -> Iterator[Servers]:
    with Servers() as running:
        yield running


def camera_config(**more: object) -> dict:
    """A camera that passes H.264 through (RTSP), at a port where nothing answers: offers need no stream."""
    return {"CAMERAS": {"door": f"rtsp://127.0.0.1:{free_port()}/live"}, "IDLE_TIMEOUT": 1, **more}


def offer(video_codec: str = "video/H264", audio: bool = True) -> str:
    """An offer as a WHEP client makes it: receive only, every candidate gathered."""
    async def make() -> str:
        pc = RTCPeerConnection()
        video = pc.addTransceiver("video", direction="recvonly")
        video.setCodecPreferences([codec for codec in RTCRtpSender.getCapabilities("video").codecs
                                   if codec.mimeType == video_codec])
        if audio:
            pc.addTransceiver("audio", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        sdp = pc.localDescription.sdp
        await pc.close()
        return sdp
    # A thread of its own: Playwright's sync API may have a loop running in this one.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, make()).result(30)


def request(url: str, method: str = "GET", body: bytes | None = None, **headers: str) -> tuple[int, dict, bytes]:
    sent = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(sent, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_offers_that_cannot_be_answered_get_4xx_json_and_take_no_slot(servers):
    app = create_app(camera_config())
    site = servers.start(app)
    cases = [
        ({"Content-Type": "text/plain"}, b"v=0\r\n", 415),
        ({"Content-Type": "application/sdp"}, b"hello", 400),
        ({"Content-Type": "application/sdp"}, b"v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n", 400),
        ({"Content-Type": "application/sdp"}, b"v=0\r\n\xff\xfe", 400),
        ({"Content-Type": "application/sdp"}, b"v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF x\r\n", 400),
        ({"Content-Type": "application/sdp"}, offer("video/VP8").encode(), 400),
        ({"Content-Type": "application/sdp"}, b"v=0\r\n" + b"a=x\r\n" * 20000, 413),
    ]
    for headers, body, status in cases:
        answer, got_headers, data = request(f"{site}/whep/door", "POST", body, **headers)
        assert (answer, json.loads(data)["status"]) == (status, status), (body[:60], data)
        assert got_headers["Content-Type"] == "application/json"
    assert json.loads(request(f"{site}/whep/nowhere", "POST", offer().encode(),
                              **{"Content-Type": "application/sdp"})[2])["status"] == 404
    assert runtime_of(app).slots.used == 0
    assert "H.264" in json.loads(request(f"{site}/whep/door", "POST", offer("video/VP8").encode(),
                                         **{"Content-Type": "application/sdp"})[2])["error"]


def test_an_answer_names_h264_packetization_mode_1_opus_and_a_loopback_candidate_in_the_port_range(servers):
    low = free_port() // 2 + 20000
    app = create_app(camera_config(WEBRTC_PORTS=f"{low}-{low + 9}"))
    site = servers.start(app)
    status, headers, body = request(f"{site}/whep/door", "POST", offer().encode(),
                                    **{"Content-Type": "application/sdp"})
    assert status == 201 and headers["Content-Type"] == "application/sdp"
    answer = body.decode()
    assert re.search(r"a=fmtp:\d+ .*packetization-mode=1", answer)
    assert "H264/90000" in answer and "opus/48000/2" in answer and "VP8" not in answer
    candidates = re.findall(r"a=candidate:\S+ 1 udp \d+ (\S+) (\d+) typ host", answer)
    assert ("127.0.0.1" in {address for address, _ in candidates})
    assert all(low <= int(port) <= low + 9 for _, port in candidates), candidates
    assert runtime_of(app).slots.used == 1
    location = headers["Location"]
    assert location.startswith("/whep/door/")
    # Trickle ICE is refused plainly; DELETE ends the session; a second DELETE finds none.
    patched = request(site + location, "PATCH", b"a=end-of-candidates\r\n",
                      **{"Content-Type": "application/trickle-ice-sdpfrag"})
    assert patched[0] == 405 and patched[1]["Allow"] == "DELETE" and json.loads(patched[2])["status"] == 405
    assert request(site + location, "DELETE")[0] == 200
    assert runtime_of(app).slots.used == 0 and not app.extensions[EXTENSION].sessions()
    assert request(site + location, "DELETE")[0] == 404


def test_options_says_what_is_accepted_and_the_ice_servers_reach_the_page_and_the_link_headers(servers):
    app = create_app(camera_config(WEBRTC_ICE_SERVERS=["stun:stun.example.org:3478",
                                                       "turn:cam%40home:s3cret@turn.example.org?transport=udp"]))
    site = servers.start(app)
    status, headers, _ = request(f"{site}/whep/door", "OPTIONS")
    assert status == 204 and headers["Accept-Post"] == "application/sdp" and "POST" in headers["Allow"]
    assert json.loads(request(f"{site}/api/webrtc")[2])["ice_servers"] == [
        {"urls": ["stun:stun.example.org:3478"]},
        {"urls": ["turn:turn.example.org?transport=udp"], "username": "cam@home", "credential": "s3cret"}]


def test_without_credentials_a_server_with_users_answers_401_json(servers, tmp_path):
    app = create_app(camera_config(USERS=USERS[:2], STORAGE=str(tmp_path)))
    site = servers.start(app)
    status, _, body = request(f"{site}/whep/door", "POST", offer().encode(), **{"Content-Type": "application/sdp"})
    assert status == 401 and json.loads(body)["status"] == 401
    assert runtime_of(app).slots.used == 0


def test_max_viewers_counts_webrtc_sessions(servers):
    app = create_app(camera_config(MAX_VIEWERS=1))
    site = servers.start(app)
    first = request(f"{site}/whep/door", "POST", offer().encode(), **{"Content-Type": "application/sdp"})
    assert first[0] == 201
    second = request(f"{site}/whep/door", "POST", offer().encode(), **{"Content-Type": "application/sdp"})
    assert second[0] == 503 and json.loads(second[2])["max_viewers"] == 1
    assert request(site + first[1]["Location"], "DELETE")[0] == 200
    assert request(f"{site}/whep/door", "POST", offer().encode(), **{"Content-Type": "application/sdp"})[0] == 201


@pytest.mark.parametrize("servers_setting, message", [
    (["turn:turn.example.org"], "USER:CREDENTIAL"),
    (["stun:user:pw@stun.example.org"], "no user"),
    (["http://example.org"], "stun:HOST"),
])
def test_an_ice_server_setting_that_is_wrong_stops_the_start_without_showing_a_credential(servers_setting, message):
    with pytest.raises(ConfigError, match=message) as raised:
        create_app(camera_config(WEBRTC_ICE_SERVERS=servers_setting))
    assert "pw" not in str(raised.value)


def test_ice_servers_and_port_ranges_are_read_as_written():
    server = parse_ice_server("turns:a%3Ab:c%2Cd@[::1]:5349?transport=tcp")
    assert (server.url, server.username, server.credential) == ("turns:[::1]:5349?transport=tcp", "a:b", "c,d")
    assert "c,d" not in repr(server)
    assert parse_port_range("40000-40009") == range(40000, 40010)
    assert parse_port_range("50000") == range(50000, 50001)
    assert parse_port_range(None) is None
    for wrong in ("9-10", "40010-40000", "x", "70000"):
        with pytest.raises(ValueError):
            parse_port_range(wrong)


def test_a_keyframe_request_is_answered_from_the_kept_gop_with_time_going_forward():
    async def run() -> tuple[list[int], list[int], int]:
        relay = CameraRelay()
        relay.generation = 1
        frames = [VideoUnit([bytes([index])], index / 15, index % 15 == 0, 1) for index in range(20)]
        relay.gop = frames[15:18]  # the newest keyframe and two frames after it
        track = relay.video_track()  # starts with the kept GOP at once
        first = [(await track.recv()).timestamp for _ in range(3)]
        for unit in frames[18:20]:
            track.offer(unit)
        live = [(await track.recv()).timestamp for _ in range(2)]
        track.keyframe_wanted()  # a PLI: the GOP again, after what was sent
        again = [(await track.recv()) for _ in range(3)]
        assert [item.payloads for item in again] == [unit.payloads for unit in frames[15:18]]
        track.stop()
        return first + live, [item.timestamp for item in again], track.keyframe_answers
    sent, again, answers = asyncio.run(run())
    assert sent == [0, BURST_STEP, 2 * BURST_STEP, 2 * BURST_STEP + 6000, 2 * BURST_STEP + 12000]
    assert again[0] > sent[-1] and again == sorted(again) and answers == 1
