"""What signing in costs per request: snapshots polled over keep-alive, open against signed in, side by side.

Two servers (``python -m webapp``, each pinned to core 0 in turn, one
pattern camera at 640x480): one open, one with a user. The same client
polls ``/snapshot.jpg`` ``--requests`` times over one keep-alive
connection, anonymously on the open server and, on the other, with HTTP
Basic (checked once, then remembered), a ``?token=`` and a session cookie.
Also: what one password check costs (Werkzeug's scrypt), the price of a
first sign-in and of every wrong one.

    python bench/auth.py                    # about a minute
    python bench/auth.py --requests 200 --out -
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import shlex
import sys
import tempfile
import time
from urllib.parse import urlencode

from report import publish
from run import ROOT, Process, cpu_seconds, pinned
from werkzeug.security import check_password_hash, generate_password_hash

PASSWORD = "bench password"


def idle_cpu(pid: int, seconds: float = 2.0) -> float:
    """The server's CPU per second with nobody asking (its camera capturing): taken off what requests cost."""
    cpu, started = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return (cpu_seconds(pid) - cpu) / (time.monotonic() - started)


def poll(port: int, path: str, requests: int, pid: int, idle: float, **headers: str) -> tuple[float, float]:
    """Requests per second and server CPU milliseconds per request, beyond its idle CPU."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    cpu, started = cpu_seconds(pid), time.monotonic()
    for _ in range(requests):
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        body = response.read()
        assert response.status == 200 and body, (path, response.status, body[:200])
    wall = time.monotonic() - started
    used = cpu_seconds(pid) - cpu - idle * wall
    connection.close()
    return requests / wall, used / requests * 1000


def start(folder: str, users: bool) -> Process:
    command = [sys.executable, "-m", "webapp", "--port", "0", "--camera", "c0=pattern", "--storage", folder]
    if users:
        command += ["--user", f"bench:{generate_password_hash(PASSWORD)}:admin"]
    return Process(pinned(0, command), r"open http://localhost:(\d+)/", stream="stderr")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"), help="markdown file, or - for stdout")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        server = start(folder + "/open", users=False)
        try:
            port = int(server.match.group(1))
            poll(port, "/snapshot.jpg", 20, server.pid, 0)
            idle = idle_cpu(server.pid)
            rows.append(("open server, anonymous", *poll(port, "/snapshot.jpg", args.requests, server.pid, idle)))
        finally:
            server.stop()
        server = start(folder + "/users", users=True)
        try:
            port = int(server.match.group(1))
            basic = "Basic " + base64.b64encode(f"bench:{PASSWORD}".encode()).decode()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            connection.request("POST", "/api/tokens", json.dumps({"camera": "c0"}),
                               {"Authorization": basic, "Content-Type": "application/json"})
            token = json.loads(connection.getresponse().read())["token"]
            connection.request("POST", "/login", urlencode({"username": "bench", "password": PASSWORD}),
                               {"Content-Type": "application/x-www-form-urlencoded",
                                "Origin": f"http://127.0.0.1:{port}"})
            response = connection.getresponse()
            response.read()
            cookie = response.headers["Set-Cookie"].split(";")[0]
            connection.close()
            poll(port, "/snapshot.jpg", 20, server.pid, 0, Authorization=basic)
            idle = idle_cpu(server.pid)
            rows.append(("HTTP Basic (checked once, remembered)",
                         *poll(port, "/snapshot.jpg", args.requests, server.pid, idle, Authorization=basic)))
            rows.append(("?token=", *poll(port, f"/snapshot.jpg?token={token}", args.requests, server.pid, idle)))
            rows.append(("session cookie",
                         *poll(port, "/snapshot.jpg", args.requests, server.pid, idle, Cookie=cookie)))
        finally:
            server.stop()
    stored = generate_password_hash(PASSWORD)
    started = time.perf_counter()
    for _ in range(5):
        check_password_hash(stored, "a wrong password")
    check_ms = (time.perf_counter() - started) / 5 * 1000
    open_rate = rows[0][1]
    lines = [f"| {name} | {rate:.0f} | {rate / open_rate:.2f} | {cpu:.2f} ms |" for name, rate, cpu in rows]
    text = "\n".join([
        "## What signing in costs",
        "",
        f"Produced by `{shlex.join(['python', 'bench/auth.py', *sys.argv[1:]])}` on {time.strftime('%Y-%m-%d')}.",
        "",
        (f"Machine: {os.cpu_count()} cores; each server pinned to core 0, one pattern camera (640x480); one client "
         f"polls /snapshot.jpg {args.requests} times over a keep-alive connection, one way after the other. "
         "Server CPU is beyond what it spends idle (its camera capturing), measured just before."),
        "",
        "| requester | snapshots per second | against open | server CPU per snapshot |",
        "| --- | --- | --- | --- |",
        *lines,
        "",
        (f"One password check (Werkzeug's scrypt, as `.venv/bin/camstream hash-password` makes) takes {check_ms:.0f} ms: "
         "what a first sign-in, a login form and every wrong password cost. A right Basic password is remembered "
         "(by a SHA-256 of name, password and hash), so a client that sends it with every request pays once."),
        "",
    ])
    publish(args.out, "auth", text)


if __name__ == "__main__":
    main()
