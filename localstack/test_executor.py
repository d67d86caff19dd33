"""The weft-host Lambda executor, end to end through a running LocalStack.

    eval "$(localstack/up)"
    WEFT_TEST_BOOTSTRAP=/var/tmp/weft-ci/target/debug/fn-code python3 localstack/test_executor.py

Needs AWS_ENDPOINT_URL (what localstack/up prints) and boto3. Each test creates its own
provided.al2023 functions (a zip with a `bootstrap`) and deletes them afterwards. The shell
bootstraps speak the Runtime API with bash and curl. WEFT_TEST_BOOTSTRAP is a Rust bootstrap
to copy in (fn-code); without it that one test is skipped, and says so.
"""

import base64
import io
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import unittest
import uuid
import zipfile

import boto3
from botocore.config import Config

ROLE = "arn:aws:iam::000000000000:role/weft-test-lambda"

# Shared by the shell bootstraps: `next` sets REQ (request id) and EVENT (the payload).
PRELUDE = r"""#!/bin/bash
set -u
API="http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime"
next() {
    local h
    h="$(mktemp)"
    EVENT="$(curl -sS -D "$h" "$API/invocation/next")"
    REQ="$(grep -i '^lambda-runtime-aws-request-id:' "$h" | tr -d '\r' | cut -d' ' -f2)"
    rm -f "$h"
}
respond() { curl -sS -o /dev/null -X POST --data-binary "$1" "$API/invocation/$REQ/response"; }
"""


def log(message):
    print(f"  [{message}]", file=sys.stderr, flush=True)


