"""WebRTC for a camera's own H.264 (H.265 made H.264, AAC made Opus, G.711 as it is), through aiortc, made
once per camera.

- :mod:`.loop`: the one asyncio thread aiortc runs on, UDP ports from a range, a loopback host candidate.
- :mod:`.samples`: the parameter sets, AAC config and samples WebRTC needs out of the camera's fMP4.
- :mod:`.relay`: a camera's RTP payloads and Opus packets made once; each viewer's tracks; the kept GOP.
- :mod:`.opus`: AAC to Opus, once per camera.
- :mod:`.transcode`: an H.265 camera's video made H.264, once per camera, while it has WebRTC viewers.
- :mod:`.engine`: WHEP sessions (offer in, answer out, trickled candidates) and their peer connections.
- :mod:`.ice`: STUN/TURN servers and the port range as the settings give them.

Nothing here imports Flask: webapp/api/webrtc.py serves it.
"""

from .engine import IceRestartError, OfferError, Session, WebRtcEngine
from .ice import IceServer, parse_ice_server, parse_port_range

__all__ = ["IceRestartError", "IceServer", "OfferError", "Session", "WebRtcEngine", "parse_ice_server",
           "parse_port_range"]
