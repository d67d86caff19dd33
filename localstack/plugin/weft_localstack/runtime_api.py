"""The Lambda Runtime API (2018-06-01) for one execution environment, plus its log capture.

Nothing here imports LocalStack, so it can be exercised on its own. One :class:`RuntimeApi` per
execution environment listens on an ephemeral port of 127.0.0.1 and serves exactly one runtime
process at a time (LocalStack hands an environment one invocation at a time):

- ``GET  /2018-06-01/runtime/invocation/next``: long-polls for the next event; the first call of a
  process marks its initialisation as done;
- ``POST /2018-06-01/runtime/invocation/{id}/response`` and ``.../{id}/error``;
- ``POST /2018-06-01/runtime/init/error``.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import selectors
import socket
import socketserver
import sys
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer

LOG = logging.getLogger(__name__)

PREFIX = "/2018-06-01/runtime"
# AWS's limit for a synchronous response, and the message it gives when a function exceeds it.
MAX_RESPONSE_BYTES = 6_291_556
# Error documents are small; anything bigger is cut (not a reason to fail the runtime).
MAX_ERROR_BYTES = 256 * 1024
HEADER_REQUEST_ID = "Lambda-Runtime-Aws-Request-Id"
HEADER_DEADLINE = "Lambda-Runtime-Deadline-Ms"
HEADER_ARN = "Lambda-Runtime-Invoked-Function-Arn"
HEADER_TRACE = "Lambda-Runtime-Trace-Id"
HEADER_CLIENT_CONTEXT = "Lambda-Runtime-Client-Context"
HEADER_ERROR_TYPE = "Lambda-Runtime-Function-Error-Type"


@dataclass(frozen=True)
class Outcome:
    """How an invocation ended: the payload LocalStack returns, and whether it is an error."""

    payload: bytes
    is_error: bool

    @staticmethod
    def error(error_type: str, message: str) -> Outcome:
        body = json.dumps({"errorType": error_type, "errorMessage": message})
        return Outcome(body.encode(), True)

    def error_type(self) -> str | None:
        if not self.is_error:
            return None
        try:
            doc = json.loads(self.payload)
        except ValueError:
            return None
        return doc.get("errorType") if isinstance(doc, dict) else None


class Invocation:
    """One event on its way through the Runtime API. Settled once: the first outcome wins."""

    def __init__(
        self,
        request_id: str,
        payload: bytes,
        function_arn: str,
        trace_id: str,
        deadline: float,
        client_context: str | None = None,
    ) -> None:
        self.request_id = request_id
        self.payload = payload
        self.function_arn = function_arn
        self.trace_id = trace_id
        self.deadline = deadline  # seconds since the epoch
        self.client_context = client_context
        self.outcome: Outcome | None = None
        self._lock = threading.Lock()
        self._done = threading.Event()

    def settle(self, outcome: Outcome) -> bool:
        with self._lock:
            if self.outcome is not None:
                return False
            self.outcome = outcome
        self._done.set()
        return True

    @property
    def settled(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None) -> bool:
        return self._done.wait(timeout)


class RuntimeApi:
    """The Runtime API server of one execution environment (one port, many processes in turn).

    ``on_change`` is called (without locks held) whenever initialisation finishes or fails, so the
    executor can wake up whoever waits for it.
    """

    def __init__(self, on_change=None) -> None:
        self._cond = threading.Condition()
        self._on_change = on_change or (lambda: None)
        self._generation = 0
        self._queued: Invocation | None = None
        self._current: Invocation | None = None
        self._ready = False
        self._init_error: bytes | None = None
        self._closed = False
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.api = self
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.5},
            name=f"weft-runtime-api-{self.port}",
            daemon=True,
        )
        self._thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    # --- executor side -------------------------------------------------------------------------

    def new_process(self) -> None:
        """Forget everything about the previous process: a new one is about to start."""
        with self._cond:
            self._generation += 1
            self._queued = None
            self._current = None
            self._ready = False
            self._init_error = None
            self._cond.notify_all()

    @property
    def ready(self) -> bool:
        with self._cond:
            return self._ready

    @property
    def init_error(self) -> bytes | None:
        with self._cond:
            return self._init_error

    def enqueue(self, invocation: Invocation) -> None:
        with self._cond:
            self._queued = invocation
            self._cond.notify_all()

    def settle_pending(self, outcome_for) -> None:
        """Settles the queued and the in-flight invocation with ``outcome_for(invocation)``."""
        with self._cond:
            pending = [i for i in (self._queued, self._current) if i is not None]
            self._queued = None
            self._current = None
        for invocation in pending:
            invocation.settle(outcome_for(invocation))

    def close(self) -> None:
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._generation += 1
            self._cond.notify_all()
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()

    # --- runtime side (called from the HTTP handler threads) -------------------------------------

    def _next(self) -> Invocation | None:
        with self._cond:
            generation = self._generation
            first = not self._ready
            self._ready = True
        if first:
            self._on_change()
        with self._cond:
            while self._queued is None and self._generation == generation and not self._closed:
                self._cond.wait()
            if self._generation != generation or self._closed:
                return None
            invocation, self._queued = self._queued, None
            self._current = invocation
            return invocation

    def _finish(self, request_id: str) -> Invocation | None:
        """The in-flight invocation with that id, taken off the API (None: no such invocation)."""
        with self._cond:
            if self._current is None or self._current.request_id != request_id:
                return None
            invocation, self._current = self._current, None
            return invocation

    def _in_flight(self, request_id: str) -> bool:
        with self._cond:
            return self._current is not None and self._current.request_id == request_id

    def _post_init_error(self, payload: bytes) -> bool:
        with self._cond:
            if self._ready or self._init_error is not None:
                return False
            self._init_error = payload
        self._on_change()
        return True


def error_document(body: bytes, header_type: str | None) -> bytes:
    """The error payload LocalStack returns for what a runtime posted to ``/error``.

    A JSON object is kept as the runtime wrote it (``errorType`` taken from the
    ``Lambda-Runtime-Function-Error-Type`` header when the body has none); anything else becomes
    ``{"errorType": header or "Unhandled", "errorMessage": body}``.
    """
    try:
        doc = json.loads(body) if body else None
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        if not doc.get("errorType"):
            doc["errorType"] = header_type or "Unhandled"
        return json.dumps(doc).encode()
    return json.dumps(
        {"errorType": header_type or "Unhandled", "errorMessage": body.decode("utf-8", "replace")}
    ).encode()


class _Server(socketserver.ThreadingMixIn, HTTPServer):
    daemon_threads = True
    allow_reuse_address = False
    api: RuntimeApi

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host name (getfqdn), which can stall; not needed.
        socketserver.TCPServer.server_bind(self)
        self.server_name = "127.0.0.1"
        self.server_port = self.server_address[1]
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def handle_error(self, request, client_address) -> None:
        # A runtime that died (or was killed) mid-request is normal here, not worth a traceback.
        error = sys.exc_info()[1]
        if isinstance(error, OSError):
            LOG.debug("runtime api %s: connection lost: %s", self.server_port, error)
            return
        LOG.exception("runtime api %s: error while handling a request", self.server_port)

    def track(self, sock: socket.socket, add: bool) -> None:
        with self._connections_lock:
            if add:
                self._connections.add(sock)
            else:
                self._connections.discard(sock)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for sock in connections:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _BodyTooLarge(Exception):
    pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "weft-runtime-api"
    sys_version = ""
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - BaseHTTPRequestHandler's name
        LOG.debug("runtime api %s: " + format, self.server.server_port, *args)

    # --- helpers ---------------------------------------------------------------------------------

    def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if body:
            self.wfile.write(body)

    def _reply_error(self, status: int, error_type: str, message: str) -> None:
        self._reply(status, json.dumps({"errorType": error_type, "errorMessage": message}).encode())

    def _read_body(self, limit: int) -> bytes:
        """The request body (Content-Length or chunked); :class:`_BodyTooLarge` past ``limit``."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks, size = [], 0
            while True:
                line = self.rfile.readline(1024)
                if not line:
                    raise ConnectionError("connection closed inside a chunked body")
                length = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if length == 0:
                    # Trailers end with an empty line.
                    while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                size += length
                if size > limit:
                    self.close_connection = True
                    raise _BodyTooLarge()
                chunks.append(self.rfile.read(length))
                self.rfile.readline(8)  # the CRLF after the chunk
        length = int(self.headers.get("Content-Length") or 0)
        if length > limit:
            self.close_connection = True
            raise _BodyTooLarge()
        return self.rfile.read(length) if length > 0 else b""

    # --- routes ----------------------------------------------------------------------------------

    def do_GET(self) -> None:  # noqa: N802 - BaseHTTPRequestHandler's name
        if self.path.split("?", 1)[0] != f"{PREFIX}/invocation/next":
            self._reply_error(404, "NotFound", f"no route for GET {self.path}")
            return
        invocation = self.server.api._next()
        if invocation is None:
            # The environment is shutting down or the process was replaced.
            self.close_connection = True
            self._reply_error(500, "Runtime.Shutdown", "the execution environment is shutting down")
            return
        headers = {
            HEADER_REQUEST_ID: invocation.request_id,
            HEADER_DEADLINE: str(int(invocation.deadline * 1000)),
            HEADER_ARN: invocation.function_arn,
            HEADER_TRACE: invocation.trace_id,
        }
        if invocation.client_context:
            headers[HEADER_CLIENT_CONTEXT] = invocation.client_context
        self._reply(200, invocation.payload, headers)

    def do_POST(self) -> None:  # noqa: N802 - BaseHTTPRequestHandler's name
        api = self.server.api
        path = self.path.split("?", 1)[0]
        if path == f"{PREFIX}/init/error":
            try:
                body = self._read_body(MAX_ERROR_BYTES)
            except _BodyTooLarge:
                body = b'{"errorType":"Runtime.InitError","errorMessage":"init error document too large"}'
            if api._post_init_error(error_document(body, self.headers.get(HEADER_ERROR_TYPE))):
                self._reply(202, b'{"status":"OK"}')
            else:
                self._reply_error(403, "InvalidStateTransition", "init/error after initialisation")
            return
        parts = path[len(PREFIX) :].split("/") if path.startswith(PREFIX + "/") else []
        # ["", "invocation", "<id>", "response" | "error"]
        if len(parts) != 4 or parts[1] != "invocation" or parts[3] not in ("response", "error"):
            self._reply_error(404, "NotFound", f"no route for POST {self.path}")
            return
        request_id, kind = parts[2], parts[3]
        if not api._in_flight(request_id):
            # Drain what the runtime sent so the connection stays usable.
            try:
                self._read_body(MAX_RESPONSE_BYTES)
            except _BodyTooLarge:
                pass
            self._reply_error(400, "InvalidRequestID", f"no invocation {request_id} is in flight")
            return
        if kind == "response":
            try:
                body = self._read_body(MAX_RESPONSE_BYTES)
                outcome = Outcome(body, False)
                reply = (202, b'{"status":"OK"}')
            except _BodyTooLarge:
                outcome = Outcome.error(
                    "Function.ResponseSizeTooLarge",
                    f"Response payload size exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes).",
                )
                reply = (413, b'{"errorType":"RequestEntityTooLarge","errorMessage":"response too large"}')
        else:
            try:
                body = self._read_body(MAX_ERROR_BYTES)
            except _BodyTooLarge:
                body = b'{"errorType":"Runtime.Unknown","errorMessage":"error document too large"}'
            outcome = Outcome(error_document(body, self.headers.get(HEADER_ERROR_TYPE)), True)
            reply = (202, b'{"status":"OK"}')
        invocation = api._finish(request_id)
        if invocation is not None:
            invocation.settle(outcome)
        self._reply(*reply)


