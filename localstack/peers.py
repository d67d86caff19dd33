"""Local peers for test_differential.py and bench, in Python (standard library), reproducing the
ones cli/tests/run_examples.rs starts in Rust:

- EchoServer: `echo_server()`: any request -> 200 {"received": <request body as JSON, or null>}.
- ModelServer: `model_client::testing::ScriptedServer` with an empty script (every chat
  completion echoes `You said: <last user message>`, JSON or SSE in 1-2-3 character pieces with a
  usage chunk; embeddings by signed FNV-1a hashing of character trigrams, L2-normalised, listed
  in reverse order), token counts as `estimate_tokens` (ceil(chars / 4)).
- MilvusLite: `milvus-lite server` on a fixed port, its data in a temporary folder.
"""

from __future__ import annotations

import http.server
import json
import math
import os
import shutil
import socket
import socketserver
import struct
import subprocess
import tempfile
import threading
import time


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class _Base:
    handler: type

    def __init__(self, port: int = 0):
        self.server = _Server(("127.0.0.1", port), self.handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def _read_body(h: http.server.BaseHTTPRequestHandler) -> bytes:
    length = int(h.headers.get("content-length") or 0)
    return h.rfile.read(length) if length else b""


def _send_json(h: http.server.BaseHTTPRequestHandler, status: int, doc) -> None:
    body = json.dumps(doc).encode()
    h.send_response(status)
    h.send_header("content-type", "application/json")
    h.send_header("content-length", str(len(body)))
    h.send_header("connection", "close")
    h.end_headers()
    h.wfile.write(body)


class _EchoHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self):
        body = _read_body(self)
        try:
            received = json.loads(body) if body else None
        except ValueError:
            received = None
        _send_json(self, 200, {"received": received})
        self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

    def log_message(self, *args):
        pass


class EchoServer(_Base):
    handler = _EchoHandler

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/callback"


# --- the scripted model server ------------------------------------------------------------------


