import socket
import threading
import time

import cv2
import numpy as np
import pytest

from camera import Broadcaster, Frame, mjpeg
from camera.viewers.sender import SocketViewer, StreamSender
from tests.helpers import make_jpeg, wait_until

HEAD = b"HTTP/1.1 200 OK\r\n\r\n" + mjpeg.STREAM_START


@pytest.fixture
def sender():
    sender = StreamSender(stall_timeout=0.5)
    yield sender
    sender.stop()


def tcp_pair(receive_buffer: int | None = None) -> tuple[socket.socket, socket.socket]:
    """A connected (server side, client side) pair of TCP sockets on 127.0.0.1."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.socket()
        if receive_buffer:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        client.connect(listener.getsockname())
        server, _ = listener.accept()
    client.settimeout(5)
    return server, client


def connect(sender, broadcaster, on_close=None, receive_buffer=None):
    ours, client = tcp_pair(receive_buffer)
    viewer = SocketViewer(ours, HEAD, sender, on_close=on_close)
    feed = viewer.add_feed(broadcaster)
    sender.add(viewer)
    broadcaster.add(feed)
    return viewer, client


def frames_of(client: socket.socket):
    """The JPEGs a client receives, after checking the head."""
    reader = client.makefile("rb")
    assert reader.readline() == b"HTTP/1.1 200 OK\r\n" and reader.readline() == b"\r\n"
    return mjpeg.read_parts(reader, mjpeg.BOUNDARY)


def noise_jpeg(seed: int) -> bytes:
    """About 1.5 MB: far more than a socket buffer holds."""
    image = np.random.default_rng(seed).integers(0, 256, (960, 1280, 3), dtype=np.uint8)
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 100])
    assert ok
    return data.tobytes()


def test_every_frame_arrives_in_order(sender):
    broadcaster = Broadcaster()
    _viewer, client = connect(sender, broadcaster)
    frames = frames_of(client)
    jpegs = [make_jpeg(i) for i in range(20)]
    for seq, jpeg in enumerate(jpegs, 1):
        broadcaster.publish(Frame(seq, jpeg, time.time(), 160, 120))
        assert next(frames) == jpeg


def test_many_viewers_keep_up_with_the_camera(sender):
    """Every publish wakes the sender; a lost wake-up leaves viewers on its 1 s idle poll."""
    broadcaster = Broadcaster()
    clients = [connect(sender, broadcaster)[1] for _ in range(20)]
    jpegs = [make_jpeg(i) for i in range(75)]
    counts = [0] * len(clients)

    def watch(slot: int) -> None:
        for jpeg in frames_of(clients[slot]):
            counts[slot] += 1
            if jpeg == jpegs[-1]:
                return

    readers = [threading.Thread(target=watch, args=(slot,)) for slot in range(len(clients))]
    for reader in readers:
        reader.start()
    pause = threading.Event()
    for seq, jpeg in enumerate(jpegs, 1):
        broadcaster.publish(Frame(seq, jpeg, time.time(), 160, 120))
        pause.wait(0.02)
    for reader in readers:
        reader.join(10)
    # About 75 each when every wake-up lands; a handful when they are lost.
    assert min(counts) >= 30, counts


def test_a_full_socket_skips_to_the_newest_frame(sender):
    broadcaster = Broadcaster()
    viewer, client = connect(sender, broadcaster, receive_buffer=8192)
    big = [noise_jpeg(seed) for seed in range(6)]
    broadcaster.publish(Frame(1, big[0], time.time(), 1280, 960))
    # Nobody has read yet: frame 1 is stuck half sent while frames 2-6 come and go.
    assert wait_until(lambda: viewer.full, 5)
    for seq, jpeg in enumerate(big[1:], 2):
        broadcaster.publish(Frame(seq, jpeg, time.time(), 1280, 960))
    frames = frames_of(client)
    assert next(frames) == big[0]
    assert next(frames) == big[-1], "after the frame in progress comes the newest, nothing between"
    assert not viewer.closed


def test_a_client_that_hangs_up_is_released_at_once(sender):
    broadcaster = Broadcaster()
    released = threading.Event()
    _viewer, client = connect(sender, broadcaster, on_close=released.set)
    assert broadcaster.subscriber_count == 1
    client.close()
    assert released.wait(2)
    assert broadcaster.subscriber_count == 0


def test_a_client_that_reads_nothing_is_dropped_after_the_stall_timeout(sender):
    broadcaster = Broadcaster()
    released = threading.Event()
    _viewer, client = connect(sender, broadcaster, on_close=released.set, receive_buffer=8192)
    broadcaster.publish(Frame(1, noise_jpeg(0), time.time(), 1280, 960))
    assert released.wait(5), "a stalled connection must not hold a viewer forever"
    assert broadcaster.subscriber_count == 0
    client.close()


def test_closing_a_viewer_from_another_thread_ends_its_connection(sender):
    broadcaster = Broadcaster()
    viewer, client = connect(sender, broadcaster)
    viewer.close()
    while client.recv(65536):
        pass
    assert broadcaster.subscriber_count == 0


def test_stopping_the_sender_closes_every_viewer(sender):
    broadcaster = Broadcaster()
    clients = [connect(sender, broadcaster)[1] for _ in range(3)]
    sender.stop()
    for client in clients:
        while client.recv(65536):
            pass
    assert broadcaster.subscriber_count == 0
    with pytest.raises(RuntimeError):
        connect(sender, broadcaster)