class LogCollector:
    """Lines of one process's stdout and stderr, cut into per-invocation pieces with :meth:`take`.

    Each piece is bounded (``max_piece_bytes``; past it lines are counted, not kept), and so is
    the whole history kept for ``get_logs`` (the newest ``max_history_bytes``).
    """

    def __init__(self, max_piece_bytes: int = 1 << 20, max_history_bytes: int = 1 << 20) -> None:
        self._lock = threading.Lock()
        self._piece: list[str] = []
        self._piece_bytes = 0
        self._dropped = 0
        self._max_piece = max_piece_bytes
        self._history: collections.deque[str] = collections.deque()
        self._history_bytes = 0
        self._max_history = max_history_bytes

    def add(self, line: str) -> None:
        size = len(line) + 1
        with self._lock:
            if self._piece_bytes + size <= self._max_piece:
                self._piece.append(line)
                self._piece_bytes += size
            else:
                self._dropped += 1
            self._history.append(line)
            self._history_bytes += size
            while self._history_bytes > self._max_history and len(self._history) > 1:
                self._history_bytes -= len(self._history.popleft()) + 1

    def take(self) -> str:
        with self._lock:
            lines, dropped = self._piece, self._dropped
            self._piece, self._piece_bytes, self._dropped = [], 0, 0
        if dropped:
            lines.append(f"[weft-host: {dropped} more lines of output were not kept]")
        return "".join(line + "\n" for line in lines)

    def history(self) -> str:
        with self._lock:
            return "".join(line + "\n" for line in self._history)


