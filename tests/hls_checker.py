"""An RFC 8216 (and RFC 8216bis Low-Latency) checker of our own: it reads media playlists poll after poll and
asserts the rules a server must keep across them.

One playlist alone: the tags a live fMP4 playlist needs, every segment's
duration within the target, a date on each segment, parts within the part
target, a preload hint. Across polls (:class:`PlaylistWatch`): the target
never changes, the media sequence never goes back and a number always
names the same segment, a segment's discontinuity number never changes, a
new init comes after an ``EXT-X-DISCONTINUITY`` with a new ``EXT-X-MAP``,
and a segment that left the playlist is still served for the playlist's
duration after.
"""

from __future__ import annotations

import itertools
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

ATTRIBUTE = re.compile(r'([A-Z0-9-]+)=("[^"]*"|[^,]*)')


def attributes(text: str) -> dict[str, str]:
    return {name: value.strip('"') for name, value in ATTRIBUTE.findall(text)}


@dataclass
class Part:
    uri: str
    duration: float
    independent: bool


@dataclass
class Segment:
    number: int
    uri: str
    duration: float
    init: str
    discontinuity: bool
    discontinuity_number: int
    date: datetime | None
    parts: list[Part] = field(default_factory=list)


@dataclass
class Playlist:
    target: int
    sequence: int
    discontinuity_sequence: int
    segments: list[Segment]
    independent: bool
    part_target: float | None = None
    server_control: dict[str, str] = field(default_factory=dict)
    trailing_parts: list[Part] = field(default_factory=list)  # of the segment being made
    preload_hint: str | None = None

    @property
    def duration(self) -> float:
        return sum(segment.duration for segment in self.segments)


