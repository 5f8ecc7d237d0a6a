"""Memory over months while downloads are made (issue 36): downloads are made by a few long-lived workers, not
a new thread each, and what one freed goes back to the system after it (camera/record/exports.py).

The growth itself (hundreds of MB an hour in a server recording a 1080p camera as frames) is measured by
``bench/soak.py --downloads --no-record-copy``; these check the two things that stop it, without a clock."""

from __future__ import annotations

import ctypes
import subprocess
import sys
import textwrap
import threading

import pytest

from camera.record import exports
from camera.record.exports import ExportCache, Making
from tests.helpers import wait_until

glibc = pytest.mark.skipif(exports._TRIM is None or not sys.platform.startswith("linux"),
                           reason="malloc_trim is glibc's")


def test_many_downloads_in_a_row_are_made_by_the_same_few_workers(tmp_path):
    cache = ExportCache(tmp_path / "exports")
    turns = threading.BoundedSemaphore(2)
    threads = set()

    def make(path):
        threads.add(threading.get_ident())
        path.write_bytes(b"mp4")

    before = exports.WORKERS.started
    for index in range(40):
        making = cache.fetch(cache.folder / f"{index}.mp4", make, turns)
        assert isinstance(making, Making) and making.finished.wait(30)
        assert making.error is None
        # Back to waiting once its making is over (the next download comes minutes later in a server).
        assert wait_until(lambda: exports.WORKERS.waiting >= 1, 30)
    assert exports.WORKERS.started - before <= exports.KEPT_WORKERS, "a worker is started only while all are busy"
    assert len(threads) <= exports.KEPT_WORKERS and cache.made == 40


def test_workers_beyond_the_kept_ones_end_once_idle_and_a_busy_house_still_gets_a_worker():
    workers = exports.Workers("test", kept=1)
    go_on, started = threading.Event(), []
    for _ in range(3):  # three at once: each needs a worker of its own
        workers.submit(lambda: (started.append(threading.current_thread()), go_on.wait(30)))
    assert wait_until(lambda: len(started) == 3, 30) and workers.started == 3
    go_on.set()
    assert wait_until(lambda: sum(thread.is_alive() for thread in started) == 1, 30), "only one is kept waiting"
    done = threading.Event()
    workers.submit(done.set)
    assert done.wait(30) and workers.started == 3, "the kept worker took the next job"


@glibc
def test_a_making_gives_the_memory_back_once_it_is_done(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(exports, "give_back_memory", lambda: calls.append(1))
    cache = ExportCache(tmp_path / "exports")
    making = cache.fetch(cache.folder / "a.mp4", lambda path: path.write_bytes(b"mp4"))
    assert isinstance(making, Making) and making.finished.wait(30)
    assert wait_until(lambda: calls == [1], 30)
    failed = cache.fetch(cache.folder / "b.mp4", lambda path: 1 / 0)
    assert isinstance(failed, Making) and failed.finished.wait(30)
    assert wait_until(lambda: calls == [1, 1], 30), "after a making that failed too"


# In a process of its own: a thread frees 150 MB held in its arena between small blocks it keeps (as a download's
# thread leaves pictures among a server's long-lived allocations), and give_back_memory returns it.
FRAGMENTED = textwrap.dedent("""
    import threading
    from camera.record.exports import give_back_memory

    def rss_mb():
        return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20

    kept = []

    def fragment():
        big = []
        for _ in range(1500):
            big.append(bytearray(100_000))  # below the mmap threshold: from the thread's arena
            kept.append(bytearray(600))  # beyond pymalloc's small blocks: from the same arena, kept
        big.clear()

    thread = threading.Thread(target=fragment)
    thread.start()
    thread.join()
    held = rss_mb()
    give_back_memory()
    print(held, rss_mb())
""")


@glibc
def test_give_back_memory_returns_what_a_thread_freed_between_blocks_it_kept():
    out = subprocess.run([sys.executable, "-c", FRAGMENTED], capture_output=True, text=True, timeout=60, check=True)
    held, after = map(float, out.stdout.split())
    assert held - after > 100, (held, after)


def test_malloc_trim_is_found_on_glibc():
    try:
        ctypes.CDLL(None).gnu_get_libc_version  # noqa: B018 - only glibc has it
    except AttributeError:
        pytest.skip("not glibc")
    assert exports._TRIM is not None
