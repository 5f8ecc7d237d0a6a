"""uvicorn's HTTP protocol with each connection's unsent bytes bounded, so a slow viewer stays near live.

    uvicorn examples.fastapi_app:app --http examples.lowlatency:H11Protocol

An ASGI app never sees its connections' sockets, and what piles up on a slow
one is outside its reach: Linux lets a socket's send buffer grow to 4 MB
(``net.ipv4.tcp_wmem``), 20 s of video for a viewer taking 200 KB/s, before
``await send(...)`` makes the app wait at all. uvicorn lets a server pick
its protocol class (``--http``, an import string), and the class sees each
socket when the connection is made: this one keeps at most 16 KB unsent in
the kernel (``TCP_NOTSENT_LOWAT``, as camstream's own server does) and 16 KB
in the transport before uvicorn makes the app wait, so the frame a slow
viewer gets next is the newest one, not one from seconds ago.
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.h11_impl import H11Protocol as _H11Protocol

from camera.viewers.sender import NOTSENT_LOWAT, set_notsent_lowat

# uvicorn pauses the app's sends above this many bytes waiting in the transport (asyncio's default is 64 KB).
TRANSPORT_HIGH_WATER = 16 * 1024


class H11Protocol(_H11Protocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            set_notsent_lowat(sock, NOTSENT_LOWAT)
        transport.set_write_buffer_limits(high=TRANSPORT_HIGH_WATER)
        super().connection_made(transport)
