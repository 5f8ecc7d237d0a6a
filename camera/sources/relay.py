"""HTTP sources, and relaying an upstream MJPEG stream without re-encoding it."""

from __future__ import annotations

import base64
import logging
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.client import HTTPResponse
from urllib.parse import unquote, urlsplit

import numpy as np

from .. import mjpeg
from ..base import STALL_TIMEOUT
from ..errors import SourceError
from ..redact import split_userinfo
from .packets import PacketCamera

log = logging.getLogger("camstream.camera")

# Connect and read timeout for the upstream, in seconds: a dead upstream is
# noticed within the camera's 5 s stall timeout, with a clear reason.
HTTP_TIMEOUT = 4.0


class HttpCamera(PacketCamera):
    """An ``http(s)://`` source.

    If the upstream answers ``multipart/x-mixed-replace`` (another camstream,
    an ESP32-CAM, mjpg-streamer, most IP cameras), every JPEG is forwarded
    byte for byte: no decode, no re-encode, no loss. Any other response (an
    MPEG-TS or FLV stream, a file) is read as packets like an ``rtsp://``
    URL, its H.264 or H.265 passed through.
    """

    expects_video = False  # most HTTP cameras send MJPEG; the page tries MSE once the stream is seen

    def frames(self) -> Iterator[bytes | np.ndarray | None]:
        response = self._request()
        content_type = response.headers.get("Content-Type", "")
        if not content_type.lower().startswith("multipart/"):
            response.close()
            log.info("camera %s: %s is %r, not MJPEG; reading it as packets", self.name, self.source, content_type)
            yield from super().frames()
            return
        self.media.refuse("an MJPEG stream is relayed as it came")
        yield from relayed_parts(response, content_type, self.source, self._read_timeout)

    @property
    def _read_timeout(self) -> float:
        """HTTP_TIMEOUT, or the stall timeout of a camera given a longer one than the default (``--stall-timeout``,
        a time-lapse camera): it is read that long."""
        return self.stall_timeout if self.stall_timeout > STALL_TIMEOUT else HTTP_TIMEOUT

    def _request(self) -> HTTPResponse:
        url, headers = split_credentials(self.url)
        headers["User-Agent"] = "camstream"
        try:
            return opener.open(urllib.request.Request(url, headers=headers), timeout=self._read_timeout)
        except urllib.error.HTTPError as exc:
            exc.close()
            raise SourceError(f"{self.source} answered HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = self._redactor.redact(str(getattr(exc, "reason", exc)))
            raise SourceError(f"could not connect to {self.source}: {reason}") from None


class SameOriginRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects, but send the camera's credentials only where the source string named.

    urllib copies every header onto the redirected request, so a camera (or
    anything pretending to be one) could redirect its Basic credentials to
    another host, or from https to plain http.
    """

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and _origin(new.full_url) != _origin(req.full_url):
            new.remove_header("Authorization")
        return new


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme.lower(), (parts.hostname or "").lower(), parts.port


opener = urllib.request.build_opener(SameOriginRedirects)


def split_credentials(url: str) -> tuple[str, dict[str, str]]:
    """Move ``user:password@`` out of a URL into a Basic ``Authorization`` header.

    The userinfo is found as camera/redact.py finds it, so a password with
    an unencoded ``#``, ``/`` or ``@`` works here as it is masked there.
    """
    found = split_userinfo(url)
    if found is None:
        return url, {}
    bare, userinfo = found
    user, _, password = userinfo.partition(":")
    token = base64.b64encode(f"{unquote(user)}:{unquote(password)}".encode()).decode("ascii")
    return bare, {"Authorization": f"Basic {token}"}


def relayed_parts(response: HTTPResponse, content_type: str, source: str,
                  timeout: float = HTTP_TIMEOUT) -> Iterator[bytes]:
    """The JPEGs of an MJPEG response, byte for byte, as they come; what goes wrong a SourceError naming
    ``source`` (``timeout``: the response's read timeout, for the message); the response closed when they end or
    are no longer taken."""
    try:
        yield from mjpeg.read_parts(response, mjpeg.boundary_from_content_type(content_type))
    except mjpeg.MjpegError as exc:
        raise SourceError(f"{source}: {exc}") from None
    except TimeoutError:
        raise SourceError(f"{source} sent nothing for {timeout:g} s") from None
    except OSError as exc:
        raise SourceError(f"lost the connection to {source}: {exc.strerror or exc}") from None
    finally:
        response.close()
    raise SourceError(f"{source} ended the stream")
