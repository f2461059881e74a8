"""The HTTP edge of the Truto client: typed errors, the session, bearer auth, ``Retry-After``,
body reading and decoding, and the watchdog that cuts an exchange off at its deadline."""

from __future__ import annotations

import email.utils
import heapq
import itertools
import json
import math
import re
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import requests
import requests.auth
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

from lib.errors import DashboardError


class TrutoError(DashboardError):
    """A failed Truto call, in words a person can act on."""

    def __init__(
        self,
        kind: str,
        message: str,
        status: int | None = None,
        remote: bool = False,
        account_id: str | None = None,
        insight: dict | None = None,
        path: str | None = None,
    ):
        super().__init__(message)
        self.kind = kind  # auth, needs_reauth, not_found, bad_request, blocked, rate_limited,
        self.message = message  # server, network, malformed, cursor_loop, page_cap
        self.status = status
        self.remote = remote
        self.account_id = account_id
        self.insight = insight or {}
        self.path = path

    def missing_parameters(self) -> list[str]:
        """Names from ``truto_error_insight.missing_required_query_parameters``."""
        entry = self.insight.get("missing_required_query_parameters")
        value = entry.get("value") if isinstance(entry, dict) else entry
        if isinstance(value, str):
            value = value.split(",")
        if not isinstance(value, list):
            return []
        return [str(v).strip() for v in value if str(v).strip()]

    def __str__(self) -> str:
        bits = [
            f"HTTP {self.status}" if self.status else None,
            "from the vendor" if self.remote else None,
        ]
        extra = ", ".join(b for b in bits if b)
        return f"{self.message} ({extra})" if extra else self.message


