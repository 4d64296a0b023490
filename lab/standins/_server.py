"""Common machinery of the stand-ins: an HTTP server on loopback, request log, faults, auth, control.

A stand-in subclasses :class:`StandIn` and implements :meth:`StandIn.dispatch`. The base gives it:

* a threaded HTTP server on ``127.0.0.1`` (``start()`` / ``stop()``, or ``serve_forever()``);
* a request log (:attr:`StandIn.log`): one :class:`Recorded` per request, with method, path, query,
  parsed body and response status, so tests and benchmarks assert exact call sequences and counts;
* fault injection (:meth:`StandIn.inject`): latency, a canned answer (429, 5xx, conflict ...), or
  a lost answer (the connection closed before the request is applied, or after it was applied
  and before the answer is sent) for the next N requests that match a method and a path pattern;
* a bearer-token check (:meth:`StandIn.auth_failure` builds the vendor's 401/403 answer);
* a control API under ``/_standin/`` (not a vendor path) for out-of-process users such as
  ``make lab``: ``GET requests``, ``POST reset``, ``POST faults``, ``POST latency``.

Everything is in memory; :meth:`StandIn.reset` returns a stand-in to its initial state.
"""
from __future__ import annotations

import argparse
import json
import re
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from collections.abc import Iterator
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

CONTROL_PREFIX = "/_standin/"


@dataclass
class Request:
    """An incoming request as the stand-in sees it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    raw_body: bytes
    body: Any = None  # parsed JSON (or None)

    def q(self, name: str, default: str | None = None) -> str | None:
        """First value of a query parameter."""
        values = self.query.get(name)
        return values[0] if values else default

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()


@dataclass
class Response:
    status: int
    body: Any = None  # JSON-serialisable, or bytes/str for raw bodies
    headers: dict[str, str] = field(default_factory=dict)
    stream: Callable[[], Iterator[bytes]] | None = None  # a streamed body (chunked), read without the lock

    def encoded(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


@dataclass
class Recorded:
    """One line of the request log."""

    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    status: int  # 0: the connection was dropped and no answer sent
    fault: bool = False  # answered by an injected fault

    def as_dict(self) -> dict[str, Any]:
        return {"method": self.method, "path": self.path, "query": self.query,
                "body": self.body, "status": self.status, "fault": self.fault}


@dataclass
class Fault:
    """A canned answer (or a delay) for the next ``times`` requests matching method and path."""

    method: str | None
    path: re.Pattern[str]
    times: int
    response: Response | None = None
    latency: float = 0.0
    drop: str | None = None  # "before" / "after": close the connection before / after applying

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and bool(self.path.search(path))


DROPS = ("before", "after")


class DroppedConnection(Exception):
    """Raised by :meth:`StandIn.handle` to close the client's connection without an answer."""


