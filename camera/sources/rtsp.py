"""An RTSP client (RFC 2326) of camstream's own: one TCP connection, every track interleaved on it.

Why not FFmpeg's: its H.264 parser holds each frame until the next one
starts (camera/media/rtp.py says more). The protocol a camera speaks is
small: DESCRIBE for the session description, SETUP for each track, PLAY,
then RTP in ``$``-framed chunks on the same connection, kept alive with
GET_PARAMETER or OPTIONS. Basic and Digest sign-in, ``rtsps://`` over TLS
(not verified, as FFmpeg's and the cameras' own certificates go).

Everything a camera sends is bounded: a header, a body, a frame.
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import ssl
import struct
import time
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit, urlunsplit

from ..errors import SourceError

DEFAULT_PORTS = {"rtsp": 554, "rtsps": 322}
MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 1024 * 1024
# A session the server says nothing about times out after 60 s (RFC 2326, 12.37): keep alive well before.
DEFAULT_SESSION_SECONDS = 60
USER_AGENT = "camstream"


class RtspRefused(SourceError):
    """The server answered a request with an error (its status line says which)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Response:
    status: int
    reason: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)


@dataclass(frozen=True)
class Target:
    """An RTSP URL taken apart: where to connect, the URL to name in requests (no credentials), who signs in."""

    host: str
    port: int
    secure: bool
    url: str
    user: str | None
    password: str | None

    @classmethod
    def of(cls, url: str) -> Target:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORTS or not parts.hostname:
            raise SourceError("not an rtsp:// or rtsps:// URL with a host")
        try:
            port = parts.port or DEFAULT_PORTS[scheme]
        except ValueError:
            raise SourceError("the RTSP URL's port is not a number") from None
        netloc = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
        if parts.port:
            netloc += f":{parts.port}"
        bare = urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))
        user = unquote(parts.username) if parts.username is not None else None
        password = unquote(parts.password) if parts.password is not None else None
        return cls(parts.hostname, port, scheme == "rtsps", bare, user, password)


class _Signer:
    """The Authorization header for each request once the server asked for one (Basic or Digest, MD5)."""

    def __init__(self, user: str, password: str, challenge: str) -> None:
        self.user, self.password = user, password
        scheme, _, rest = challenge.strip().partition(" ")
        self.scheme = scheme.lower()
        self.fields = _challenge_fields(rest)
        self._count = 0

    def header(self, method: str, url: str) -> str:
        if self.scheme == "basic":
            return "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        realm, nonce = self.fields.get("realm", ""), self.fields.get("nonce", "")
        first = _md5(f"{self.user}:{realm}:{self.password}")
        second = _md5(f"{method}:{url}")
        parts = [f'username="{self.user}"', f'realm="{realm}"', f'nonce="{nonce}"', f'uri="{url}"']
        if "auth" in [item.strip() for item in self.fields.get("qop", "").split(",")]:
            self._count += 1
            client = os.urandom(8).hex()
            answer = _md5(f"{first}:{nonce}:{self._count:08x}:{client}:auth:{second}")
            parts += ["qop=auth", f"nc={self._count:08x}", f'cnonce="{client}"']
        else:
            answer = _md5(f"{first}:{nonce}:{second}")
        parts.append(f'response="{answer}"')
        if "opaque" in self.fields:
            parts.append(f'opaque="{self.fields["opaque"]}"')
        return "Digest " + ", ".join(parts)


