"""A hostile Truto stand-in on loopback, for the fault tests (tests/test_hostile.py).

``HostileTruto(answer)`` serves every GET with ``answer(path, params, headers)``,
which returns a :class:`Reply`: a status, headers and a body, the body either
bytes or a list of ``(bytes, seconds to wait before sending them)`` pieces so a
server can drip an answer. :func:`truto` builds an ``answer`` that behaves like
Truto for a few accounts, with any path/account replaced by a hostile reply.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | list[tuple[bytes, float]] = b""
    raw: bool = False  # True: headers as given (no Content-Length added)
    close: bool = False  # True: close the connection after the body (e.g. in the middle of it)

    @classmethod
    def json(cls, value: Any, status: int = 200, **headers: str) -> Reply:
        return cls(
            status, {"Content-Type": "application/json", **headers}, json.dumps(value).encode()
        )


Answer = Callable[[str, dict, dict], Reply]


class HostileTruto:
    """A threaded HTTP server on 127.0.0.1 and a free port; ``log`` lists (path, params) of every request."""

    def __init__(self, answer: Answer):
        self.answer = answer
        self.log: list[tuple[str, dict]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):  # noqa: N802
                parts = urlsplit(self.path)
                params = dict(parse_qsl(parts.query))
                outer.log.append((parts.path, params))
                reply = outer.answer(parts.path, params, dict(self.headers))
                try:
                    self._send(reply)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_POST(self):  # noqa: N802  (a webhook: the body is read and dropped)
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.do_GET()

            def _send(self, reply: Reply):
                self.send_response(reply.status)
                pieces = reply.body if isinstance(reply.body, list) else [(reply.body, 0.0)]
                headers = dict(reply.headers)
                if not reply.raw:
                    headers.setdefault("Content-Length", str(sum(len(p) for p, _ in pieces)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.flush()
                for data, wait in pieces:
                    if outer._stop.wait(wait) if wait else outer._stop.is_set():
                        return
                    self.wfile.write(data)
                    self.wfile.flush()
                if reply.close:
                    self.close_connection = True

        self._stop = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> HostileTruto:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self.server.shutdown()
        self.server.server_close()


class Drip:
    """A TCP server on 127.0.0.1 that talks slowly: on each connection it goes through ``steps``:
    ``(bytes, seconds)`` sends the bytes one every that many seconds (0: all at once), and
    :attr:`LINE` reads one line from the client (an SMTP dialogue: the greeting, LINE, the answer to
    EHLO, ...). Every wait ends when the server stops, and it stops after the steps: each loop is
    bounded."""

    LINE = "line"

    def __init__(self, *steps: tuple[bytes, float] | str):
        self.steps = steps
        self.connections = 0
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._talk, args=(conn,), daemon=True).start()

    def _talk(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(0.2)
            for step in self.steps:
                if isinstance(step, str):
                    if not self._read_line(conn):
                        return
                    continue
                data, every = step
                pieces = [bytes([b]) for b in data] if every else [data]
                for piece in pieces:
                    if self._stop.wait(every) if every else self._stop.is_set():
                        return
                    try:
                        conn.sendall(piece)
                    except OSError:
                        return
            self._stop.wait(60)  # then hold the connection open, silent, until stopped

    def _read_line(self, conn: socket.socket) -> bool:
        while not self._stop.is_set():
            try:
                data = conn.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return False
            if not data:
                return False
            if b"\n" in data:
                return True
        return False

    def __enter__(self) -> Drip:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._listener.close()
        self._thread.join(5)


def active(account_id: str, integration: str = "adobe", tenant: str = "t1", **extra) -> dict:
    return {
        "id": account_id,
        "tenant_id": tenant,
        "status": "active",
        "integration": {"name": integration},
        **extra,
    }


def seat(lid: str, name: str, assigned: int = 1, available: int = 10, **extra) -> dict:
    return {
        "id": lid,
        "name": name,
        "assigned_quantity": assigned,
        "available_quantity": available,
        "is_paid": True,
        **extra,
    }


def truto(
    accounts: list[dict] | list[list[dict]],
    licenses: dict[str, list] | None = None,
    hostile: dict[str, Answer] | None = None,
    organizations: dict[str, list] | None = None,
) -> Answer:
    """Truto for ``accounts`` (a list, or a list of pages) and their licenses; ``hostile`` maps an
    account id (or a path) to an answer that replaces the normal one for it."""
    pages = accounts if accounts and isinstance(accounts[0], list) else [accounts]
    licenses = licenses or {}
    hostile = hostile or {}
    organizations = organizations or {}

    def answer(path: str, params: dict, headers: dict) -> Reply:
        aid = params.get("integrated_account_id")
        for key in (path, aid):
            if key in hostile:
                return hostile[key](path, params, headers)
        if path == "/integrated-account":
            page = int(params.get("next_cursor") or 0)
            nxt = str(page + 1) if page + 1 < len(pages) else None
            return Reply.json({"result": pages[page], "next_cursor": nxt})
        if path.startswith("/integrated-account/"):
            wanted = path.rsplit("/", 1)[1]
            for acc in (a for p in pages for a in p):
                if acc["id"] == wanted:
                    return Reply.json(acc)
            return Reply.json({"message": "Not found"}, 404)
        if path.endswith("/organizations"):
            return Reply.json({"result": organizations.get(aid, []), "next_cursor": None})
        if path.endswith("/licenses"):
            return Reply.json({"result": licenses.get(aid, []), "next_cursor": None})
        return Reply.json({"message": "Not found"}, 404)

    return answer


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    started = time.monotonic()
    value = fn()
    return value, time.monotonic() - started
