"""The ways a viewer is served the frames and events of a camera: one family, in one place.

``sender``     the sender thread, and :class:`SocketViewer`: an MJPEG stream on a socket taken
               from the HTTP server, written by one thread for every viewer
``sse``        viewers of the event log: Server-Sent Events, on a socket or as a WSGI body
``websocket``  a camera's frames and events over a WebSocket (wsproto), on the sender thread
``wsgi``       a stream as a WSGI body, a thread per viewer (any WSGI server)
``aio``        a stream on an asyncio event loop, for ASGI apps (FastAPI, Django)

Every one takes each frame as the camera published it (encoded once) and
skips to the newest when it falls behind.
"""

from .aio import AsyncFrames
from .sender import SocketViewer, StreamSender
from .websocket import WebSocketViewer
from .wsgi import mjpeg_stream

__all__ = ["AsyncFrames", "SocketViewer", "StreamSender", "WebSocketViewer", "mjpeg_stream"]