def make_session(pool_size: int) -> requests.Session:
    """One session whose connection pool fits the worker pool (its connections can be cut off at a deadline)."""
    session = requests.Session()
    adapter = _DeadlineAdapter(pool_connections=4, pool_maxsize=max(pool_size, 1), max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class _BearerAuth(requests.auth.AuthBase):
    """Sets the token header at send time (explicit auth also stops ~/.netrc from replacing it)."""

    def __init__(self, token):
        self._token = token

    def __call__(self, request):
        request.headers["Authorization"] = f"Bearer {self._token.reveal()}"
        return request

    def __repr__(self) -> str:
        return "_BearerAuth(********)"


def _seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds (a number or an HTTP date)."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        # "nan", "inf" or a negative number is no delay at all: treated as a missing header.
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


@dataclass(frozen=True)
class ServerLimit:
    """What one answer's ``ratelimit-*`` headers say about the token's current window."""

    limit: int  # requests per window (``ratelimit-limit``)
    window: float | None  # the window in seconds, when the limit names it (``"110;w=10"``)
    remaining: int  # requests left in the current window
    reset: float  # seconds until the window resets


_MAX_QUOTA = 10**9
_QUOTA_ITEM = re.compile(r"\s*(\d{1,10})\s*((?:;[^;,]*)*)\s*")


def _quota(value: str) -> tuple[int, float | None] | None:
    """``ratelimit-limit``: ``"500"``, ``"110;w=10"`` or a list of policies (``"10, 10;w=1"``,
    the first is the one in force); (requests, window or None), or None when unreadable."""
    items = value.split(",")
    parsed: list[tuple[int, float | None]] = []
    for item in items:
        m = _QUOTA_ITEM.fullmatch(item)
        if m is None:
            return None
        window = None
        for param in m.group(2).split(";")[1:]:
            key, _, raw = param.partition("=")
            if key.strip().lower() == "w":
                window = _seconds(raw.strip().strip('"'))
                if not window:  # unreadable, a date, or 0: no window given
                    window = None
        parsed.append((int(m.group(1)), window))
    limit, window = parsed[0]
    if window is None:  # "10, 10;w=1": the window may sit on a later item for the same quota
        window = next((w for n, w in parsed[1:] if n == limit and w is not None), None)
    if not 0 < limit <= _MAX_QUOTA:
        return None
    return limit, window


def server_limit(headers: Mapping[str, str] | None) -> ServerLimit | None:
    """The ``ratelimit-limit``/``-remaining``/``-reset`` of an answer, or None when any of them
    is missing or unreadable (then the answer says nothing about the window; never a guess)."""
    if headers is None:
        return None
    raw_limit = headers.get("ratelimit-limit")
    raw_remaining = headers.get("ratelimit-remaining")
    reset = _seconds(headers.get("ratelimit-reset"))
    if raw_limit is None or raw_remaining is None or reset is None:
        return None
    quota = _quota(raw_limit)
    remaining = raw_remaining.strip()
    if quota is None or not remaining.isascii() or not remaining.isdigit() or len(remaining) > 10:
        return None
    limit, window = quota
    return ServerLimit(limit, window, min(int(remaining), limit), reset)


# ----------------------------------------------------------------- the edge: body decoding

_CHUNK = 64 * 1024
_MAX_MESSAGE = 500
_ESCAPED_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_SURROGATE = re.compile("[\ud800-\udfff]")


class _TooLarge(Exception):
    pass


class _Malformed(Exception):
    pass


def _decode_json(raw: bytes) -> Any:
    """The JSON value of ``raw``: bad UTF-8 and unpaired surrogates replaced; too deep or invalid -> _Malformed."""
    encoding = requests.utils.guess_json_utf(raw) or "utf-8"
    text = raw.decode(encoding, errors="replace")
    try:
        value = json.loads(text)
    except RecursionError:
        raise _Malformed(" (nested too deeply to read)") from None
    except ValueError:
        raise _Malformed("") from None
    if _ESCAPED_SURROGATE.search(raw):
        value = _without_surrogates(value)
    return value


def _fix(text: str) -> str:
    return _SURROGATE.sub("\ufffd", text)


def _without_surrogates(value: Any) -> Any:
    """``value`` with every unpaired UTF-16 surrogate in its text (keys too) replaced by U+FFFD; no recursion."""
    if isinstance(value, str):
        return _fix(value)
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            for i, v in enumerate(item):
                if isinstance(v, str):
                    item[i] = _fix(v)
                elif isinstance(v, (list, dict)):
                    stack.append(v)
        elif isinstance(item, dict):
            for k in list(item):
                v = item[k]
                if isinstance(k, str) and _SURROGATE.search(k):
                    del item[k]
                    k = _fix(k)
                if isinstance(v, str):
                    v = _fix(v)
                elif isinstance(v, (list, dict)):
                    stack.append(v)
                item[k] = v
    return value


# ----------------------------------------------------------------- deadlines: cutting an exchange off

_CURRENT = (
    threading.local()
)  # the exchange this thread is running, for the connection to register with


def _exchange_of(conn: object) -> list[_Exchange | None]:
    """The one-item slot on a pooled connection naming the exchange running on it (None: idle).

    The connection objects are urllib3's; the slot rides in the instance's own attributes.
    """
    return vars(conn).setdefault("_exchange", [None])


def _shut_down(sock: Any) -> None:
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class _Exchange:
    """One HTTP exchange that the watchdog may cut off: its socket is shut down, ending any blocked read."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.conn: object | None = None
        self.cut_off = False
        self.done = False
        self.deadline: float | None = None  # time.monotonic() at which the watchdog cuts it off

    def attach(self, conn: object) -> None:
        """Watch ``conn``: anything whose ``sock`` attribute is the socket to shut down at the deadline
        (at once if the deadline has passed)."""
        with self.lock:
            self.conn = conn
            _exchange_of(conn)[0] = self
        self.catch_up(conn)

    def catch_up(self, conn: object) -> None:
        """Once ``conn`` has a socket: shut it down if the deadline passed before it had one (the
        watchdog found nothing to shut down then)."""
        with self.lock:
            late = self.cut_off and not self.done and self.conn is conn
        if late:
            _shut_down(getattr(conn, "sock", None))

    def cut(self) -> None:
        with self.lock:
            if self.done:
                return
            self.cut_off = True
            conn = self.conn
            if conn is None or _exchange_of(conn)[0] is not self:
                return
            sock = getattr(conn, "sock", None)
        _shut_down(sock)

    def finish(self) -> None:
        with self.lock:
            self.done = True
            if self.conn is not None and _exchange_of(self.conn)[0] is self:
                _exchange_of(self.conn)[0] = None


class _Watchdog:
    """One thread that cuts off exchanges past their deadline."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, _Exchange]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def watch(self, exchange: _Exchange, deadline: float) -> None:
        exchange.deadline = deadline
        with self._cond:
            heapq.heappush(self._heap, (deadline, next(self._seq), exchange))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="truto-deadlines", daemon=True
                )
                self._thread.start()
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._heap and self._heap[0][2].done:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                deadline, _, exchange = self._heap[0]
                wait = deadline - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                heapq.heappop(self._heap)
            exchange.cut()