def zip_bootstrap(content: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        info = zipfile.ZipInfo("bootstrap")
        info.external_attr = (0o100755 << 16)  # a regular, executable file
        info.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(info, content)
    return buffer.getvalue()


class ExecutorTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        endpoint = os.environ.get("AWS_ENDPOINT_URL")
        if not endpoint:
            raise RuntimeError('AWS_ENDPOINT_URL is not set: start LocalStack with eval "$(localstack/up)"')
        cls.client = boto3.client(
            "lambda",
            endpoint_url=endpoint,
            region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
            aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
            aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
            # One attempt: a retried invoke would hide what the first one did (and its timing).
            config=Config(retries={"total_max_attempts": 1, "mode": "standard"}, read_timeout=120, connect_timeout=5),
        )

    def create(self, case: str, bootstrap: bytes, timeout: int = 60, env: dict | None = None) -> str:
        name = f"weft-exec-{case}-{uuid.uuid4().hex[:8]}"
        started = time.monotonic()
        self.client.create_function(
            FunctionName=name,
            Runtime="provided.al2023",
            Architectures=["x86_64"],
            Handler="bootstrap",
            Role=ROLE,
            Code={"ZipFile": zip_bootstrap(bootstrap)},
            Timeout=timeout,
            MemorySize=128,
            Environment={"Variables": env or {}},
        )
        self.addCleanup(self.client.delete_function, FunctionName=name)
        while True:
            state = self.client.get_function_configuration(FunctionName=name)["State"]
            if state == "Active":
                break
            self.assertNotEqual(state, "Failed", f"{name} failed to become Active")
            self.assertLess(time.monotonic() - started, 60, f"{name} not Active after 60 s (state {state})")
            time.sleep(0.05)
        log(f"{case}: create -> Active {time.monotonic() - started:.2f} s")
        return name

    def invoke(self, name: str, payload) -> tuple[dict, bytes, str, float]:
        """(response, payload bytes, decoded tail log, seconds)"""
        started = time.monotonic()
        response = self.client.invoke(
            FunctionName=name,
            InvocationType="RequestResponse",
            LogType="Tail",
            Payload=json.dumps(payload).encode(),
        )
        elapsed = time.monotonic() - started
        body = response["Payload"].read()
        logs = base64.b64decode(response.get("LogResult") or b"").decode("utf-8", "replace")
        return response, body, logs, elapsed

    def assert_error(self, response: dict, body: bytes, error_type: str) -> dict:
        self.assertEqual(response.get("FunctionError"), "Unhandled", body)
        doc = json.loads(body)
        self.assertEqual(doc.get("errorType"), error_type, doc)
        return doc

    # (a) -------------------------------------------------------------------------------------------
    def test_a_rust_bootstrap_answers(self):
        source = os.environ.get("WEFT_TEST_BOOTSTRAP")
        if not source:
            self.skipTest("WEFT_TEST_BOOTSTRAP is not set (path of a Rust bootstrap such as target/debug/fn-code)")
        # A copy: the build may replace the original while this runs.
        workdir = tempfile.mkdtemp(prefix="weft-exec-test-")
        self.addCleanup(shutil.rmtree, workdir, True)
        copy = os.path.join(workdir, "bootstrap")
        shutil.copyfile(source, copy)
        with open(copy, "rb") as f:
            name = self.create("rust", f.read(), timeout=30)

        event = {"node": {"id": "c", "type": "code"}, "config": {"expression": "input.n * 21"}, "scope": {"input": {"n": 2}}}
        response, body, logs, elapsed = self.invoke(name, event)
        self.assertNotIn("FunctionError", response, body)
        self.assertEqual(json.loads(body), 42)
        log(f"rust: first invoke (cold) {elapsed * 1000:.0f} ms")
        self.assertIn("START RequestId:", logs)
        self.assertIn("REPORT RequestId:", logs)

        # A node error comes back as the function's errorType (what Step Functions matches on).
        response, body, _, _ = self.invoke(name, {"node": {"id": "c", "type": "code"}, "config": {"expression": "nope("}})
        self.assert_error(response, body, "Code.Error")

        times = []
        for i in range(10):
            event["scope"]["input"]["n"] = i
            response, body, _, elapsed = self.invoke(name, event)
            self.assertEqual(json.loads(body), i * 21)
            times.append(elapsed * 1000)
        log(f"rust: warm invoke median {statistics.median(times):.1f} ms (min {min(times):.1f}, max {max(times):.1f})")

    # (b) -------------------------------------------------------------------------------------------
    def test_b_exit_mid_invocation_fails_at_once(self):
        script = PRELUDE + r"""
while true; do
    next
    if [[ "$EVENT" == *'"exit": true'* ]]; then
        echo "exiting mid-invocation"
        exit 3
    fi
    respond '"still here"'
done
"""
        name = self.create("exit", script.encode(), timeout=60)
        response, body, logs, elapsed = self.invoke(name, {"exit": True})
        doc = self.assert_error(response, body, "Runtime.ExitError")
        self.assertIn("exit status 3", doc["errorMessage"])
        self.assertIn("exiting mid-invocation", logs)
        log(f"exit: Runtime.ExitError after {elapsed * 1000:.0f} ms (function timeout 60 s)")
        self.assertLess(elapsed, 5, "the invocation waited for the timeout instead of failing when the process exited")

        # The next invocation gets a fresh process, as on AWS.
        response, body, _, _ = self.invoke(name, {"exit": False})
        self.assertNotIn("FunctionError", response, body)
        self.assertEqual(json.loads(body), "still here")

    # (c) -------------------------------------------------------------------------------------------
    def test_c_init_crash_is_an_init_error(self):
        script = "#!/bin/bash\necho 'crashing during init'\nexit 7\n"
        name = self.create("initcrash", script.encode(), timeout=60)
        response, body, _, elapsed = self.invoke(name, {})
        doc = self.assert_error(response, body, "Runtime.InitError")
        self.assertIn("exit status 7", doc["errorMessage"])
        self.assertLess(elapsed, 5)

    def test_c_init_error_posted_is_an_init_error(self):
        script = PRELUDE + r"""
curl -sS -o /dev/null -X POST -H 'Lambda-Runtime-Function-Error-Type: Weft.ConfigMissing' \
    --data-binary '{"errorType":"Weft.ConfigMissing","errorMessage":"WEFT_SOMETHING is not set"}' "$API/init/error"
sleep 30
"""
        name = self.create("initerror", script.encode(), timeout=60)
        response, body, _, elapsed = self.invoke(name, {})
        doc = self.assert_error(response, body, "Runtime.InitError")
        self.assertIn("Weft.ConfigMissing", doc["errorMessage"])
        self.assertIn("WEFT_SOMETHING is not set", doc["errorMessage"])
        self.assertLess(elapsed, 5)

    # (d) -------------------------------------------------------------------------------------------
    def test_d_each_invocation_gets_its_own_logs(self):
        # Many lines on both streams right before the response: the ones most likely to be
        # attributed to the next invocation if the capture were not synchronised with it.
        script = PRELUDE + r"""
echo "init-line"
while true; do
    next
    marker="$(sed -n 's/.*"marker": *"\([a-z]*\)".*/\1/p' <<<"$EVENT")"
    for i in $(seq 1 20); do
        echo "out-$marker-$i"
        echo "err-$marker-$i" >&2
    done
    respond "\"$marker\""
done
"""
        name = self.create("logs", script.encode(), timeout=60)
        pieces = {}
        for marker in ("alpha", "bravo", "charlie"):
            response, body, logs, _ = self.invoke(name, {"marker": marker})
            self.assertNotIn("FunctionError", response, body)
            self.assertEqual(json.loads(body), marker)
            pieces[marker] = logs
        for marker, logs in pieces.items():
            for i in (1, 20):
                self.assertIn(f"out-{marker}-{i}", logs)
                self.assertIn(f"err-{marker}-{i}", logs)
            for other in pieces:
                if other != marker:
                    self.assertNotIn(f"-{other}-", logs, f"{marker}'s logs hold {other}'s lines:\n{logs}")
            self.assertEqual(logs.count("START RequestId:"), 1, logs)
        # Init output belongs to the first invocation only.
        self.assertIn("init-line", pieces["alpha"])
        self.assertNotIn("init-line", pieces["bravo"])

    # (e) -------------------------------------------------------------------------------------------
    def test_e_function_error_keeps_its_error_type(self):
        script = PRELUDE + r"""
while true; do
    next
    curl -sS -o /dev/null -X POST -H 'Lambda-Runtime-Function-Error-Type: Weft.Custom' \
        --data-binary '{"errorType":"Weft.Custom","errorMessage":"custom failure"}' "$API/invocation/$REQ/error"
done
"""
        name = self.create("fnerror", script.encode(), timeout=60)
        for _ in range(2):  # the process survives a function error
            response, body, _, _ = self.invoke(name, {})
            doc = self.assert_error(response, body, "Weft.Custom")
            self.assertEqual(doc["errorMessage"], "custom failure")

    # timeouts -----------------------------------------------------------------------------------------
    def test_f_timeout_is_sandbox_timedout(self):
        script = PRELUDE + r"""
while true; do
    next
    if [[ "$EVENT" == *'"sleep": true'* ]]; then sleep 30; fi
    respond '"quick"'
done
"""
        name = self.create("timeout", script.encode(), timeout=1)
        response, body, logs, elapsed = self.invoke(name, {"sleep": True})
        self.assert_error(response, body, "Sandbox.Timedout")
        self.assertIn("Task timed out after 1.00 seconds", logs)
        self.assertLess(elapsed, 5)
        response, body, _, _ = self.invoke(name, {"sleep": False})
        self.assertEqual(json.loads(body), "quick", body)

    # what the executor cannot run ---------------------------------------------------------------
    def test_g_other_runtimes_say_why_and_can_be_deleted(self):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("app.py", "def handler(event, context):\n    return 1\n")
        name = f"weft-exec-python-{uuid.uuid4().hex[:8]}"
        self.client.create_function(
            FunctionName=name, Runtime="python3.12", Handler="app.handler", Role=ROLE,
            Code={"ZipFile": buffer.getvalue()},
        )
        try:
            deadline = time.monotonic() + 30
            while self.client.get_function_configuration(FunctionName=name)["State"] == "Pending":
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.05)
            self.assertEqual(self.client.get_function_configuration(FunctionName=name)["State"], "Active")
            response, body, _, _ = self.invoke(name, {})
            doc = self.assert_error(response, body, "Runtime.InvalidRuntime")
            self.assertIn("provided.*", doc["errorMessage"])
        finally:
            self.client.delete_function(FunctionName=name)  # must not fail


if __name__ == "__main__":
    unittest.main(verbosity=2)