class RtspSession:
    """One connection to an RTSP server: requests answered in turn, then interleaved RTP read from it.

    ``source`` is how errors name the camera (its URL without the password)."""

    def __init__(self, url: str, source: str, *, open_timeout: float, read_timeout: float) -> None:
        self.target = Target.of(url)
        self.source = source
        self.read_timeout = read_timeout
        self.session = ""
        self._session_seconds = DEFAULT_SESSION_SECONDS
        self._cseq = 0
        self._signer: _Signer | None = None
        self._buffer = bytearray()
        self._keepalive_method = "OPTIONS"
        self._last_sent = time.monotonic()
        try:
            raw = socket.create_connection((self.target.host, self.target.port), timeout=open_timeout)
        except OSError as exc:
            raise SourceError(f"could not open {source}: {exc.strerror or exc}") from None
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.target.secure:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            try:
                raw = context.wrap_socket(raw, server_hostname=self.target.host)
            except (OSError, ssl.SSLError) as exc:
                raw.close()
                raise SourceError(f"could not open {source}: TLS: {exc}") from None
        self.sock = raw

    # -- requests --------------------------------------------------------------------------------------------

    def request(self, method: str, url: str, headers: dict[str, str] | None = None) -> Response:
        """Send a request and wait for its answer (RTP that comes before it is dropped); signs in once if asked."""
        response = self._exchange(method, url, headers)
        if response.status == 401 and self._signer is None and self.target.user is not None:
            challenge = _pick_challenge(response.header("www-authenticate"))
            if challenge:
                self._signer = _Signer(self.target.user, self.target.password or "", challenge)
                response = self._exchange(method, url, headers)
        if response.status == 401:
            raise RtspRefused(f"{self.source}: {method} refused: wrong or missing user name or password", 401)
        if response.status >= 300:
            raise RtspRefused(f"{self.source}: {method} answered {response.status} {response.reason}", response.status)
        if method == "OPTIONS" and "GET_PARAMETER" in response.header("public").upper():
            self._keepalive_method = "GET_PARAMETER"
        if "session" in response.headers:
            self._take_session(response.header("session"))
        return response

    def _exchange(self, method: str, url: str, headers: dict[str, str] | None) -> Response:
        cseq = self._send(method, url, headers)
        while True:
            item = self._next(request_answer=True)
            if isinstance(item, Response) and item.header("cseq", str(cseq)) == str(cseq):
                return item

    def _send(self, method: str, url: str, headers: dict[str, str] | None = None) -> int:
        self._cseq += 1
        lines = [f"{method} {url} RTSP/1.0", f"CSeq: {self._cseq}", f"User-Agent: {USER_AGENT}"]
        if self.session:
            lines.append(f"Session: {self.session}")
        if self._signer is not None:
            lines.append(f"Authorization: {self._signer.header(method, url)}")
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        try:
            self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        except OSError as exc:
            raise SourceError(f"{self.source}: the connection failed: {exc.strerror or exc}") from None
        self._last_sent = time.monotonic()
        return self._cseq

    def _take_session(self, value: str) -> None:
        name, *params = value.split(";")
        self.session = name.strip()[:256]
        for param in params:
            key, _, number = param.strip().partition("=")
            if key.lower() == "timeout" and number.strip().isdigit():
                self._session_seconds = max(2, min(int(number), 3600))

    # -- reading -------------------------------------------------------------------------------------------------

    def read(self) -> tuple[int, bytes]:
        """The next interleaved chunk: its channel and its bytes. Answers to keepalives are skipped; one is sent
        when the session's timeout is half gone."""
        while True:
            if time.monotonic() - self._last_sent > self._session_seconds / 2:
                self._send(self._keepalive_method, self.target.url)
            item = self._next(request_answer=False)
            if isinstance(item, tuple):
                return item

    def _next(self, request_answer: bool) -> tuple[int, bytes] | Response | None:
        """One thing off the connection: an interleaved chunk, an answer, or None for a request of the server's
        (answered with 501 so that it does not wait) or stray bytes skipped."""
        while True:
            buffer = self._buffer
            if buffer[:1] == b"$":
                if len(buffer) >= 4:
                    channel, length = buffer[1], struct.unpack_from(">H", buffer, 2)[0]
                    if len(buffer) >= 4 + length:
                        chunk = bytes(buffer[4:4 + length])
                        del buffer[:4 + length]
                        return channel, chunk
                self._fill()
                continue
            if buffer[:5] == b"RTSP/" or buffer[:1].isalpha():
                end = buffer.find(b"\r\n\r\n")
                if end < 0:
                    if len(buffer) > MAX_HEADER_BYTES:
                        raise SourceError(f"{self.source}: an RTSP header longer than {MAX_HEADER_BYTES} bytes")
                    self._fill()
                    continue
                message = self._message(end)
                if message is None:
                    continue
                return message
            if buffer:
                # Stray bytes (a lost chunk's tail): up to the next "$" or answer.
                starts = [at for at in (buffer.find(b"$", 1), buffer.find(b"RTSP/", 1)) if at > 0]
                del buffer[:min(starts) if starts else len(buffer)]
                continue
            self._fill()

    def _message(self, end: int) -> Response | None:
        head = bytes(self._buffer[:end]).decode("latin-1")
        first, *lines = head.split("\r\n")
        headers: dict[str, str] = {}
        for line in lines:
            name, found, value = line.partition(":")
            if found:
                key = name.strip().lower()
                headers[key] = f"{headers[key]}\n{value.strip()}" if key in headers else value.strip()
        try:
            length = int(headers.get("content-length", "0"))
        except ValueError:
            length = 0
        if not 0 <= length <= MAX_BODY_BYTES:
            raise SourceError(f"{self.source}: an RTSP body of {length} bytes")
        while len(self._buffer) < end + 4 + length:
            self._fill()
        body = bytes(self._buffer[end + 4:end + 4 + length])
        del self._buffer[:end + 4 + length]
        if not first.startswith("RTSP/"):
            # The server asks something of us (a keepalive of its own, an ANNOUNCE): say we do not do it.
            cseq = headers.get("cseq", "0")
            try:
                self.sock.sendall(f"RTSP/1.0 501 Not Implemented\r\nCSeq: {cseq}\r\n\r\n".encode())
            except OSError:
                pass
            return None
        parts = first.split(" ", 2)
        try:
            status = int(parts[1])
        except (IndexError, ValueError):
            raise SourceError(f"{self.source}: an RTSP answer without a status") from None
        return Response(status, parts[2] if len(parts) > 2 else "", headers, body)

    def _fill(self) -> None:
        self.sock.settimeout(self.read_timeout)
        try:
            data = self.sock.recv(256 * 1024)
        except TimeoutError:
            raise SourceError(f"{self.source}: nothing came for {self.read_timeout:g} s") from None
        except OSError as exc:
            raise SourceError(f"{self.source}: the connection failed: {exc.strerror or exc}") from None
        if not data:
            raise SourceError(f"{self.source} closed the connection")
        self._buffer += data

    def close(self) -> None:
        """TEARDOWN if a session was set up (without waiting for its answer), then close."""
        if self.session:
            try:
                self.sock.settimeout(0.5)
                self._send("TEARDOWN", self.target.url)
            except (SourceError, OSError):
                pass
        try:
            self.sock.close()
        except OSError:
            pass


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def _pick_challenge(header: str) -> str:
    """Digest if the server offers it (several WWW-Authenticate headers come joined), else Basic."""
    offers = [part.strip() for part in header.split("\n") if part.strip()] or [header]
    for offer in offers:
        if offer.lower().startswith("digest"):
            return offer
    return next((offer for offer in offers if offer.lower().startswith("basic")), "")


def _challenge_fields(text: str) -> dict[str, str]:
    fields, at = {}, 0
    while at < len(text):
        equals = text.find("=", at)
        if equals < 0:
            break
        name = text[at:equals].strip(" ,").lower()
        at = equals + 1
        if text[at:at + 1] == '"':
            close = text.find('"', at + 1)
            close = len(text) if close < 0 else close
            fields[name], at = text[at + 1:close], close + 1
        else:
            comma = text.find(",", at)
            comma = len(text) if comma < 0 else comma
            fields[name], at = text[at:comma].strip(), comma + 1
    return fields