class OutputPump(threading.Thread):
    """Reads a process's stdout and stderr into a :class:`LogCollector`, line by line.

    :meth:`drain` returns once everything the process had written *before the call* is in the
    collector: a runtime writes its lines before it posts its response, so draining after the
    response attributes those lines to that invocation, not to the next one.
    """

    MAX_LINE = 256 * 1024

    def __init__(self, name: str, stdout, stderr, collector: LogCollector) -> None:
        super().__init__(name=name, daemon=True)
        self._collector = collector
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._files = [stdout, stderr]
        self._partial: dict[str, bytes] = {"stdout": b"", "stderr": b""}
        self._open = 0
        for stream, label in ((stdout, "stdout"), (stderr, "stderr")):
            self._selector.register(stream.fileno(), selectors.EVENT_READ, label)
            self._open += 1
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._lock = threading.Lock()
        self._waiters: list[threading.Event] = []
        self._finished = threading.Event()

    def run(self) -> None:
        try:
            while self._open:
                for key, _ in self._selector.select():
                    if key.data == "wake":
                        self._handle_wake()
                    else:
                        self._read(key)
        except Exception:  # never let a log problem take anything else down
            LOG.exception("output pump %s failed", self.name)
        finally:
            self._flush_partials()
            with self._lock:
                self._finished.set()
                waiters, self._waiters = self._waiters, []
            for waiter in waiters:
                waiter.set()
            self._selector.close()
            for fd in (self._wake_r, self._wake_w):
                try:
                    os.close(fd)
                except OSError:
                    pass
            for stream in self._files:
                try:
                    stream.close()
                except OSError:
                    pass

    def drain(self, timeout: float = 1.0) -> None:
        waiter = threading.Event()
        with self._lock:
            if self._finished.is_set():
                return
            self._waiters.append(waiter)
            try:
                os.write(self._wake_w, b"x")
            except BlockingIOError:
                pass  # the pipe is full of wake-ups already; one will do
        waiter.wait(timeout)

    def wait_finished(self, timeout: float) -> bool:
        return self._finished.wait(timeout)

    def _handle_wake(self) -> None:
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass
        with self._lock:
            waiters, self._waiters = self._waiters, []
        # Everything written before the waiters asked is in the pipes now: read until empty
        # (bounded, so a process writing without pause cannot hold the drain forever).
        for _ in range(256):
            ready = [key for key, _ in self._selector.select(0) if key.data != "wake"]
            if not ready:
                break
            for key in ready:
                self._read(key)
        self._flush_partials()
        for waiter in waiters:
            waiter.set()

    def _read(self, key: selectors.SelectorKey) -> None:
        label = key.data
        try:
            data = os.read(key.fd, 65536)
        except OSError:
            data = b""
        if not data:
            self._selector.unregister(key.fd)
            self._open -= 1
            return
        buffer = self._partial[label] + data
        *lines, rest = buffer.split(b"\n")
        for line in lines:
            self._collector.add(line.rstrip(b"\r").decode("utf-8", "replace"))
        while len(rest) > self.MAX_LINE:
            self._collector.add(rest[: self.MAX_LINE].decode("utf-8", "replace"))
            rest = rest[self.MAX_LINE :]
        self._partial[label] = rest

    def _flush_partials(self) -> None:
        for label, rest in self._partial.items():
            if rest:
                self._collector.add(rest.decode("utf-8", "replace"))
                self._partial[label] = b""

