"""WHEP sessions: an SDP offer in, an SDP answer out, and a peer connection that plays a camera until it ends.

Each session is one aiortc peer connection on the WebRTC loop
(camera/webrtc/loop.py) with a video track (and an audio track where the
offer asks for audio) fed by its camera's :class:`CameraRelay`, made once
per camera. The senders' encoders are replaced by one that hands on the
relay's payloads (no decode, no encode, no packetizing per viewer), and
their keyframe requests go to the track, which answers from the kept GOP.

H.264 is negotiated with packetization-mode 1 and the profile of the
camera where the browser offers it (else any H.264 it offers: browsers
decode more than they announce); audio is the camera's G.711 (PCMU or
PCMA) as it came, else Opus.

A session is also a viewer of the camera's MediaFeed, so the camera's
viewer count includes it, it keeps the camera awake, and a camera whose
video stops being passed through ends it.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.codecs import CODECS
from aiortc.rtcrtpparameters import RTCRtcpFeedback, RTCRtpCodecCapability, RTCRtpCodecParameters
from aiortc.sdp import SessionDescription, candidate_from_sdp, parse_h264_profile_level_id

from ..media.feed import MediaFeed
from . import loop as webrtc_loop
from .ice import IceServer
from .relay import (
    AUDIO_PCMA,
    AUDIO_PCMU,
    AudioTrack,
    CameraRelay,
    PassThroughPacker,
    VideoTrack,
    idle_relay_status,
)

log = logging.getLogger("camstream.webrtc")

# How long an offer may take to answer (ICE gathering included: a STUN or TURN server that does not answer).
ANSWER_SECONDS = 20.0
# How long an offer for a camera that is starting waits for its stream, to answer with the camera's profile.
STREAM_WAIT_SECONDS = 4.0
STREAM_POLL_SECONDS = 0.1
# A session whose peer never connects is ended after this long (its viewer slot comes back).
CONNECT_SECONDS = 30.0
# H.264 profiles beyond aiortc's Constrained Baseline that a camera sends and browsers offer.
EXTRA_H264_PROFILES = ("4d001f", "640c1f", "64001f")
_PACKER = PassThroughPacker()
# The codec an answer names for a camera's sound: its G.711 as it came, else Opus (made from its AAC).
AUDIO_CODECS = {AUDIO_PCMU: "pcmu", AUDIO_PCMA: "pcma"}


class OfferError(ValueError):
    """An SDP offer that cannot be answered: not SDP, or nothing in it this camera can send."""


class IceRestartError(ValueError):
    """A trickle ICE fragment with a new ufrag and password: an ICE restart, which aiortc cannot do."""


# The most candidates one trickle ICE fragment may carry (a browser has a few per network interface).
MAX_TRICKLED = 64


@dataclass
class Session:
    """One WHEP viewer: its id (the last part of its URL), its camera and its peer connection."""

    id: str
    camera: str
    feed: MediaFeed
    pc: RTCPeerConnection
    video: VideoTrack | None
    audio: AudioTrack | None
    on_close: list[Callable[[], None]] = field(default_factory=list)
    closed: bool = False
    trickled: int = 0  # remote candidates added after the offer (trickle ICE)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def when_closed(self, cleanup: Callable[[], None]) -> None:
        """Run ``cleanup`` when the session ends (at once if it has): its slot, its revocation watch."""
        with self._lock:
            if not self.closed:
                self.on_close.append(cleanup)
                return
        cleanup()

    def _closing(self) -> list[Callable[[], None]]:
        """Mark the session closed; what is to run now (once)."""
        with self._lock:
            if self.closed:
                return []
            self.closed = True
            cleanups, self.on_close = self.on_close, []
            return cleanups

    @property
    def state(self) -> str:
        return self.pc.connectionState

    def stats(self) -> dict[str, object]:
        return {"id": self.id, "camera": self.camera, "state": self.state,
                "video_frames": self.video.sent if self.video else 0,
                "audio_packets": self.audio.sent if self.audio else 0,
                "keyframe_answers": self.video.keyframe_answers if self.video else 0, "trickled": self.trickled}


class _FeedPresence:
    """The session as one of the feed's viewers: counted and keeping the camera awake; a feed that closes its
    viewers (its video no longer passed through) ends the session."""

    def __init__(self, engine: WebRtcEngine, session_id: str) -> None:
        self._engine = engine
        self._id = session_id
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def begin(self, start: list[bytes], complete: bool) -> None:
        pass  # the relay, not the feed's WebSocket messages, feeds the session

    def offer(self, message: bytes, keyframe: bool) -> None:
        pass

    def close(self) -> None:
        self._closed = True
        self._engine.close_soon(self._id)


class WebRtcEngine:
    """The WHEP sessions of one app, on the process's WebRTC loop."""

    def __init__(self, ice_servers: list[IceServer] | None = None, ports: range | None = None) -> None:
        self.ice_servers = list(ice_servers or [])
        webrtc_loop.set_ports(ports)
        _add_h264_profiles()
        self._sessions: dict[str, Session] = {}
        self._relays: dict[int, tuple[MediaFeed, CameraRelay]] = {}
        self._lock = threading.Lock()

    # -- from any thread ------------------------------------------------------

    def open(self, feed: MediaFeed, camera: str, offer: str,
             streaming: Callable[[], bool] = lambda: False) -> Session:
        """A session for ``offer`` (its answer in ``session.pc.localDescription``); OfferError for an offer
        that cannot be answered, TimeoutError if answering took too long. ``streaming`` says whether the camera
        is starting or streaming: then the answer waits (bounded) for its stream, to name its profile."""
        return webrtc_loop.call(self._open(feed, camera, offer, streaming), ANSWER_SECONDS)

    def close(self, session_id: str, timeout: float = 5.0) -> bool:
        """End a session and wait for it (bounded); False if there is none by that id."""
        return webrtc_loop.call(self._close(session_id), timeout)

    def trickle(self, session_id: str, fragment: str, timeout: float = 10.0) -> int:
        """Add the remote ICE candidates of a trickle ICE fragment (RFC 8840's ``application/trickle-ice-sdpfrag``:
        ``a=ice-ufrag``, ``a=ice-pwd``, ``a=candidate:`` and ``a=end-of-candidates`` lines) to a session; how
        many were added. KeyError for no such session, IceRestartError for other credentials than the
        offer's, OfferError for a fragment that cannot be read."""
        return webrtc_loop.call(self._trickle(session_id, fragment), timeout)

    def close_soon(self, session_id: str) -> None:
        """End a session without waiting (from a revocation check or the capture thread)."""
        webrtc_loop.soon(lambda: asyncio.ensure_future(self._close(session_id)))

    def close_all(self, timeout: float = 5.0) -> None:
        for session_id in list(self._sessions):
            try:
                self.close(session_id, timeout)
            except TimeoutError:
                log.warning("a WebRTC session did not close in time")

    def session(self, session_id: str) -> Session | None:
        return self._sessions.get(session_id)

    def sessions(self, camera: str | None = None) -> list[Session]:
        return [one for one in list(self._sessions.values()) if camera is None or one.camera == camera]

    def relay_of(self, feed: MediaFeed) -> CameraRelay | None:
        found = self._relays.get(id(feed))
        return found[1] if found is not None and found[0] is feed else None

    def status_of(self, feed: MediaFeed, camera: str) -> dict[str, object]:
        """A camera's WebRTC side for its status: its viewers (sessions, and those connected), how its video
        and sound reach them, and what was made once for all of them."""
        sessions = self.sessions(camera)
        relay = self.relay_of(feed)
        if relay is None:
            return self.idle_status(feed)
        return {"viewers": len(sessions), "connected": sum(one.state == "connected" for one in sessions),
                **relay.status()}

    @staticmethod
    def idle_status(feed: MediaFeed) -> dict[str, object]:
        """The status of a camera no WebRTC viewer has asked for yet: what its stream would be sent as."""
        return {"viewers": 0, "connected": 0, **idle_relay_status(feed.mime_type)}

    # -- on the loop ----------------------------------------------------------

    async def _open(self, feed: MediaFeed, camera: str, offer: str, streaming: Callable[[], bool]) -> Session:
        try:
            parsed = SessionDescription.parse(offer)
        except (ValueError, IndexError, KeyError, TypeError, AttributeError) as exc:
            raise OfferError(f"the offer is not SDP that can be read: {exc}") from exc
        kinds = [media.kind for media in parsed.media]
        if "video" not in kinds:
            raise OfferError("the offer asks for no video")
        relay = self._relay(feed)
        # A camera just woken: its profile is known from its first init segment. Without it (a camera that is
        # down), the answer takes any H.264 the browser offers.
        waited = 0.0
        while relay.info is None and streaming() and waited < STREAM_WAIT_SECONDS:
            try:
                await asyncio.wait_for(relay.ready.wait(), STREAM_POLL_SECONDS)
            except TimeoutError:
                waited += STREAM_POLL_SECONDS
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[
            RTCIceServer(server.url, server.username, server.credential) for server in self.ice_servers]))
        session = Session(secrets.token_urlsafe(18), camera, feed, pc, None, None)
        try:
            session.video = relay.video_track()
            video = pc.addTransceiver(session.video, direction="sendonly")
            video.setCodecPreferences(_h264_preferences(relay))
            if "audio" in kinds:
                session.audio = relay.audio_track()
                session.audio.codec = AUDIO_CODECS.get(relay.audio_path, "opus")
                audio = pc.addTransceiver(session.audio, direction="sendonly")
                audio.setCodecPreferences([codec for codec in RTCRtpSender.getCapabilities("audio").codecs
                                           if codec.mimeType.lower() == f"audio/{session.audio.codec}"])
            try:
                await pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise OfferError(f"the offer cannot be answered: {exc}") from exc
            except Exception as exc:  # aiortc's OperationError / InvalidStateError: nothing in common
                raise OfferError(f"the offer cannot be answered (it needs H.264 with packetization-mode=1 "
                                 f"and, for sound, Opus): {exc}") from exc
            for sender in pc.getSenders():
                _pass_through(sender, session)
            await pc.setLocalDescription(await pc.createAnswer())
        except BaseException:
            for track in (session.video, session.audio):
                if track is not None:
                    track.stop()
            await pc.close()
            raise
        presence = _FeedPresence(self, session.id)
        if not feed.add(presence):
            for track in (session.video, session.audio):
                if track is not None:
                    track.stop()
            await pc.close()
            raise OfferError(f"camera {camera!r} does not pass its video through")
        session.when_closed(lambda: feed.remove(presence))
        self._sessions[session.id] = session

        @pc.on("connectionstatechange")
        async def changed() -> None:
            if pc.connectionState in ("failed", "closed"):
                await self._close(session.id)

        asyncio.get_running_loop().call_later(CONNECT_SECONDS, self._give_up_unless_connected, session.id)
        return session

    async def _trickle(self, session_id: str, fragment: str) -> int:
        session = self._sessions.get(session_id)
        if session is None:
            raise KeyError(session_id)
        lines = [line.strip() for line in fragment.splitlines() if line.strip()]
        values = {key: line.split(":", 1)[1] for line in lines for key in ("a=ice-ufrag", "a=ice-pwd")
                  if line.startswith(key + ":")}
        remote = session.pc.remoteDescription
        offered = SessionDescription.parse(remote.sdp) if remote is not None else None
        ice = offered.media[0].ice if offered is not None and offered.media else None
        if ice is not None and (values.get("a=ice-ufrag", ice.usernameFragment) != ice.usernameFragment
                                or values.get("a=ice-pwd", ice.password) != ice.password):
            raise IceRestartError("a new ICE ufrag and password ask for an ICE restart")
        found = [line[len("a=candidate:"):] for line in lines if line.startswith("a=candidate:")]
        if len(found) > MAX_TRICKLED:
            raise OfferError(f"more than {MAX_TRICKLED} candidates in one fragment")
        try:
            candidates = [candidate_from_sdp(text) for text in found]
        except (AssertionError, ValueError, IndexError) as exc:
            raise OfferError(f"a candidate that cannot be read: {exc or 'too few fields'}") from exc
        # Every media is bundled on the first one's transport: the candidates go there, whatever m-line they name.
        mid = next((transceiver.mid for transceiver in session.pc.getTransceivers()), None)
        for candidate in candidates:
            candidate.sdpMid = mid
            await session.pc.addIceCandidate(candidate)
        session.trickled += len(candidates)
        if "a=end-of-candidates" in lines:
            await session.pc.addIceCandidate(None)
        return len(candidates)

    def _give_up_unless_connected(self, session_id: str) -> None:
        session = self._sessions.get(session_id)
        if session is not None and session.state != "connected":
            log.info("a WebRTC viewer of %s never connected; ending its session", session.camera)
            asyncio.ensure_future(self._close(session_id))

    async def _close(self, session_id: str) -> bool:
        session = self._sessions.pop(session_id, None)
        if session is None:
            return False
        cleanups = session._closing()
        for track in (session.video, session.audio):
            if track is not None:
                track.stop()
        try:
            await session.pc.close()
        finally:
            for cleanup in cleanups:
                try:
                    cleanup()
                except Exception:
                    log.warning("could not clean up after a WebRTC session", exc_info=True)
        return True

    def _relay(self, feed: MediaFeed) -> CameraRelay:
        """The camera's relay, made (and attached to its feed) by its first viewer; it stays while the app runs,
        so a later first viewer starts from the current GOP too."""
        found = self._relays.get(id(feed))
        if found is not None and found[0] is feed:
            return found[1]
        relay = CameraRelay()
        self._relays[id(feed)] = (feed, relay)
        feed.add_taker(relay)
        return relay

    def detach(self) -> None:
        """Stop taking every camera's fragments (the app stops)."""
        for feed, relay in self._relays.values():
            feed.remove_taker(relay)
        self._relays.clear()


