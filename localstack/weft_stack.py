"""What test_e2e.py, test_differential.py and bench share: the deployed stack (stack.json, written
by localstack/deploy), tokens, a small HTTP client for Weft's API, an SSE parser, psql, and polling.

Standard library plus boto3 only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

DIR = os.environ.get("WEFT_LOCALSTACK_DIR", "/var/tmp/weft-ci/tools/localstack")


def log(message: str) -> None:
    print(f"  [{message}]", file=sys.stderr, flush=True)


def load_stack(path: str | None = None) -> dict:
    path = path or os.environ.get("WEFT_STACK_JSON") or os.path.join(DIR, "stack.json")
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise SystemExit(f"{path} not found: run localstack/deploy first") from None


def boto(service: str, stack: dict):
    import boto3
    from botocore.config import Config

    return boto3.client(
        service,
        endpoint_url=stack["endpoint_url"],
        region_name=stack["region"],
        aws_access_key_id=stack.get("access_key_id", "test"),  # the stack's LocalStack account
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
        config=Config(retries={"total_max_attempts": 2, "mode": "standard"}, read_timeout=120, connect_timeout=5),
    )


# --- tokens ------------------------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256(claims: dict, secret: str) -> str:
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = _b64url(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}".encode()
    signature = hmac.new(secret.encode(), signing_input, hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64url(signature)}"


def token(stack: dict, tenant: str, role: str, ttl: int = 3600) -> str:
    """The claims of functions/api/tests/common/mod.rs `claims()`, with the stack's issuer and audience."""
    now = int(time.time())
    jwt = stack["jwt"]
    claims = {"sub": f"user-of-{tenant}", "tenant": tenant, "role": role, "iss": jwt["issuer"],
              "aud": jwt["audience"], "exp": now + ttl, "nbf": now - 10}
    return hs256(claims, jwt["secret"])


# --- HTTP --------------------------------------------------------------------------------------


@dataclass
class Response:
    status: int
    headers: dict
    body: bytes
    seconds: float

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            raise AssertionError(f"HTTP {self.status}: not JSON: {self.body[:500]!r}") from None

    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


@dataclass
class Api:
    base: str
    bearer: str | None = None
    timeout: float = 60

    def request(self, method: str, path: str, body=None, headers: dict | None = None, bearer: str | None = None) -> Response:
        data = None
        all_headers = {"accept": "application/json"}
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            all_headers["content-type"] = "application/json"
        tok = bearer or self.bearer
        if tok:
            all_headers["authorization"] = f"Bearer {tok}"
        all_headers.update(headers or {})
        request = urllib.request.Request(self.base.rstrip("/") + path, data=data, method=method, headers=all_headers)
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as r:
                payload = r.read()
                return Response(r.status, {k.lower(): v for k, v in r.headers.items()}, payload, time.perf_counter() - started)
        except urllib.error.HTTPError as e:
            payload = e.read()
            return Response(e.code, {k.lower(): v for k, v in e.headers.items()}, payload, time.perf_counter() - started)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body if body is not None else {}, **kw)

    def put(self, path, body=None, **kw):
        return self.request("PUT", path, body if body is not None else {}, **kw)


def expect(response: Response, *statuses: int) -> Response:
    if response.status not in statuses:
        raise AssertionError(f"HTTP {response.status} (wanted {statuses}): {response.text()[:2000]}")
    return response


# --- SSE ---------------------------------------------------------------------------------------


@dataclass
class Frame:
    id: str | None = None
    event: str | None = None
    data: str = ""
    retry: int | None = None
    comments: list = field(default_factory=list)

    def json(self):
        return json.loads(self.data) if self.data else None


def parse_sse(text: str) -> list[Frame]:
    """The frames of a whole text/event-stream body (what API Gateway delivers when it ends)."""
    frames, current, data_lines = [], Frame(), []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if line == "":
            if data_lines or current.id is not None or current.event is not None or current.retry is not None:
                current.data = "\n".join(data_lines)
                frames.append(current)
            current, data_lines = Frame(), []
            continue
        if line.startswith(":"):
            current.comments.append(line[1:].strip())
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            data_lines.append(value)
        elif name == "id":
            current.id = value
        elif name == "event":
            current.event = value
        elif name == "retry":
            try:
                current.retry = int(value)
            except ValueError:
                pass
    if data_lines or current.id is not None or current.event is not None:
        current.data = "\n".join(data_lines)
        frames.append(current)
    return frames


# --- Postgres (psql) ---------------------------------------------------------------------------


def psql(database_url: str, sql: str) -> list[list[str]]:
    """Rows of a query as lists of strings (psql -tA, fields split on the unit separator)."""
    out = subprocess.run(["psql", database_url, "-X", "-tA", "-F", "\x1f", "-v", "ON_ERROR_STOP=1", "-c", sql],
                         capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise AssertionError(f"psql failed: {out.stderr.strip()}")
    return [line.split("\x1f") for line in out.stdout.splitlines() if line != ""]


def quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


# --- polling -----------------------------------------------------------------------------------


def wait_for(what: str, probe, timeout: float, interval: float = 0.25):
    """Calls probe() until it returns something truthy; AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


def wait_execution(api: Api, execution_id: str, timeout: float = 120, interval: float = 0.2) -> dict:
    """Polls GET /v1/executions/{id} (which records on read) until the execution is over."""
    def probe():
        doc = expect(api.get(f"/v1/executions/{execution_id}"), 200).json()
        return doc if doc.get("status") in TERMINAL else None
    return wait_for(f"execution {execution_id} to end", probe, timeout, interval)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-p * len(ordered) // 100))))
    return ordered[rank - 1]
