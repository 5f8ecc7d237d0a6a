"""Video files and HTTP streams that are not MJPEG, read as packets: their H.264 passed through like an RTSP
camera's, any other codec decoded as it plays."""

from __future__ import annotations

import itertools
import json
import urllib.error
import urllib.request
from pathlib import Path

import av
import numpy as np
import pytest
import websocket

from camera import HttpCamera, VideoFileCamera, create_camera
from camera.media import boxes
from tests.helpers import UpstreamServer, decode, get_json, h264_clip, wait_until

FPS, FRAMES = 15, 30


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return h264_clip(tmp_path_factory.mktemp("files") / "clip.mp4", FPS, FRAMES)


def fragment_times(ws: websocket.WebSocket, count: int) -> tuple[dict, list[float]]:
    """The header of an /mse stream and the decode times (seconds) of its next ``count`` fragments."""
    header = json.loads(ws.recv())
    init = ws.recv()
    video = next(track for track in boxes.tracks(init) if track.kind == "vide")
    times = []
    for _ in range(count):
        info = boxes.fragment_info(ws.recv(), video)
        assert info is not None
        times.append(info.decode_time / video.timescale)
    return header, times


def test_an_h264_file_is_passed_through_and_loops_with_times_that_go_on(clip, serve_app):
    site = serve_app({"CAMERAS": {"clip": str(clip)}})
    ws = websocket.create_connection(site.replace("http", "ws") + "/mse/clip", timeout=20)
    try:
        # More fragments than the file has frames: it played to its end and on from its start.
        header, times = fragment_times(ws, FRAMES + 15)
    finally:
        ws.close()
    assert header["codecs"].startswith('video/mp4; codecs="avc1.')
    assert all(later > earlier for earlier, later in itertools.pairwise(times)), \
        "a viewer's times keep increasing across the loop"
    status = get_json(f"{site}/api/cameras/clip")[1]
    assert (status["video"]["codec"], status["video"]["mode"]) == ("h264", "passthrough")
    assert status["video"]["decoded"] == 0, "nothing decoded for a camera watched only over MSE"
    snapshot = urllib.request.urlopen(f"{site}/snapshot/clip.jpg", timeout=20)
    assert decode(snapshot.read()).shape == (120, 160, 3)


def test_a_file_the_browser_cannot_be_handed_is_decoded_and_mse_says_where_its_mjpeg_is(tmp_path, serve_app):
    path = tmp_path / "clip.avi"
    output = av.open(str(path), "w")
    stream = output.add_stream("mjpeg", rate=FPS)
    stream.width, stream.height, stream.pix_fmt = 160, 120, "yuvj420p"
    for index in range(10):
        frame = av.VideoFrame.from_ndarray(np.full((120, 160, 3), index * 20, np.uint8), format="bgr24")
        output.mux(stream.encode(frame))
    output.mux(stream.encode())
    output.close()
    site = serve_app({"CAMERAS": {"clip": str(path)}})
    snapshot = urllib.request.urlopen(f"{site}/snapshot/clip.jpg", timeout=20)
    assert decode(snapshot.read()).shape == (120, 160, 3)
    status = get_json(f"{site}/api/cameras/clip")[1]
    assert (status["video"]["codec"], status["video"]["mode"]) == ("mjpeg", "transcode")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{site}/mse/clip", timeout=10)
    error = json.loads(refused.value.read())["error"]
    assert refused.value.code == 404 and "decoded, not passed through" in error and "/video_feed/clip" in error
    page = urllib.request.urlopen(f"{site}/", timeout=10).read().decode()
    assert '<camstream-view camera="clip"' in page and 'camera="clip" server' in page
    assert " video>" not in page.split('camera="clip"', 1)[1].split("\n", 1)[0], "the page shows its MJPEG"


def test_an_http_stream_of_h264_is_passed_through(tmp_path):
    body = h264_clip(tmp_path / "clip.ts", FPS, FRAMES, container="mpegts").read_bytes()
    with UpstreamServer(body=body, content_type="video/mp2t") as upstream:
        camera = create_camera("web", upstream.url)
        assert isinstance(camera, HttpCamera)
        camera.start()
        try:
            # The body ends after its 30 frames (and the camera reconnects): what was muxed is counted.
            assert wait_until(lambda: camera.media.fragments >= 5, 20)
            assert camera.media.mime_type.startswith('video/mp4; codecs="avc1.')
            assert camera.status()["video"]["mode"] == "passthrough"
        finally:
            camera.stop()


def test_a_file_camera_is_built_for_files_and_reads_packets(clip):
    camera = create_camera("clip", str(clip), audio=False)
    assert type(camera) is VideoFileCamera and camera.audio is False and camera.media is not None


@pytest.mark.parametrize("copy, format", [(True, "copy"), (False, "h264")])
def test_a_passed_through_camera_records_by_copy_unless_told_to_encode(clip, serve_app, tmp_path, copy, format):
    site = serve_app({"CAMERAS": {"clip": str(clip)}, "RECORD": {"clip": "continuous"}, "RECORD_COPY": copy,
                      "RECORD_FORMAT": "h264", "SEGMENT_SECONDS": 1, "STORAGE": str(tmp_path / "store"),
                      "MIN_FREE": 0})
    recordings = lambda: get_json(f"{site}/api/recordings?camera=clip")[1]["recordings"]
    assert wait_until(lambda: any(not found["recording"] for found in recordings()), 30), recordings()
    assert {found["format"] for found in recordings()} == {format}
    status = get_json(f"{site}/api/cameras/clip")[1]
    assert status["recording"]["format"] == format
    assert (status["video"]["decoded"] == 0) == copy, "by copy nothing is decoded; encoding decodes every frame"
