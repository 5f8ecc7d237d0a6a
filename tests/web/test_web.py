import json
import socket
import threading

import cv2
import pytest

from camera import PatternCamera
from tests.helpers import MjpegReader, decode, get, get_json, wait_until
from tests.sources import CountingCamera, SilentCamera
from webapp import create_app


@pytest.fixture
def two_cameras(serve):
    cameras = {"front": PatternCamera("front", fps=30), "back": PatternCamera("back", fps=30, width=320)}
    app = create_app({"CAMERAS": cameras})
    return serve(app), cameras


def test_the_page_shows_every_camera(two_cameras):
    base, _ = two_cameras
    status, headers, body = get(f"{base}/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    page = body.decode()
    assert '<img src="/video_feed/front"' in page and '<img src="/video_feed/back"' in page
    assert get(f"{base}/static/camstream.css")[0] == 200
    assert get(f"{base}/static/camstream.js")[0] == 200


def test_stream_headers_and_framing(two_cameras):
    base, _ = two_cameras
    with MjpegReader(f"{base}/video_feed/front") as viewer:
        assert viewer.status == 200
        assert viewer.headers["Content-Type"] == "multipart/x-mixed-replace; boundary=frame"
        assert "no-store" in viewer.headers["Cache-Control"]
        assert viewer.response.read(len(b"--frame\r\n")) == b"--frame\r\n", "the stream opens with a boundary"
        head = b"".join(iter(lambda: viewer.response.readline(), b"\r\n"))
        assert b"Content-Type: image/jpeg" in head and b"Content-Length: " in head and b"X-Timestamp: " in head


def test_video_feed_without_a_name_is_the_first_camera(two_cameras):
    base, _ = two_cameras
    with MjpegReader(f"{base}/video_feed") as viewer:
        assert decode(viewer.read(1)[0]).shape == (480, 640, 3)
    with MjpegReader(f"{base}/video_feed/back") as viewer:
        assert decode(viewer.read(1)[0]).shape == (240, 320, 3)


def test_ten_viewers_get_the_same_frames_encoded_once(serve):
    camera = PatternCamera("shared", fps=30)
    base = serve(create_app({"CAMERAS": {"shared": camera}}))
    received: list[list[bytes]] = [[] for _ in range(10)]
    ready = threading.Barrier(10, timeout=10)

    def watch(slot):
        with MjpegReader(f"{base}/video_feed/shared") as viewer:
            ready.wait()
            received[slot] = viewer.read(20)

    threads = [threading.Thread(target=watch, args=(slot,)) for slot in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    camera.stop()
    assert all(len(frames) == 20 for frames in received)
    for frames in received:
        assert len(set(frames)) == 20, "a viewer got the same frame twice"
    common = set.intersection(*(set(frames) for frames in received))
    assert len(common) >= 10, "viewers of one camera see the same frames"
    status = camera.status()
    assert status["frames_encoded"] == status["frames_captured"]


def test_a_viewer_that_disconnects_is_unsubscribed_within_a_second(two_cameras):
    base, cameras = two_cameras
    port = int(base.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(b"GET /video_feed/front HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert sock.recv(4096).startswith(b"HTTP/1.1 200")
    assert wait_until(lambda: cameras["front"].status()["viewers"] == 1, 5)
    sock.close()
    assert wait_until(lambda: cameras["front"].status()["viewers"] == 0, 1.0)


def test_a_viewer_of_a_silent_camera_that_leaves_is_unsubscribed(serve):
    camera = SilentCamera()
    base = serve(create_app({"CAMERAS": {"silent": camera}}))
    port = int(base.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(b"GET /video_feed/silent HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert sock.recv(4096).startswith(b"HTTP/1.1 200")
    assert wait_until(lambda: camera.status()["viewers"] == 1, 5)
    sock.close()
    assert wait_until(lambda: camera.status()["viewers"] == 0, 2.0)


def test_snapshots_are_real_jpegs(two_cameras):
    base, _ = two_cameras
    status, headers, body = get(f"{base}/snapshot.jpg")
    assert status == 200 and headers["Content-Type"] == "image/jpeg"
    assert "no-store" in headers["Cache-Control"]
    assert decode(body).shape == (480, 640, 3)
    status, _, body = get(f"{base}/snapshot/back.jpg")
    assert status == 200 and decode(body).shape == (240, 320, 3)


def test_a_snapshot_of_a_camera_without_frames_is_503_json(serve):
    camera = SilentCamera()
    base = serve(create_app({"CAMERAS": {"silent": camera}, "SNAPSHOT_TIMEOUT": 0.3}))
    status, headers, body = get(f"{base}/snapshot/silent.jpg")
    assert status == 503 and headers["Retry-After"]
    error = json.loads(body)
    assert "no frame" in error["error"] and error["camera"]["name"] == "silent"


def test_status_api(two_cameras):
    base, _ = two_cameras
    get(f"{base}/snapshot/front.jpg")
    status, body = get_json(f"{base}/api/cameras")
    assert status == 200
    assert [c["name"] for c in body["cameras"]] == ["front", "back"]
    status, front = get_json(f"{base}/api/cameras/front")
    assert status == 200 and front["name"] == "front"
    assert front["frames_captured"] >= 1 and (front["width"], front["height"]) == (640, 480)
    status, health = get_json(f"{base}/healthz")
    assert status == 200 and health["status"] == "ok" and set(health["cameras"]) == {"front", "back"}


@pytest.mark.parametrize("path", ["/video_feed/nope", "/snapshot/nope.jpg", "/api/cameras/nope"])
def test_unknown_cameras_are_404_json(two_cameras, path):
    base, _ = two_cameras
    status, body = get_json(base + path)
    assert status == 404 and body["error"] == "no camera named 'nope'"


def test_unknown_paths_and_methods_answer_json(two_cameras):
    base, _ = two_cameras
    status, body = get_json(f"{base}/no/such/page")
    assert status == 404 and body["status"] == 404
    status, _headers, raw = get(f"{base}/api/cameras", method="DELETE")
    assert status == 405 and json.loads(raw)["status"] == 405 and "GET" in _headers["Allow"]


def test_opencv_reads_the_stream(two_cameras):
    base, _ = two_cameras
    capture = cv2.VideoCapture(f"{base}/video_feed/front", cv2.CAP_FFMPEG)
    try:
        assert capture.isOpened()
        shapes = []
        for _ in range(3):
            ok, image = capture.read()
            assert ok
            shapes.append(image.shape)
    finally:
        capture.release()
    assert shapes == [(480, 640, 3)] * 3


def test_two_cameras_stream_independently(two_cameras):
    base, cameras = two_cameras
    with MjpegReader(f"{base}/video_feed/front") as front:
        front.read(2)
        assert cameras["front"].running and not cameras["back"].running
        with MjpegReader(f"{base}/video_feed/back") as back:
            back.read(2)
            cameras["back"].stop()
            front.read(3)
    assert cameras["front"].status()["frames_encoded"] >= 5


def test_a_failing_camera_keeps_its_viewers_shows_why_and_recovers(serve):
    camera = CountingCamera("flaky", fail_after=5)
    base = serve(create_app({"CAMERAS": {"flaky": camera}}))
    with MjpegReader(f"{base}/video_feed/flaky") as viewer:
        frames = viewer.frames()
        for _ in range(5):
            decode(next(frames))
        assert wait_until(lambda: camera.state == "reconnecting", 5)
        status, body = get_json(f"{base}/api/cameras/flaky")
        assert status == 200 and body["state"] == "reconnecting" and "sensor on fire" in body["last_error"]
        for _ in range(100):
            decode(next(frames))
            if camera.opens >= 2 and camera.state == "streaming":
                break
        assert camera.opens >= 2 and camera.state == "streaming", "the same viewer sees the source come back"



def test_past_the_viewer_limit_streams_get_503_and_everything_else_still_answers(serve):
    camera = PatternCamera("busy", fps=30)
    base = serve(create_app({"CAMERAS": {"busy": camera}, "MAX_VIEWERS": 3}), threads=6)
    viewers = [MjpegReader(f"{base}/video_feed/busy") for _ in range(3)]
    try:
        for viewer in viewers:
            assert viewer.status == 200 and len(viewer.read(1)) == 1
        status, headers, body = get(f"{base}/video_feed/busy")
        assert status == 503 and int(headers["Retry-After"]) > 0
        assert json.loads(body)["max_viewers"] == 3
        for path in ("/", "/snapshot/busy.jpg", "/api/cameras", "/healthz", "/static/camstream.css"):
            assert get(base + path)[0] == 200, path
        assert get_json(f"{base}/healthz")[1]["streams"] == 3
    finally:
        viewers.pop().close()
    assert wait_until(lambda: get_json(f"{base}/healthz")[1]["streams"] == 2, 5)
    with MjpegReader(f"{base}/video_feed/busy") as again:
        assert again.status == 200 and len(again.read(1)) == 1
    for viewer in viewers:
        viewer.close()


def test_a_head_request_streams_nothing(two_cameras):
    base, cameras = two_cameras
    status, headers, body = get(f"{base}/video_feed/front", method="HEAD")
    assert status == 200 and headers["Content-Type"].startswith("multipart/x-mixed-replace")
    assert body == b""
    assert wait_until(lambda: get_json(f"{base}/healthz")[1]["streams"] == 0, 5)
    assert cameras["front"].status()["viewers"] == 0


def test_streams_work_under_another_wsgi_server():
    from werkzeug.serving import make_server as werkzeug_server

    camera = PatternCamera("plain", fps=30)
    app = create_app({"CAMERAS": {"plain": camera}})
    server = werkzeug_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with MjpegReader(f"http://127.0.0.1:{server.server_port}/video_feed/plain") as viewer:
            frames = viewer.read(5)
        assert len(set(frames)) == 5 and decode(frames[0]).shape == (480, 640, 3)
    finally:
        camera.stop()
        server.shutdown()


def test_the_favicon_every_browser_asks_for_is_there_even_before_signing_in(serve_app, tmp_path):
    from tests.auth_helpers import USERS

    for config in ({"SOURCE": "pattern"}, {"CAMERAS": {"door": "pattern"}, "USERS": USERS, "STORAGE": str(tmp_path)}):
        status, headers, body = get(serve_app(config) + "/favicon.ico")
        assert status == 200 and headers["Content-Type"] == "image/x-icon"
        assert body[:4] == b"\0\0\1\0" and b"PNG" in body[:40], "an icon file holding a PNG"