class StandIn:
    """Base of every stand-in. Subclasses set ``name`` and implement ``dispatch`` and ``_initial_state``."""

    name = "standin"
    tls: ssl.SSLContext | None = None  # set before start(): serve HTTPS (kubectl sends a token only over TLS)

    def __init__(self, token: str = "test-token", port: int = 0) -> None:
        self.token = token
        self._port = port
        self.bind = "127.0.0.1"  # a test's own bridge address when its netns-nodes must reach it
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.latency = 0.0
        self.faults: list[Fault] = []
        self.log: list[Recorded] = []
        # Contract problems in the stand-in's own answers (tests assert this stays empty).
        self.contract_violations: list[str] = []
        self._initial_state()

    # -- to be provided by subclasses ------------------------------------------------------
    def _initial_state(self) -> None:
        """(Re)create the in-memory state."""

    def dispatch(self, req: Request) -> Response:  # pragma: no cover - abstract
        raise NotImplementedError

    def auth_failure(self, req: Request) -> Response | None:
        """The vendor's answer when the credentials are missing or wrong; None when they are fine."""
        raise NotImplementedError

    def fault_response(self, kind: str) -> Response:
        """The vendor's own answer for a fault kind (``rate_limit``, ``server_error``, ``conflict``, ``locked``)."""
        raise NotImplementedError

    # -- state -------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget all state, faults, latency and the request log."""
        with self._lock:
            self.faults.clear()
            self.log.clear()
            self.contract_violations.clear()
            self.latency = 0.0
            self._initial_state()

    def inject(self, kind: str | None = None, *, method: str | None = None, path: str = "",
               times: int = 1, response: Response | None = None, latency: float = 0.0,
               drop: str | None = None) -> Fault:
        """Answer the next ``times`` requests matching ``method`` and the ``path`` regex with a fault.

        ``kind`` names a vendor fault (see :meth:`fault_response`); ``response`` gives one verbatim;
        ``drop`` loses the answer: ``"before"`` closes the connection without applying the request,
        ``"after"`` applies it and then closes the connection without answering (what a client sees
        when a proxy or the network fails mid-request). With none of them, the matching requests
        are only delayed by ``latency`` seconds.
        """
        if drop is not None and drop not in DROPS:
            raise ValueError(f"drop must be one of {DROPS}, not {drop!r}")
        if kind is not None and response is None:
            response = self.fault_response(kind)
        fault = Fault(method.upper() if method else None, re.compile(path), times, response, latency, drop)
        with self._lock:
            self.faults.append(fault)
        return fault

    def calls(self, method: str | None = None, path: str | None = None) -> list[Recorded]:
        """The request log, optionally filtered by method and a path regex."""
        with self._lock:
            return [r for r in self.log
                    if (method is None or r.method == method)
                    and (path is None or re.search(path, r.path))]

    def sequence(self) -> list[str]:
        """The request log as ``"METHOD /path"`` strings (query left out)."""
        with self._lock:
            return [f"{r.method} {r.path}" for r in self.log]

    # -- serving -----------------------------------------------------------------------------
    @property
    def port(self) -> int:
        assert self._server is not None, "stand-in not started"
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.bind}:{self.port}"

    def start(self) -> "StandIn":
        self._server = _Server((self.bind, self._port), _handler_for(self))
        if self.tls is not None:
            self._server.socket = self.tls.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=self.name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "StandIn":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the request path --------------------------------------------------------------------
    def handle(self, req: Request) -> Response:
        if req.path.startswith(CONTROL_PREFIX):
            return self._control(req)
        with self._lock:
            delay = self.latency
            fault = None
            for f in self.faults:
                if f.times > 0 and f.matches(req.method, req.path):
                    f.times -= 1
                    fault = f
                    break
            self.faults = [f for f in self.faults if f.times > 0]
        if fault is not None:
            delay += fault.latency
        if delay:
            time.sleep(delay)
        if fault is not None and fault.drop == "before":
            self._record(req, 0, fault=True)
            raise DroppedConnection("dropped before applying")
        if fault is not None and fault.response is not None:
            resp = fault.response
            self._record(req, resp.status, fault=True)
            return resp
        denied = self.auth_failure(req)
        if denied is not None:
            self._record(req, denied.status)
            return denied
        with self._lock:
            resp = self.dispatch(req)
        if fault is not None and fault.drop == "after":
            self._record(req, 0, fault=True)  # applied; the client never hears the status
            raise DroppedConnection("dropped after applying")
        self._record(req, resp.status)
        return resp

    def _record(self, req: Request, status: int, fault: bool = False) -> None:
        with self._lock:
            self.log.append(Recorded(req.method, req.path, req.query, req.body, status, fault))

    def _control(self, req: Request) -> Response:
        what = req.path[len(CONTROL_PREFIX):]
        if req.method == "GET" and what == "requests":
            with self._lock:
                return Response(200, [r.as_dict() for r in self.log])
        if req.method == "GET" and what == "violations":
            return Response(200, list(self.contract_violations))
        if req.method == "POST" and what == "reset":
            self.reset()
            return Response(204)
        if req.method == "POST" and what == "latency":
            self.latency = float((req.body or {}).get("seconds", 0))
            return Response(204)
        if req.method == "POST" and what == "faults":
            spec = req.body or {}
            try:
                self.inject(spec.get("kind"), method=spec.get("method"), path=spec.get("path", ""),
                            times=int(spec.get("times", 1)), latency=float(spec.get("latency", 0)),
                            drop=spec.get("drop"))
            except ValueError as exc:
                return Response(400, {"error": str(exc)})
            return Response(204)
        return self.control(req, what)

    def control(self, req: Request, what: str) -> Response:
        """Stand-in specific control endpoints (for example registering lab addresses)."""
        return Response(404, {"error": f"unknown control endpoint {what}"})

    # -- command line ------------------------------------------------------------------------
    @classmethod
    def main(cls, argv: list[str] | None = None) -> None:
        parser = argparse.ArgumentParser(prog=f"python -m lab.standins.{cls.name}",
                                         description=(cls.__doc__ or "").strip().splitlines()[0])
        parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free port)")
        parser.add_argument("--token", default="test-token", help="the one credential accepted")
        args = parser.parse_args(argv)
        standin = cls(token=args.token, port=args.port)
        standin.start()
        print(f"{cls.name} stand-in listening on {standin.url}", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
        finally:
            standin.stop()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def _handler_for(standin: StandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = standin.name
        # Headers and body are written separately: without TCP_NODELAY, Nagle + delayed ACK add
        # ~40 ms to every answer on loopback.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            return  # the request log is the record; keep test output quiet

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body: Any = None
            if raw:
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
            req = Request(self.command, parts.path, parse_qs(parts.query, keep_blank_values=True),
                          {k.lower(): v for k, v in self.headers.items()}, raw, body)
            try:
                resp = standin.handle(req)
            except DroppedConnection:
                self.close_connection = True  # no status line, no body: the answer is lost
                return
            except Exception as exc:  # a stand-in bug must be visible, not a hung client
                resp = Response(500, {"standin_error": repr(exc)})
                standin.contract_violations.append(f"{req.method} {req.path}: crashed: {exc!r}")
            if resp.stream is not None:
                self._stream(resp)
                return
            payload = resp.encoded()
            self.send_response(resp.status)
            headers = {"Content-Type": "application/json"} if resp.body is not None else {}
            headers.update(resp.headers)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        def _stream(self, resp: Response) -> None:
            """A chunked answer written as the stand-in produces it (a watch)."""
            self.send_response(resp.status)
            for k, v in {"Content-Type": "application/json", **resp.headers}.items():
                self.send_header(k, v)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            assert resp.stream is not None
            try:
                for chunk in resp.stream():
                    if chunk:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
            except OSError:
                self.close_connection = True  # the client went away

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

    return Handler


Handler = Callable[[Request], Response]
