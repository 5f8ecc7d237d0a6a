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
from collections.abc import Callable, Iterator

import pytest
from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription

from camera.webrtc import parse_ice_server, parse_port_range
from camera.webrtc.relay import BURST_STEP, CameraRelay, VideoUnit
from tests.auth_helpers import USERS
from tests.conftest import Servers
from tests.helpers import free_port, wait_until
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
    assert headers["Accept-Patch"] == "application/trickle-ice-sdpfrag"
    # DELETE ends the session; a second DELETE finds none.
    assert request(site + location, "DELETE")[0] == 200
    assert runtime_of(app).slots.used == 0 and not app.extensions[EXTENSION].sessions()
    assert request(site + location, "DELETE")[0] == 404


def trickle_client(site: str, inspect: Callable[[], object]) -> dict:
    """A WHEP client that trickles: its offer without candidates, then its candidates in a PATCH (RFC 8840's
    fragment), and what the server answers to a PATCH that is wrong in each way."""
    async def run() -> dict:
        pc = RTCPeerConnection()
        pc.addTransceiver("video", direction="recvonly")
        pc.addTransceiver("audio", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        lines = pc.localDescription.sdp.splitlines()
        held = [line for line in lines if line.startswith("a=candidate:")]
        bare = "\r\n".join(line for line in lines if not line.startswith(("a=candidate:", "a=end-of-candidates")))
        loop = asyncio.get_running_loop()
        status, headers, answer = await loop.run_in_executor(
            None, lambda: request(f"{site}/whep/door", "POST", (bare + "\r\n").encode(),
                                  **{"Content-Type": "application/sdp"}))
        assert status == 201, answer
        await pc.setRemoteDescription(RTCSessionDescription(answer.decode(), "answer"))
        ufrag = next(line for line in lines if line.startswith("a=ice-ufrag:"))
        password = next(line for line in lines if line.startswith("a=ice-pwd:"))
        mid = next(line for line in lines if line.startswith("a=mid:"))
        fragment = "\r\n".join([ufrag, password, "m=video 9 UDP/TLS/RTP/SAVPF 0", mid, *held,
                                 "a=end-of-candidates", ""]).encode()
        url = site + headers["Location"]
        trickle = {"Content-Type": "application/trickle-ice-sdpfrag"}

        def patch(body: bytes, **more: str) -> tuple[int, dict, bytes]:
            return request(url, "PATCH", body, **{**trickle, **more})
        wrong = {
            "type": await loop.run_in_executor(None, lambda: request(url, "PATCH", fragment,
                                                                     **{"Content-Type": "text/plain"})),
            "etag": await loop.run_in_executor(None, lambda: patch(fragment, **{"If-Match": '"other"'})),
            "restart": await loop.run_in_executor(None, lambda: patch(b"a=ice-ufrag:new1\r\na=ice-pwd:"
                                                                      b"new1new1new1new1new1new1\r\n")),
            "candidate": await loop.run_in_executor(None, lambda: patch(b"a=candidate:1 1 udp\r\n")),
            "nobody": await loop.run_in_executor(None, lambda: request(url + "x", "PATCH", fragment, **trickle)),
        }
        etag = next(value for key, value in headers.items() if key.lower() == "etag")
        patched = await loop.run_in_executor(None, lambda: patch(fragment, **{"If-Match": etag}))
        for _ in range(200):
            if pc.connectionState == "connected":
                break
            await asyncio.sleep(0.1)
        state = pc.connectionState
        inspected = await loop.run_in_executor(None, inspect)
        await pc.close()
        return {"patched": patched[0], "wrong": {key: (value[0], value[2]) for key, value in wrong.items()},
                "state": state, "held": held, "location": headers["Location"], "inspected": inspected}
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, run()).result(60)


def test_trickle_ice_adds_the_clients_candidates_and_refuses_an_ice_restart_with_422(servers):
    app = create_app(camera_config())
    site = servers.start(app)

    def remote_candidates() -> set[tuple[str, int, str]]:
        [session] = app.extensions[EXTENSION].sessions("door")
        transport = session.pc.getTransceivers()[0].receiver.transport.transport
        return {(candidate.ip, candidate.port, candidate.type) for candidate in transport.getRemoteCandidates()}
    seen = trickle_client(site, remote_candidates)
    assert seen["patched"] == 204 and seen["state"] == "connected"
    codes = {key: status for key, (status, _) in seen["wrong"].items()}
    assert codes == {"type": 415, "etag": 412, "restart": 422, "candidate": 400, "nobody": 404}
    assert all(json.loads(body)["status"] == status for status, body in seen["wrong"].values())
    # The server took the trickled host candidates as the client's (not only learnt them from its checks).
    held = {(line.split()[4], int(line.split()[5]), "host") for line in seen["held"]}
    assert held and held <= seen["inspected"]
    assert wait_until(lambda: not app.extensions[EXTENSION].sessions() and runtime_of(app).slots.used == 0, 20)


def test_the_cameras_webrtc_side_is_in_its_status_and_in_metrics(servers):
    app = create_app(camera_config())
    site = servers.start(app)
    before = json.loads(request(f"{site}/api/webrtc/door")[2])
    assert (before["viewers"], before["video"], before["audio"]) == (0, "none", "none")  # not streamed yet
    status, headers, _ = request(f"{site}/whep/door", "POST", offer().encode(), **{"Content-Type": "application/sdp"})
    assert status == 201
    during = json.loads(request(f"{site}/api/webrtc/door")[2])
    assert (during["viewers"], during["connected"]) == (1, 0)  # answered; nobody connects to it here
    metrics = request(f"{site}/metrics")[2].decode()
    assert 'camstream_webrtc_viewers{camera="door"} 1.0' in metrics
    assert 'camstream_webrtc_frames_packetized_total{camera="door"} 0.0' in metrics
    assert 'camstream_webrtc_path{audio="none",camera="door",video="none"} 1.0' in metrics
    camera = json.loads(request(f"{site}/api/cameras/door")[2])
    if "webrtc" in camera:  # the status's block, once the runtime takes status parts
        assert camera["webrtc"]["viewers"] == 1
    assert request(site + headers["Location"], "DELETE")[0] == 200
    assert json.loads(request(f"{site}/api/webrtc/door")[2])["viewers"] == 0
    assert json.loads(request(f"{site}/api/webrtc/nowhere")[2])["status"] == 404


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
