"""Downloads made by a thread of their own and followed while they are made (camera/record/exports.py)."""

from __future__ import annotations

import threading

import pytest

from camera.record.exports import Busy, ExportCache, Making


def blocked_maker(first: bytes, rest: bytes, go_on: threading.Event, calls: list[str]):
    def make(path):
        calls.append(path.name)
        with open(path, "wb") as file:
            file.write(first)
            file.flush()
            assert go_on.wait(30), "the test never let the making go on"
            file.write(rest)
    return make


def test_a_download_is_sent_from_its_first_bytes_while_it_is_made_and_joined_not_made_twice(tmp_path):
    cache = ExportCache(tmp_path / "exports")
    go_on, calls = threading.Event(), []
    make = blocked_maker(b"A" * 1000, b"B" * 300_000, go_on, calls)
    target = cache.folder / "span.mp4"
    making = cache.fetch(target, make)
    assert isinstance(making, Making)
    file = making.open()
    assert file is not None
    chunks = making.follow(file)
    assert next(chunks) == b"A" * 1000, "the first bytes go out while the rest is still being made"
    assert not making.finished.is_set() and not target.exists()
    second = cache.fetch(target, make)
    assert second is making, "a second request follows the same making"
    go_on.set()
    assert b"".join(chunks) == b"B" * 300_000
    assert making.finished.is_set() and target.read_bytes() == b"A" * 1000 + b"B" * 300_000
    assert calls == ["span.mp4.part"] and cache.made == 1
    assert cache.fetch(target, make) == target, "once whole, the kept file itself (served with ranges)"
    assert sorted(path.name for path in cache.folder.iterdir()) == ["span.mp4"]


def test_a_making_that_fails_says_why_to_every_follower_and_leaves_nothing(tmp_path):
    cache = ExportCache(tmp_path / "exports")

    def nothing(path):
        raise LookupError("no frame is recorded in that time")

    making = cache.fetch(cache.folder / "empty.mp4", nothing)
    assert isinstance(making, Making)
    assert making.open() is None and isinstance(making.error, LookupError)
    assert list(cache.folder.iterdir()) == [] and cache._making == {}


def test_makings_take_turns_and_a_full_house_is_busy(tmp_path):
    cache = ExportCache(tmp_path / "exports")
    turns = threading.BoundedSemaphore(1)
    go_on = threading.Event()
    first = cache.fetch(cache.folder / "a.mp4", blocked_maker(b"a", b"", go_on, []), turns)
    with pytest.raises(Busy):
        cache.fetch(cache.folder / "b.mp4", blocked_maker(b"b", b"", go_on, []), turns)
    go_on.set()
    assert first.finished.wait(30)
    assert isinstance(cache.fetch(cache.folder / "b.mp4", blocked_maker(b"b", b"", go_on, []), turns), Making), \
        "the turn came back when the first was made"


def test_parts_a_crash_cut_short_are_deleted_at_start(tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "cut.mp4.part").write_bytes(b"half")
    (folder / "whole.mp4").write_bytes(b"kept")
    ExportCache(folder)
    assert sorted(path.name for path in folder.iterdir()) == ["whole.mp4"]


def test_a_making_with_no_byte_in_time_answers_later_and_is_kept_meanwhile(tmp_path):
    cache = ExportCache(tmp_path / "exports")
    go_on = threading.Event()

    def slow(path):
        assert go_on.wait(30)
        path.write_bytes(b"late")

    making = cache.fetch(cache.folder / "slow.mp4", slow)
    assert isinstance(making, Making)
    with pytest.raises(TimeoutError):
        making.open(timeout=0.2)
    go_on.set()
    assert making.finished.wait(30) and cache.fetch(cache.folder / "slow.mp4", slow).read_bytes() == b"late"