def _pass_through(sender: RTCRtpSender, session: Session) -> None:
    """Have ``sender`` send the relay's payloads as they are, and answer keyframe requests from the kept GOP.

    aiortc has no public way to give a sender payloads made already; its
    sender makes an encoder on the first frame unless it has one, and asks
    it to ``pack`` what is not a decoded frame. Pinned to aiortc 1.16
    (tests/webrtc checks that the payloads are the relay's).
    """
    attribute = "_RTCRtpSender__encoder"
    if not hasattr(sender, attribute):
        raise RuntimeError("this aiortc's RTCRtpSender has no encoder to replace; camstream needs aiortc 1.16")
    setattr(sender, attribute, _PACKER)
    if sender.track is session.video and session.video is not None:
        sender._send_keyframe = session.video.keyframe_wanted  # type: ignore[method-assign]


def _add_h264_profiles() -> None:
    """Teach aiortc the H.264 profiles beyond Constrained Baseline, so the answer can name the camera's."""
    present = {str(codec.parameters.get("profile-level-id")) for codec in CODECS["video"]}
    payload_type = max(codec.payloadType for codec in CODECS["video"]) + 1
    for profile in EXTRA_H264_PROFILES:
        if profile in present:
            continue
        CODECS["video"] += [
            RTCRtpCodecParameters(mimeType="video/H264", clockRate=90000, payloadType=payload_type,
                                  rtcpFeedback=[RTCRtcpFeedback(type="nack"),
                                                RTCRtcpFeedback(type="nack", parameter="pli"),
                                                RTCRtcpFeedback(type="goog-remb")],
                                  parameters={"level-asymmetry-allowed": "1", "packetization-mode": "1",
                                              "profile-level-id": profile}),
            RTCRtpCodecParameters(mimeType="video/rtx", clockRate=90000, payloadType=payload_type + 1,
                                  parameters={"apt": payload_type})]
        payload_type += 2


def _h264_preferences(relay: CameraRelay) -> list[RTCRtpCodecCapability]:
    """H.264 with packetization-mode 1: the camera's own profile first, then the others (and RTX)."""
    capabilities = RTCRtpSender.getCapabilities("video").codecs
    h264 = [codec for codec in capabilities if codec.mimeType.lower() == "video/h264"
            and str(codec.parameters.get("packetization-mode")) == "1"]
    rtx = [codec for codec in capabilities if codec.mimeType.lower() == "video/rtx"]
    own = None
    if relay.info is not None and (relay.info.h264 or relay.info.hevc):
        # An H.265 camera's H.264 is x264's baseline: Constrained Baseline.
        profile = relay.info.profile[:2].hex() if relay.info.h264 else "42e0"
        try:
            own = parse_h264_profile_level_id(profile + "1f")[0]
        except ValueError:
            own = None

    def rank(codec: RTCRtpCodecCapability) -> int:
        try:
            profile = parse_h264_profile_level_id(str(codec.parameters.get("profile-level-id")))[0]
        except ValueError:
            return 2
        return 0 if profile == own else 1

    return sorted(h264, key=rank) + rtx