def estimate_tokens(text: str) -> int:
    return -(-len(text) // 4)


def _f32(x: float) -> float:
    return struct.unpack("f", struct.pack("f", x))[0]


def hash_embedding(text: str, dim: int) -> list[float]:
    dim = max(dim, 1)
    v = [0.0] * dim
    chars = list(f"  {text.lower()}  ")
    for i in range(len(chars) - 2):
        h = 0xCBF29CE484222325
        for c in chars[i:i + 3]:
            for b in c.encode():
                h ^= b
                h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
        v[h % dim] += 1.0 if (h >> 63) == 0 else -1.0
    norm = _f32(math.sqrt(_f32(sum(x * x for x in v))))
    return [_f32(x / norm) for x in v] if norm > 0 else v


def _pieces(text: str) -> list[str]:
    out, at, size = [], 0, 1
    while at < len(text):
        out.append(text[at:at + size])
        at += size
        size = size % 3 + 1
    return out


def _message_text(m: dict) -> str:
    c = m.get("content")
    if isinstance(c, str):
        return c
    if isinstance(c, list):
        return "".join(p.get("text", "") for p in c if isinstance(p, dict))
    return ""


class _ModelHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "scripted"

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = _read_body(self)
        try:
            request = json.loads(body)
        except ValueError:
            request = None
        owner: ModelServer = self.server.owner  # type: ignore[attr-defined]
        with owner.lock:
            owner.served += 1
            served = owner.served
            owner.requests.append({"path": self.path, "body": request})
        path = self.path.split("?")[0]
        if path.endswith("/chat/completions"):
            return self.chat(request, served)
        if path.endswith("/embeddings"):
            return self.embeddings(request, owner.dim)
        _send_json(self, 404, {"error": {"message": f"no route {self.path}", "type": "invalid_request_error"}})
        self.close_connection = True

    def chat(self, request, served):
        if not isinstance(request, dict):
            _send_json(self, 400, {"error": {"message": "the body is not JSON", "type": "invalid_request_error",
                                             "param": None, "code": None}})
            self.close_connection = True
            return
        messages = request.get("messages") or []
        model = request.get("model") or "scripted"
        prompt_tokens = sum(estimate_tokens(_message_text(m)) for m in messages)
        last = next((m for m in reversed(messages) if m.get("role") == "user"), None)
        text = f"You said: {_message_text(last) if last else ''}"
        completion_tokens = estimate_tokens(text)
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                 "total_tokens": prompt_tokens + completion_tokens}
        cid = f"chatcmpl-scripted-{served}"
        if not request.get("stream"):
            doc = {"id": cid, "object": "chat.completion", "created": 0, "model": model,
                   "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": None,
                                "finish_reason": "stop"}], "usage": usage}
            _send_json(self, 200, doc)
            self.close_connection = True
            return
        include_usage = bool((request.get("stream_options") or {}).get("include_usage"))

        def chunk(delta, finish):
            c = {"id": cid, "object": "chat.completion.chunk", "created": 0, "model": model,
                 "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
            if include_usage:
                c["usage"] = None
            return c

        frames = [": keep-alive\n\n", f"data: {json.dumps(chunk({'role': 'assistant', 'content': ''}, None))}\n\n"]
        frames += [f"data: {json.dumps(chunk({'content': p}, None))}\n\n" for p in _pieces(text)]
        frames.append(f"data: {json.dumps(chunk({}, 'stop'))}\n\n")
        if include_usage:
            frames.append("data: " + json.dumps({"id": cid, "object": "chat.completion.chunk", "created": 0,
                                                 "model": model, "choices": [], "usage": usage}) + "\n\n")
        frames.append("data: [DONE]\n\n")
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("connection", "close")
        self.end_headers()
        for f in frames:
            self.wfile.write(f.encode())
            self.wfile.flush()
        self.close_connection = True

    def embeddings(self, request, default_dim):
        inputs = request.get("input") if isinstance(request, dict) else None
        if isinstance(inputs, str):
            inputs = [inputs]
        if not (isinstance(inputs, list) and all(isinstance(i, str) for i in inputs)):
            _send_json(self, 400, {"error": {"message": "`input` must be a string or an array of strings",
                                             "type": "invalid_request_error", "param": None, "code": None}})
            self.close_connection = True
            return
        dim = request.get("dimensions") or default_dim
        tokens = sum(estimate_tokens(t) for t in inputs)
        data = [{"object": "embedding", "index": i, "embedding": hash_embedding(t, dim)}
                for i, t in reversed(list(enumerate(inputs)))]
        _send_json(self, 200, {"object": "list", "data": data, "model": request.get("model") or "scripted-embedding",
                               "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})
        self.close_connection = True


class ModelServer(_Base):
    handler = _ModelHandler

    def __init__(self, port: int = 0, dim: int = 256):
        self.lock = threading.Lock()
        self.served = 0
        self.requests: list = []
        self.dim = dim
        super().__init__(port)
        self.server.owner = self  # type: ignore[attr-defined]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


# --- milvus-lite -------------------------------------------------------------------------------


def port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


class MilvusLite:
    """`milvus-lite server` on 127.0.0.1:`port` (None from start() when it is not installed)."""

    def __init__(self, port: int):
        self.port = port
        self.dir = tempfile.mkdtemp(prefix=f"weft-localstack-milvus-{port}-")
        self.log_path = os.path.join(self.dir, "server.log")
        log = open(self.log_path, "wb")
        self.child = subprocess.Popen(
            ["milvus-lite", "server", "--data-dir", os.path.join(self.dir, "data"), "--host", "127.0.0.1",
             "--port", str(port)], stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        deadline = time.monotonic() + 120
        while True:
            if self.child.poll() is not None:
                raise RuntimeError(f"milvus-lite exited: {open(self.log_path).read()[-2000:]}")
            text = open(self.log_path, errors="replace").read()
            if "listening" in text and not port_free(port):
                return
            if time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"milvus-lite not listening after 120 s: {text[-2000:]}")
            time.sleep(0.1)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @staticmethod
    def start(port: int) -> "MilvusLite | None":
        if shutil.which("milvus-lite") is None:
            return None
        return MilvusLite(port)

    def close(self):
        if self.child.poll() is None:
            self.child.terminate()
            try:
                self.child.wait(10)
            except subprocess.TimeoutExpired:
                self.child.kill()
                self.child.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


# --- Slack, a page source, SMTP (daily-sql-report, knowledge-ingest) ------------------------------


class _RecordingHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _answer(self):
        owner = self.server.owner  # type: ignore[attr-defined]
        body = _read_body(self)
        status, doc = owner.answer(self.command, self.path, self.headers, body)
        _send_json(self, status, doc)
        self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer


class _Recording(_Base):
    handler = _RecordingHandler

    def __init__(self):
        self.lock = threading.Lock()
        self.records: list = []
        super().__init__(0)
        self.server.owner = self  # type: ignore[attr-defined]

    def take(self) -> list:
        with self.lock:
            out, self.records = self.records, []
        return out


class SlackServer(_Recording):
    """run_examples.rs `SlackServer`: POST /chat.postMessage answers ok; every request recorded as
    {method, path, authorization, body}."""

    def answer(self, method, path, headers, body):
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = body.decode("utf-8", "replace")
        with self.lock:
            self.records.append({"method": method, "path": path, "authorization": headers.get("authorization"),
                                 "body": parsed})
        if (method, path) == ("POST", "/chat.postMessage"):
            return 200, {"ok": True, "channel": "C123", "ts": "1700000000.000100"}
        return 200, {"ok": False, "error": "unknown_method"}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class RoutePeer(_Recording):
    """ai_common `Peer`: a path of its table answers that JSON, anything else 404; records
    "METHOD URI" of every request."""

    def __init__(self, routes: dict):
        self.routes = routes
        super().__init__()

    def answer(self, method, path, headers, body):
        with self.lock:
            self.records.append(f"{method} {path}")
        route = self.routes.get(path.split("?")[0])
        return (200, route) if route is not None else (404, {"error": "not found"})

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class SmtpServer:
    """functions/email/tests/smtp_server.py in `store` mode (needs aiosmtpd); it exits when its
    stdin closes."""

    def __init__(self, script: str):
        self.dir = tempfile.mkdtemp(prefix="weft-localstack-smtp-")
        self.child = subprocess.Popen(["python3", script, "store", self.dir], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, text=True)
        line = self.child.stdout.readline()
        if not line.startswith("PORT "):
            self.close()
            raise RuntimeError("the SMTP server did not start (python3 with aiosmtpd is needed)")
        self.port = int(line.split()[1])

    def take(self) -> list:
        """run_examples.rs `take_mail`: the stored messages, oldest first, removed."""
        import email
        import email.policy
        out = []
        names = sorted(n for n in os.listdir(self.dir) if n.startswith("msg-"))
        for name in names:
            path = os.path.join(self.dir, name)
            with open(path) as f:
                stored = json.load(f)
            os.remove(path)
            message = email.message_from_string(stored["data"].replace("\r\n", "\n"), policy=email.policy.compat32)

            def header(n):
                v = message.get(n)
                return None if v is None else " ".join(str(v).replace("\n\t", " ").replace("\n ", " ").split("\n"))
            payload = message.get_payload(decode=True) or b""
            out.append({"mail_from": stored["mail_from"], "rcpt_tos": stored["rcpt_tos"], "from": header("from"),
                        "to": header("to"), "subject": header("subject"), "content_type": header("content-type"),
                        "body": payload.decode("utf-8", "replace").replace("\r\n", "\n").rstrip("\n")})
        return out

    def close(self):
        try:
            self.child.stdin.close()
            self.child.wait(10)
        except Exception:
            self.child.kill()
        shutil.rmtree(self.dir, ignore_errors=True)
