"""What the auth tests share: users with real hashes, a client that keeps every answer, and a log catcher."""

from __future__ import annotations

import base64
import http.client
import json
import logging
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from urllib.parse import urlencode, urlsplit

from werkzeug.security import generate_password_hash

PASSWORDS = {"ada": "ada's long password", "vic": "vic password 2", "dora": "dora sees door only"}
HASHES = {name: generate_password_hash(password) for name, password in PASSWORDS.items()}
USERS = [f"ada:{HASHES['ada']}:admin", f"vic:{HASHES['vic']}", f"dora:{HASHES['dora']}:viewer:door"]
STREAMING = ("multipart/x-mixed-replace", "text/event-stream")


def basic(name: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Recorder:
    """Every body and header a test's clients received, and every log line: searched for secrets at the end."""

    texts: list[str] = field(default_factory=list)

    def add(self, text: str) -> None:
        self.texts.append(text)

    def leaks(self, secrets: list[str]) -> list[str]:
        return [secret for secret in secrets if any(secret in text for text in self.texts)]


class Client:
    """HTTP to a camstream, with the cookie it was given; a stream's answer is its first bytes."""

    def __init__(self, base: str, recorder: Recorder, authorization: str | None = None) -> None:
        parts = urlsplit(base)
        self.host, self.port = parts.hostname, parts.port
        self.recorder = recorder
        self.authorization = authorization
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, body: bytes | None = None, **headers: str) -> Answer:
        headers = {key.replace("_", "-"): value for key, value in headers.items()}
        if self.authorization:
            headers.setdefault("Authorization", self.authorization)
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{key}={value}" for key, value in self.cookies.items())
        connection = http.client.HTTPConnection(self.host, self.port, timeout=15)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            streaming = response.headers.get("Content-Type", "").startswith(STREAMING)
            data = response.read(200) if streaming else response.read()
            for cookie in response.headers.get_all("Set-Cookie") or []:
                parsed = SimpleCookie(cookie)
                for key, morsel in parsed.items():
                    if morsel.value:
                        self.cookies[key] = morsel.value
                    else:
                        self.cookies.pop(key, None)
            self.recorder.add(str(response.headers))
            self.recorder.add(data.decode("latin-1"))
            return Answer(response.status, response.headers, data)
        finally:
            connection.close()

    def get(self, path: str, **headers: str) -> Answer:
        return self.request("GET", path, **headers)

    def login(self, name: str, password: str, next_path: str = "/") -> Answer:
        body = urlencode({"username": name, "password": password, "next": next_path}).encode()
        return self.request("POST", "/login", body, Content_Type="application/x-www-form-urlencoded",
                            Origin=f"http://{self.host}:{self.port}")


class LogCatcher(logging.Handler):
    """Every log line, formatted as camstream formats them."""

    def __init__(self, recorder: Recorder) -> None:
        super().__init__(logging.DEBUG)
        self.recorder = recorder
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.recorder.add(self.format(record))