_WATCHDOG = _Watchdog()


@contextmanager
def cut_off_after(seconds: float) -> Iterator[_Exchange]:
    """One deadline, ``seconds`` from now, for the whole block on this thread: the HTTP requests made in
    it through a :func:`make_session` session, and anything given to the exchange's ``attach``. Past
    it the socket is shut down, so a read blocked on a server that drips bytes ends at once, and the
    exchange's ``cut_off`` says so."""
    exchange = _Exchange()
    _WATCHDOG.watch(exchange, time.monotonic() + seconds)
    previous = getattr(_CURRENT, "exchange", None)
    _CURRENT.exchange = exchange
    try:
        yield exchange
    finally:
        _CURRENT.exchange = previous
        exchange.finish()


def connect_within(
    exchange: _Exchange | None,
    address: tuple[str, int],
    timeout: float | None,
    source_address: Any = None,
    socket_options: Any = None,
) -> socket.socket:
    """:func:`socket.create_connection` within ``exchange``'s deadline: each address of the host gets
    ``timeout`` at most, and never more than what is left of the deadline (none is tried past it:
    TimeoutError). A blocked connect has no socket the watchdog could shut down, so without this a host
    with several addresses that do not answer would take ``timeout`` for each."""
    deadline = exchange.deadline if exchange is not None else None
    host, port = address
    host = host.strip("[]")  # an IPv6 literal as a URL writes it
    error: OSError | None = None
    for family, kind, proto, _, where in socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM):
        left = timeout
        if deadline is not None:
            left = min(deadline - time.monotonic(), timeout if timeout is not None else math.inf)
            if left <= 0:
                raise TimeoutError(f"the deadline passed while connecting to {host}:{port}")
        sock = socket.socket(family, kind, proto)
        try:
            for option in socket_options or ():
                sock.setsockopt(*option)
            sock.settimeout(left)
            if source_address:
                sock.bind(source_address)
            sock.connect(where)
        except OSError as exc:
            sock.close()
            error = exc
            continue
        sock.settimeout(timeout)
        return sock
    raise error if error is not None else OSError(f"no address found for {host}")


def _attach_current(conn: HTTPConnection) -> None:
    exchange = getattr(_CURRENT, "exchange", None)
    if exchange is not None:
        exchange.attach(conn)


def _connected(conn: HTTPConnection) -> None:
    exchange = _exchange_of(conn)[0]
    if exchange is not None:
        exchange.catch_up(conn)


class _Watched(HTTPConnection):
    """urllib3's connection, watched by the exchange of the thread that uses it: connecting within its
    deadline (:func:`connect_within`), the socket shut down at it."""

    def request(self, *args, **kwargs):
        _attach_current(self)
        return super().request(*args, **kwargs)

    def connect(self) -> None:
        super().connect()
        _connected(self)

    def _new_conn(self) -> socket.socket:
        exchange = _exchange_of(self)[0]
        timeout = self.timeout
        if exchange is None or not (timeout is None or isinstance(timeout, (int, float))):
            return super()._new_conn()
        try:  # the errors as urllib3's own _new_conn raises them
            sock = connect_within(
                exchange,
                (self._dns_host, self.port),
                timeout,
                self.source_address,
                self.socket_options,
            )
        except UnicodeError:  # a host name IDNA cannot encode: urllib3's own error for it
            return super()._new_conn()
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc
        except TimeoutError as exc:
            raise ConnectTimeoutError(
                self, f"Connection to {self.host} timed out. (connect timeout={timeout})"
            ) from exc
        except OSError as exc:
            raise NewConnectionError(self, f"Failed to establish a new connection: {exc}") from exc
        return sock


class _Conn(_Watched):
    pass


class _TLSConn(_Watched, HTTPSConnection):
    pass


class _Pool(HTTPConnectionPool):
    ConnectionCls = _Conn


class _TLSPool(HTTPSConnectionPool):
    ConnectionCls = _TLSConn


class _DeadlineAdapter(HTTPAdapter):
    """An adapter whose connections register with the exchange of the thread using them."""

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _Pool, "https": _TLSPool}
