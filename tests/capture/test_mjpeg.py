import io

import pytest

from camera import mjpeg
from tests.helpers import make_jpeg


def test_part_has_headers_jpeg_and_closing_boundary():
    jpeg = make_jpeg(1)
    part = mjpeg.encode_part(jpeg, 1700000000.25)
    head, _, rest = part.partition(b"\r\n\r\n")
    assert head.split(b"\r\n") == [
        b"Content-Type: image/jpeg",
        f"Content-Length: {len(jpeg)}".encode(),
        b"X-Timestamp: 1700000000.250000",
    ]
    assert rest == jpeg + b"\r\n--frame\r\n"


def test_stream_we_write_reads_back_unchanged():
    jpegs = [make_jpeg(i) for i in range(5)]
    stream = mjpeg.STREAM_START + b"".join(mjpeg.encode_part(j, 1.0) for j in jpegs)
    assert list(mjpeg.read_parts(io.BytesIO(stream), mjpeg.BOUNDARY)) == jpegs


def test_parts_without_content_length_run_to_the_next_boundary():
    jpegs = [make_jpeg(i) for i in range(3)]
    stream = b"".join(b"--cam\r\nContent-Type: image/jpeg\r\n\r\n" + j + b"\r\n" for j in jpegs) + b"--cam--\r\n"
    assert list(mjpeg.read_parts(io.BytesIO(stream), "cam")) == jpegs


def test_closing_boundary_ends_the_stream():
    jpeg = make_jpeg(0)
    stream = b"--b\r\nContent-Length: %d\r\n\r\n" % len(jpeg) + jpeg + b"\r\n--b--\r\ntrailing junk"
    assert list(mjpeg.read_parts(io.BytesIO(stream), "b")) == [jpeg]


@pytest.mark.parametrize(
    "content_type, boundary",
    [
        ("multipart/x-mixed-replace; boundary=frame", "frame"),
        ('multipart/x-mixed-replace;boundary="quoted"', "quoted"),
        ("multipart/x-mixed-replace; boundary=--myboundary", "myboundary"),
        ("Multipart/X-Mixed-Replace; BOUNDARY=abc; charset=x", "abc"),
    ],
)
def test_boundary_from_content_type(content_type, boundary):
    assert mjpeg.boundary_from_content_type(content_type) == boundary


@pytest.mark.parametrize("content_type", ["image/jpeg", "multipart/x-mixed-replace", "multipart/x; boundary=--"])
def test_bad_content_types_are_refused(content_type):
    with pytest.raises(mjpeg.MjpegError):
        mjpeg.boundary_from_content_type(content_type)


def test_garbage_headers_raise_a_clear_error():
    stream = io.BytesIO(b"--b\r\nthis is no header\r\n\r\n")
    with pytest.raises(mjpeg.MjpegError, match="bad part header"):
        list(mjpeg.read_parts(stream, "b"))


def test_absurd_content_length_is_refused():
    stream = io.BytesIO(b"--b\r\nContent-Length: 999999999999\r\n\r\n")
    with pytest.raises(mjpeg.MjpegError, match="out of range"):
        list(mjpeg.read_parts(stream, "b"))
