"""An RTSP server for the tests: GStreamer's, from Debian, run by the tests with the system python (python3-gi).

    /usr/bin/python3 tests/rtsp_server.py PORT /path=PIPELINE [/other=PIPELINE ...]

Each path serves its GStreamer pipeline (its payloaders named pay0, pay1,
...) twice: at ``/path`` each client gets a pipeline of its own, and at
``/shared/path`` every client shares one, as one camera's stream is shared
(for a test that compares what camstream passed on with what a client of its
own read). A pipeline of its own cannot be stalled or broken for one client by
what another did, or by a moment's starvation on a loaded machine: a client
that reconnects gets a fresh one. Prints ``ready PORT`` once it listens
(PORT 0 picks a free one).
"""

import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer


def main(argv: list[str]) -> None:
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(argv[1])
    mounts = server.get_mount_points()
    for spec in argv[2:]:
        path, pipeline = spec.split("=", 1)
        for mount, shared in ((path, False), ("/shared" + path, True)):
            factory = GstRtspServer.RTSPMediaFactory()
            factory.set_launch(f"( {pipeline} )")
            factory.set_shared(shared)
            mounts.add_factory(mount, factory)
    server.attach(None)
    print("ready", server.get_bound_port(), flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main(sys.argv)
