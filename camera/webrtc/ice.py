"""STUN and TURN servers as the settings give them: ``stun:host[:port]`` or ``turn:USER:CREDENTIAL@host[:port]
[?transport=udp|tcp]`` (``turns:`` for TLS); a user or credential with ``:``, ``@`` or ``,`` in it is
percent-encoded (``%40`` for ``@``).

The same list goes to aiortc (the server's side of ICE) and to the page
(the browser's, as ``RTCPeerConnection``'s ``iceServers``): a TURN
server's credential is handed to whoever may watch, as WebRTC needs; it is
never logged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

_URL = re.compile(r"(stuns?|turns?):(?:([^@/?#]*)@)?(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(?::([0-9]{1,5}))?"
                  r"(\?transport=(?:udp|tcp))?")


@dataclass(frozen=True)
class IceServer:
    """One STUN or TURN server: its URL without credentials, and the user and credential TURN needs."""

    url: str
    username: str | None = None
    credential: str | None = None

    def as_json(self) -> dict[str, object]:
        """As a browser's ``RTCIceServer`` takes it (and WHEP's ``Link`` header describes)."""
        entry: dict[str, object] = {"urls": [self.url]}
        if self.username is not None:
            entry["username"] = self.username
            entry["credential"] = self.credential or ""
        return entry

    def __repr__(self) -> str:  # never the credential
        return f"IceServer({self.url!r}, username={self.username!r})"


def parse_ice_server(text: str) -> IceServer:
    """An :class:`IceServer` from a setting's text; ValueError naming what is wrong (never the credential)."""
    match = _URL.fullmatch(text.strip())
    if match is None:
        shown = text.split("@")[-1][:80]
        raise ValueError(f"an ICE server is stun:HOST[:PORT] or turn:USER:CREDENTIAL@HOST[:PORT][?transport=udp|tcp], "
                         f"not ...{shown!r}")
    scheme, userinfo, host, port, query = match.groups()
    if port is not None and not 0 < int(port) < 65536:
        raise ValueError(f"an ICE server's port is 1-65535, not {port}")
    url = f"{scheme}:{host}" + (f":{port}" if port else "") + (query or "")
    if scheme.startswith("stun"):
        if userinfo:
            raise ValueError(f"a STUN server takes no user or credential: {url}")
        return IceServer(url)
    if not userinfo or ":" not in userinfo:
        raise ValueError(f"a TURN server needs USER:CREDENTIAL@ before its host: {url}")
    user, credential = userinfo.split(":", 1)
    return IceServer(url, unquote(user), unquote(credential))


def parse_port_range(text: str | None) -> range | None:
    """``40000-40100`` (or one port) as a range of UDP ports; None for none given; ValueError if not one."""
    if text is None or not str(text).strip():
        return None
    match = re.fullmatch(r"\s*([0-9]{1,5})\s*(?:-\s*([0-9]{1,5})\s*)?", str(text))
    low, high = (int(match[1]), int(match[2] or match[1])) if match else (0, -1)
    if not (match and 1024 <= low <= high <= 65535):
        raise ValueError(f"WebRTC's UDP ports are LOW-HIGH within 1024-65535, not {str(text)[:40]!r}")
    return range(low, high + 1)
