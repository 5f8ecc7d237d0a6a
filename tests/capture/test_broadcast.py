import threading

from camera import Broadcaster, Frame
from tests.helpers import make_jpeg

JPEG = make_jpeg(0)


def frame(seq: int) -> Frame:
    return Frame(seq, JPEG, float(seq), 160, 120)


def test_a_busy_viewer_gets_the_newest_frame_and_never_one_twice():
    broadcaster = Broadcaster()
    with broadcaster.subscribe() as viewer:
        for seq in (1, 2, 3):
            broadcaster.publish(frame(seq))
        assert viewer.next_frame(1).seq == 3
        assert viewer.next_frame(0.05) is None
        broadcaster.publish(frame(4))
        assert viewer.next_frame(1).seq == 4


def test_a_new_viewer_gets_the_newest_frame_at_once():
    broadcaster = Broadcaster()
    broadcaster.publish(frame(7))
    with broadcaster.subscribe() as viewer:
        assert viewer.next_frame(0).seq == 7


def test_two_viewers_in_one_thread_do_not_share_state():
    broadcaster = Broadcaster()
    first, second = broadcaster.subscribe(), broadcaster.subscribe()
    broadcaster.publish(frame(1))
    assert first.next_frame(1).seq == 1
    assert second.next_frame(1).seq == 1
    broadcaster.publish(frame(2))
    assert second.next_frame(1).seq == 2
    assert first.next_frame(1).seq == 2
    first.close()
    second.close()
    assert broadcaster.subscriber_count == 0


def test_closing_wakes_a_waiting_viewer():
    broadcaster = Broadcaster()
    viewer = broadcaster.subscribe()
    returned = threading.Event()

    def watch():
        viewer.next_frame(30)
        returned.set()

    threading.Thread(target=watch, daemon=True).start()
    viewer.close()
    assert returned.wait(2)
    assert viewer.closed


def test_reset_forgets_the_newest_frame():
    broadcaster = Broadcaster()
    broadcaster.publish(frame(1))
    broadcaster.reset()
    with broadcaster.subscribe() as viewer:
        assert viewer.next_frame(0.01) is None


def test_subscribing_and_leaving_while_frames_fly():
    broadcaster = Broadcaster()
    errors: list[BaseException] = []
    done = threading.Event()

    def publisher():
        seq = 0
        while not done.is_set():
            seq += 1
            broadcaster.publish(frame(seq))

    def churn():
        try:
            for _ in range(300):
                with broadcaster.subscribe() as viewer:
                    viewer.next_frame(0.01)
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=churn) for _ in range(4)]
    feeder = threading.Thread(target=publisher)
    feeder.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    done.set()
    feeder.join(5)
    assert not errors
    assert broadcaster.subscriber_count == 0