def parse(text: str) -> Playlist:
    """A media playlist, checked for what one playlist alone must be."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    assert lines and lines[0] == "#EXTM3U", "a playlist starts with #EXTM3U"
    tags: dict[str, str] = {}
    segments: list[Segment] = []
    parts: list[Part] = []
    init = None
    discontinuity = False
    date = None
    duration = None
    hint = None
    sequence = discontinuity_sequence = None
    for line in lines[1:]:
        if line.startswith("#EXT-X-TARGETDURATION:"):
            tags["target"] = line.split(":", 1)[1]
        elif line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            assert not segments, "EXT-X-MEDIA-SEQUENCE comes before the first segment"
            sequence = int(line.split(":", 1)[1])
        elif line.startswith("#EXT-X-DISCONTINUITY-SEQUENCE:"):
            assert not segments, "EXT-X-DISCONTINUITY-SEQUENCE comes before the first segment"
            discontinuity_sequence = int(line.split(":", 1)[1])
        elif line == "#EXT-X-DISCONTINUITY":
            discontinuity = True
        elif line.startswith("#EXT-X-MAP:"):
            init = attributes(line.split(":", 1)[1])["URI"]
        elif line.startswith("#EXT-X-PROGRAM-DATE-TIME:"):
            date = datetime.fromisoformat(line.split(":", 1)[1])
        elif line.startswith("#EXT-X-PART:"):
            found = attributes(line.split(":", 1)[1])
            parts.append(Part(found["URI"], float(found["DURATION"]), found.get("INDEPENDENT") == "YES"))
        elif line.startswith("#EXT-X-PRELOAD-HINT:"):
            found = attributes(line.split(":", 1)[1])
            assert found["TYPE"] == "PART"
            hint = found["URI"]
        elif line.startswith("#EXT-X-PART-INF:"):
            tags["part_target"] = attributes(line.split(":", 1)[1])["PART-TARGET"]
        elif line.startswith("#EXT-X-SERVER-CONTROL:"):
            tags["server_control"] = line.split(":", 1)[1]
        elif line == "#EXT-X-INDEPENDENT-SEGMENTS":
            tags["independent"] = "yes"
        elif line.startswith("#EXTINF:"):
            duration = float(line.split(":", 1)[1].split(",")[0])
        elif not line.startswith("#"):
            assert duration is not None, f"{line}: a segment without EXTINF"
            assert init is not None, f"{line}: a segment without EXT-X-MAP before it"
            assert sequence is not None and discontinuity_sequence is not None
            number = sequence + len(segments)
            before = sum(1 for segment in segments if segment.discontinuity) + int(discontinuity)
            segments.append(Segment(number, line, duration, init, discontinuity,
                                    discontinuity_sequence + before, date, parts))
            duration, date, discontinuity, parts = None, None, False, []
    assert "target" in tags and sequence is not None, "EXT-X-TARGETDURATION and EXT-X-MEDIA-SEQUENCE are there"
    target = int(tags["target"])
    playlist = Playlist(target, sequence, discontinuity_sequence or 0, segments, "independent" in tags,
                        float(tags["part_target"]) if "part_target" in tags else None,
                        attributes(tags.get("server_control", "")), parts, hint)
    for segment in segments:
        assert round(segment.duration) <= target, f"{segment.uri}: EXTINF {segment.duration} > target {target}"
        assert segment.date is not None, f"{segment.uri}: no EXT-X-PROGRAM-DATE-TIME"
    for previous, segment in itertools.pairwise(segments):
        if segment.init != previous.init:
            assert segment.discontinuity, f"{segment.uri}: a new EXT-X-MAP without EXT-X-DISCONTINUITY"
    if playlist.part_target is not None:
        control = playlist.server_control
        assert control.get("CAN-BLOCK-RELOAD") == "YES"
        assert float(control["PART-HOLD-BACK"]) >= 3 * playlist.part_target - 1e-6, control
        assert 0.1 <= playlist.part_target <= 1.0, playlist.part_target
        for part in [part for segment in segments for part in segment.parts] + parts:
            assert part.duration <= playlist.part_target + 1e-6, f"{part.uri} lasts {part.duration}"
        for segment in segments:
            if segment.parts and playlist.independent:
                assert segment.parts[0].independent, f"{segment.uri}: its first part starts with a keyframe"
                assert abs(sum(part.duration for part in segment.parts) - segment.duration) < 0.01
    return playlist


class PlaylistWatch:
    """Playlists of one camera, poll after poll, with the rules that hold across them asserted."""

    def __init__(self, base: str, fetch: Callable[[str], bytes | None] | None = None) -> None:
        self.base = base  # where the playlist's URIs are resolved: .../hls/<name>/
        self.fetch = fetch or self._fetch
        self.target: int | None = None
        self.sequence = -1
        self.names: dict[int, str] = {}
        self.discontinuity_numbers: dict[int, int] = {}
        self.inits: dict[int, str] = {}
        # Segments that left the playlist: number -> (when it was seen gone, the playlist's duration then).
        self.left: dict[int, tuple[float, float]] = {}
        self.listed: set[int] = set()
        self.polls = 0
        self.longest = 0.0
        self.shortest_after_full: float | None = None
        self.discontinuities_seen: set[int] = set()
        self.checked_gone = 0
        self.last: Playlist | None = None

    def see(self, text: str) -> Playlist:
        """One more poll's playlist: every rule, asserted."""
        playlist = parse(text)
        now = time.monotonic()
        self.polls += 1
        if self.target is None:
            self.target = playlist.target
        assert playlist.target == self.target, f"EXT-X-TARGETDURATION went from {self.target} to {playlist.target}"
        assert playlist.sequence >= self.sequence, f"EXT-X-MEDIA-SEQUENCE went back: {self.sequence} -> {playlist.sequence}"
        self.sequence = playlist.sequence
        for segment in playlist.segments:
            assert self.names.setdefault(segment.number, segment.uri) == segment.uri, \
                f"segment {segment.number} was {self.names[segment.number]}, now {segment.uri}"
            assert self.discontinuity_numbers.setdefault(segment.number, segment.discontinuity_number) \
                == segment.discontinuity_number, f"segment {segment.number}'s discontinuity number changed"
            assert self.inits.setdefault(segment.number, segment.init) == segment.init
            if segment.discontinuity:
                self.discontinuities_seen.add(segment.number)
        numbers = {segment.number for segment in playlist.segments}
        for number in self.listed - numbers:
            assert number < playlist.sequence, f"segment {number} left from the middle"
            self.left.setdefault(number, (now, (self.last or playlist).duration))
        self.listed = numbers
        self.longest = max(self.longest, playlist.duration)
        if self.longest >= 3 * playlist.target:
            assert playlist.duration >= 3 * playlist.target, \
                f"the playlist holds {playlist.duration:.2f} s, less than three target durations"
        self.last = playlist
        self._fetch_gone(now)
        return playlist

    def _fetch_gone(self, now: float) -> None:
        """Every segment that left less than the playlist's duration ago (less half a target) is still there."""
        assert self.target is not None
        for number, (left_at, duration) in list(self.left.items()):
            if now - left_at <= duration - self.target / 2:
                data = self.fetch(self.base + self.names[number])
                assert data, f"segment {number} ({self.names[number]}) is gone {now - left_at:.1f} s after it " \
                             f"left a playlist of {duration:.1f} s"
                self.checked_gone += 1

    @staticmethod
    def _fetch(url: str) -> bytes | None:
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return response.read()
        except urllib.error.HTTPError:
            return None
