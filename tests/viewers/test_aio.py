"""camera.viewers.aio: the MJPEG body, the next frame and snapshots awaited on an event loop, without a thread each."""

import asyncio
import io
import itertools
import threading

import pytest

from camera import mjpeg
from camera.viewers.aio import AsyncFrames, LoopWaker, mjpeg_body, snapshot
from tests.helpers import decode
from tests.sources import CountingCamera, SilentCamera


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, 30))


def parts(chunks: list[bytes]) -> list[bytes]:
    """The JPEGs of an MJPEG body's chunks, read with camstream's own reader."""
    return list(mjpeg.read_parts(io.BytesIO(b"".join(chunks)), mjpeg.BOUNDARY))


def test_the_body_streams_newest_frames_and_unsubscribes_when_closed():
    camera = CountingCamera(rate=50)

    async def watch():
        body = mjpeg_body(camera)
        chunks = [await anext(body) for _ in range(11)]
        assert camera.status()["viewers"] == 1
        await body.aclose()
        return chunks

    chunks = run(watch())
    assert chunks[0] == mjpeg.STREAM_START
    frames = parts(chunks)
    assert len(frames) >= 9 and all(decode(frame).shape == (48, 64, 3) for frame in frames)
    assert camera.status()["viewers"] == 0
    camera.stop()


def test_a_cancelled_viewer_is_unsubscribed_at_once():
    camera = CountingCamera(rate=50)

    async def watch(started: asyncio.Event):
        async for _ in mjpeg_body(camera):
            started.set()

    async def main():
        started = asyncio.Event()
        task = asyncio.create_task(watch(started))
        await started.wait()
        assert camera.status()["viewers"] == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return camera.status()["viewers"]

    assert run(main()) == 0
    camera.stop()


def test_several_cameras_in_one_body_are_tagged_and_capped_per_viewer():
    cameras = [CountingCamera(f"cam{i}", rate=40) for i in range(2)]

    async def watch():
        body = mjpeg_body(cameras, fps=10, tagged=True)
        chunks = [await anext(body) for _ in range(1 + 2 * 12)]
        await body.aclose()
        return chunks

    chunks = run(watch())
    tags = [chunk for chunk in chunks if chunk.startswith(b"X-Camera:")]
    assert set(tags) == {b"X-Camera: cam0\r\n", b"X-Camera: cam1\r\n"}
    stamps = {}
    for tag, part in zip(chunks[1::2], chunks[2::2], strict=True):
        stamps.setdefault(tag, []).append(float(part.split(b"X-Timestamp: ")[1].split(b"\r\n")[0]))
    for times in stamps.values():
        # At most 10 fps for this viewer, from cameras sending 40.
        gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
        assert min(gaps) >= 0.1 * 0.74
    for camera in cameras:
        camera.stop()


def test_frames_are_awaited_newest_first_never_twice():
    camera = CountingCamera(rate=50)

    async def main():
        async with AsyncFrames(camera) as frames:
            first = await frames.next_frame(10)
            # Five frames go by meanwhile: the next one is the newest of them.
            for _ in range(500):
                if camera.broadcaster.latest.seq >= first.seq + 5:
                    break
                await asyncio.sleep(0.02)
            second = await frames.next_frame(10)
            third = await frames.next_frame(10)
            assert camera.status()["viewers"] == 1
        return first, second, third

    first, second, third = run(main())
    assert second.seq >= first.seq + 5 and third.seq > second.seq
    assert camera.status()["viewers"] == 0
    camera.stop()


def test_next_frame_times_out_and_a_snapshot_of_a_silent_camera_is_none():
    camera = SilentCamera()

    async def main():
        async with AsyncFrames(camera) as frames:
            assert await frames.next_frame(0.3) is None
        return await snapshot(camera, 0.3)

    assert run(main()) is None
    camera.stop()


def test_a_snapshot_starts_an_idle_camera():
    camera = CountingCamera(rate=30)
    frame = run(snapshot(camera, 10))
    assert frame is not None and frame.live and decode(frame.jpeg).shape == (48, 64, 3)
    camera.stop()


def test_one_call_into_the_loop_wakes_every_viewer_of_a_frame():
    calls = []

    async def main():
        loop = asyncio.get_running_loop()
        original = loop.call_soon_threadsafe
        loop.call_soon_threadsafe = lambda *args: calls.append(1) or original(*args)
        waker = LoopWaker(loop)
        events = [asyncio.Event() for _ in range(100)]
        thread = threading.Thread(target=lambda: [waker.wake(event) for event in events])
        thread.start()
        thread.join()
        await asyncio.wait_for(asyncio.gather(*(event.wait() for event in events)), 5)

    run(main())
    assert 1 <= len(calls) <= 3
