"""Network namespaces for the tests, made without root: a user namespace of the test's own (``unshare -rn``)
owns every network namespace here, so ``ip`` may give them veth pairs, addresses and routes, and nothing
outside them (the machine's own interfaces, other people's tests) is touched or reached.

Also a reverse proxy (``python -m tests.webrtc.netns proxy ...``) that lets a browser in one namespace reach
camstream's HTTP in another, and a WHEP viewer (``python -m tests.webrtc.netns viewer ...``) that signs in over HTTP from one namespace
and carries its media in another: it opens its HTTP connection to camstream first, then moves itself
(``setns``) into the namespace it watches from, so every socket aiortc opens after that is there. A viewer
outside the LAN that reaches camstream's HTTP some way (a reverse proxy, a tunnel) while its UDP reaches
nothing of camstream's but the TURN server is just that.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Sequence

CLONE_NEWNET = 0x40000000


def namespaces_available() -> str | None:
    """None where namespaces can be made and wired here; else why not."""
    for tool in ("unshare", "nsenter", "ip"):
        if shutil.which(tool) is None:
            return f"no {tool} on this machine (util-linux, iproute2)"
    probe = subprocess.run(["unshare", "-rn", "ip", "link", "add", "probe0", "type", "veth", "peer", "name",
                            "probe1"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        return f"an unprivileged user and network namespace with a veth pair cannot be made here: {probe.stderr.strip()}"
    return None


class Namespace:
    """A network namespace, held open by a process that waits; the first one made also makes the user namespace
    that owns them all."""

    def __init__(self, owner: Namespace | None = None) -> None:
        if owner is None:
            command = ["unshare", "-rn"]
        else:  # inside the owner's user namespace, so its root may wire this one to the others
            command = [*owner.enter(net=False), "unshare", "-n"]
        # unshare and nsenter exec what follows them: the process is the holder itself, in the namespace. It
        # reads its stdin, so it ends with the test's process however that ends.
        self.process = subprocess.Popen([*command, "sh", "-c", "echo ready; exec cat >/dev/null"],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True)
        line = self.process.stdout.readline() if self.process.stdout else ""
        if line.strip() != "ready":
            self.process.kill()
            raise RuntimeError(f"no namespace: {self.process.stderr.read() if self.process.stderr else ''}")
        self.pid = self.process.pid
        self.run("ip", "link", "set", "lo", "up")

    @property
    def path(self) -> str:
        """The namespace's file, for ``setns`` and ``ip link ... netns``."""
        return f"/proc/{self.pid}/ns/net"

    def enter(self, net: bool = True) -> list[str]:
        """The command prefix that runs a program in this namespace (as the user namespace's root)."""
        return ["nsenter", "-t", str(self.pid), "--user", *(["--net"] if net else []), "--preserve-credentials"]

    def run(self, *command: str) -> str:
        """Run a command in this namespace; its output; CalledProcessError (with its stderr) if it fails."""
        done = subprocess.run([*self.enter(), *command], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise subprocess.CalledProcessError(done.returncode, command, done.stdout, done.stderr)
        return done.stdout

    def popen(self, command: Sequence[str], **kwargs: object) -> subprocess.Popen:
        """A process in this namespace (``subprocess.Popen``'s arguments)."""
        return subprocess.Popen([*self.enter(), *command], **kwargs)  # type: ignore[call-overload]

    def link(self, other: Namespace, name: str, address: str, other_name: str, other_address: str) -> None:
        """A veth pair between this namespace and ``other``, an address (``10.0.0.1/24``) at each end, both up."""
        self.run("ip", "link", "add", name, "type", "veth", "peer", "name", other_name, "netns", other.path)
        for namespace, device, cidr in ((self, name, address), (other, other_name, other_address)):
            namespace.run("ip", "addr", "add", cidr, "dev", device)
            namespace.run("ip", "link", "set", device, "up")

    def close(self) -> None:
        self.process.kill()
        self.process.wait(10)


def setns(path: str) -> None:
    """Move this thread (and the threads it starts from now on) into the network namespace at ``path``; the
    sockets it opened before stay where they were."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        _setns(descriptor)
    finally:
        os.close(descriptor)


def _setns(descriptor: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(descriptor, CLONE_NEWNET) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"setns: {os.strerror(code)}")


def reach(address: str) -> str:
    """``ok`` if a UDP datagram to ``address`` (port 9, discard) can be sent from here, else the errno's name."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.sendto(b"x", (address, 9))
        except OSError as error:
            return errno.errorcode.get(error.errno or 0, str(error))
    return "ok"


async def watch(connection: http.client.HTTPConnection, path: str, ice_server: dict, frames: int) -> dict:
    """Play ``path`` (a WHEP endpoint) with aiortc: frames decoded, the ICE pair aiortc chose, the camera's
    WebRTC status while playing and after the session's DELETE."""
    from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCRtpSender, RTCSessionDescription

    pc = RTCPeerConnection(RTCConfiguration(iceServers=[RTCIceServer(**ice_server)]))
    video = pc.addTransceiver("video", direction="recvonly")
    video.setCodecPreferences([codec for codec in RTCRtpSender.getCapabilities("video").codecs
                               if codec.mimeType == "video/H264"])
    await pc.setLocalDescription(await pc.createOffer())
    loop = asyncio.get_running_loop()

    def request(method: str, url: str, body: str | None = None) -> tuple[int, dict, bytes]:
        headers = {"Content-Type": "application/sdp"} if body is not None else {}
        connection.request(method, url, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()

    status, headers, answer = await loop.run_in_executor(None, request, "POST", path, pc.localDescription.sdp)
    if status != 201:
        raise RuntimeError(f"WHEP answered {status}: {answer[:300]!r}")
    await pc.setRemoteDescription(RTCSessionDescription(answer.decode(), "answer"))
    decoded = width = 0
    try:
        while decoded < frames:
            frame = await asyncio.wait_for(video.receiver.track.recv(), 60)
            decoded += frame.width > 0
            width = frame.width
        ice = video.receiver.transport.transport
        pair = ice._connection._nominated.get(1)  # aioice's: the pair ICE chose for the media (component 1)
        chosen = None if pair is None else {
            "local": pair.local_candidate.type, "local_address": list(pair.local_addr),
            "remote": pair.remote_candidate.type, "remote_address": list(pair.remote_addr)}
        local = sorted({candidate.type for candidate in ice.iceGatherer.getLocalCandidates()})
        camera = path.split("/whep/", 1)[1].split("?")[0]
        _, _, body = await loop.run_in_executor(None, request, "GET", f"/api/webrtc/{camera}")
        playing = json.loads(body)
        deleted, _, _ = await loop.run_in_executor(None, request, "DELETE", headers["Location"])
        _, _, body = await loop.run_in_executor(None, request, "GET", f"/api/webrtc/{camera}")
        ended = json.loads(body)
    finally:
        await pc.close()
    return {"frames": decoded, "width": width, "pair": chosen, "local_candidates": local,
            "status": playing, "deleted": deleted, "status_after": ended}


def proxy(argv: list[str]) -> None:
    """``proxy PORT NAMESPACE``: forwards TCP connections made to 127.0.0.1 in NAMESPACE (the port it prints as
    ``ready PORT``) to 127.0.0.1:PORT here, as a reverse proxy in front of camstream's HTTP would; runs until
    killed."""
    port, namespace = int(argv[0]), argv[1]
    here = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    setns(namespace)
    listener = socket.create_server(("127.0.0.1", 0))  # in NAMESPACE ...
    _setns(here)  # ... and back: the connections onwards are made from here
    print("ready", listener.getsockname()[1], flush=True)

    def pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for each in (source, sink):
                with contextlib.suppress(OSError):
                    each.shutdown(socket.SHUT_RDWR)

    while True:
        client, _ = listener.accept()
        upstream = socket.create_connection(("127.0.0.1", port))
        for source, sink in ((client, upstream), (upstream, client)):
            threading.Thread(target=pump, args=(source, sink), daemon=True).start()


def viewer(argv: list[str]) -> None:
    """``viewer HTTP_PORT WHEP_PATH MEDIA_NAMESPACE ICE_SERVER_JSON FRAMES [ADDRESS ...]``: prints one JSON line;
    whether each ADDRESS can be reached is reported from camstream's namespace (``home``) and from the media
    namespace (``media``)."""
    port, path, media_namespace, ice_server, frames, *addresses = argv
    reached = {"home": {address: reach(address) for address in addresses}}
    connection = http.client.HTTPConnection("127.0.0.1", int(port), timeout=60)
    connection.connect()  # the signalling's socket stays in camstream's namespace ...
    setns(media_namespace)  # ... every socket from here on is in the viewer's
    reached["media"] = {address: reach(address) for address in addresses}
    seen = asyncio.run(watch(connection, path, json.loads(ice_server), int(frames)))
    print(json.dumps({**seen, "reach": reached}), flush=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["viewer"]:
        viewer(sys.argv[2:])
    elif sys.argv[1:2] == ["proxy"]:
        proxy(sys.argv[2:])
    else:
        sys.exit(f"usage: {sys.argv[0]} viewer HTTP_PORT WHEP_PATH MEDIA_NAMESPACE ICE_SERVER_JSON FRAMES [ADDRESS ...]"
                 f" | proxy PORT NAMESPACE")
