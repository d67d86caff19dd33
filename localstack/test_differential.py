"""Differential test: each runnable example on LocalStack's Step Functions with the deployed node
Lambdas (through Weft's API: create, publish, start, wait, so the functions see the execution's
tenant) and on Weft's own engine (`weft run GRAPH --input ... --history FILE`), comparing the
outputs and the sequences of history event types.

    eval "$(localstack/up)" && localstack/deploy
    python3 localstack/test_differential.py            # exits non-zero on any difference
    WEFT_DIFF_ONLY=order-routing,webhook-relay python3 localstack/test_differential.py

The examples and their cases are cli/tests/run_examples.rs' RUNNABLE list and
cli/tests/expected/<name>.json; the peers are Python copies of that file's (peers.py): the echo
server for `$CALLBACK_URL`, the scripted model server on the port of the stack's OpenAiBaseUrl
(stack.json `model_url`), milvus-lite on the stack's MilvusUrl port (`milvus_url`). Examples
that need a peer the deployed stack cannot be pointed at are skipped with the reason (SKIPPED).

Both engines run each graph as STANDARD (settings.type set; see test_examples for why); a graph
the compiler makes EXPRESS is also started as it is with ?wait=true and that output compared.
LocalStack's history comes from boto3 `get_execution_history` on the execution's ARN (the
`executions` row's `execution_arn`: GET /v1/executions/{id} does not show it). `weft run` uses
--fast-timers (delays pass at once: the events are the same, only their timestamps differ).
The exact order of events is compared only for graphs without `loop` or `parallel` nodes;
concurrent branches interleave in any order on either engine, so for those the multiset of
event types is compared instead (and an order difference is printed as information).

Environment: WEFT_BIN (default /var/tmp/weft-ci/target/debug/weft), WEFT_DIFF_ONLY (comma-separated
example names), WEFT_DIFF_KEEP=DIR (keep both histories of every case there).
"""

from __future__ import annotations

import collections
import contextlib
import difflib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers  # noqa: E402
from weft_stack import Api, boto, expect, load_stack, log, psql, quote, token, wait_execution  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STACK = load_stack()
WEFT = os.environ.get("WEFT_BIN", "/var/tmp/weft-ci/target/debug/weft")
RUN = uuid.uuid4().hex[:8]
TENANT = f"diff-{RUN}"

# cli/tests/run_examples.rs RUNNABLE, and why some cannot run against the deployed stack.
RUNNABLE = ["batch-scoring", "daily-sql-report", "knowledge-ingest", "order-routing", "rag-answer",
            "research-report", "support-agent", "webhook-relay"]
SKIPPED: dict[str, str] = {}
# Their slack node needs a local Slack API, but the stack gives fn-slack no WEFT_SLACK_API_URL
# (the template has no parameter for it: the deployed function posts to https://slack.com). For
# these two examples the test sets WEFT_SLACK_API_URL on the deployed slack function
# (UpdateFunctionConfiguration) and puts its environment back afterwards; WEFT_DIFF_NO_SLACK=1
# skips them instead.
NEEDS_SLACK = {"daily-sql-report", "knowledge-ingest"}
if os.environ.get("WEFT_DIFF_NO_SLACK") == "1":
    SKIPPED.update({n: "WEFT_DIFF_NO_SLACK=1 (they need WEFT_SLACK_API_URL set on the deployed slack function)"
                    for n in NEEDS_SLACK})
# run_examples.rs daily_sql_report_peers(): the orders of the example's database.
ORDERS_SQL = """CREATE TABLE orders (region text, amount numeric(12,2), created_at timestamptz);
INSERT INTO orders VALUES
  ('north', 600.00, '2026-11-30 09:15:00+00'),
  ('south', 300.25, '2026-11-30 10:00:00+00'),
  ('north', 450.50, '2026-11-30 13:30:00+00'),
  ('west',   99.99, '2026-11-30 16:45:00+00'),
  ('south',  42.50, '2026-11-29 12:00:00+00'),
  ('west',   17.00, '2026-11-29 12:30:00+00'),
  ('north', 5000.00, '2026-11-28 12:00:00+00');"""
# run_examples.rs knowledge_ingest_peers(): the wiki's two changed pages.
WIKI_PAGES = {"count": 2, "pages": [
    {"id": "deploys", "title": "Deploying", "text": "Deploys run from the main branch through the pipeline. " * 20},
    {"id": "oncall", "title": "On call", "text": "The on-call engineer answers pages within 15 minutes."}]}
NEEDS_MODEL = {"rag-answer", "research-report", "support-agent", "knowledge-ingest"}
NEEDS_MILVUS = {"rag-answer", "knowledge-ingest"}


def port_of(url: str) -> int:
    return urllib.parse.urlsplit(url).port


def substitute(value, variables: dict):
    if isinstance(value, str):
        for name, url in variables.items():
            value = value.replace(name, url)
        return value
    if isinstance(value, list):
        return [substitute(v, variables) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, variables) for k, v in value.items()}
    return value


def canonical(value):
    """`value` with every string that is a JSON object or array re-serialised with sorted keys.

    An error's `cause` is the Lambda's error document as text: Lambda (and LocalStack) pass on
    what the runtime posted ({"errorType", "errorMessage"}), Weft's engine writes the same
    document with its keys sorted. The difference is reported, not failed on."""
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.dumps(canonical(json.loads(value)), sort_keys=True)
        except ValueError:
            return value
    if isinstance(value, list):
        return [canonical(v) for v in value]
    if isinstance(value, dict):
        return {k: canonical(v) for k, v in value.items()}
    return value


def types_of(events: list[dict]) -> list[str]:
    return [e["type"] for e in sorted(events, key=lambda e: e["id"])]


def concurrent(graph: dict) -> bool:
    return any(n["type"] in ("loop", "parallel") for n in graph["nodes"])


class Differential(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        help_text = subprocess.run([WEFT, "run", "--help"], capture_output=True, text=True).stdout
        if "--history" not in help_text:
            raise RuntimeError(f"{WEFT} has no `run --history` (rebuild it: cargo build -p weft-cli)")
        cls.api = Api(STACK["api_url"], token(STACK, TENANT, "editor"), timeout=90)
        cls.sfn = boto("stepfunctions", STACK)
        cls.echo = peers.EchoServer()
        cls.model = None
        cls.milvus = None
        cls.problems: list[str] = []
        cls.summary: list[str] = []
        only = os.environ.get("WEFT_DIFF_ONLY")
        cls.selected = [n for n in RUNNABLE if not only or n in only.split(",")]
        if any(n in NEEDS_MODEL and n not in SKIPPED for n in cls.selected):
            port = port_of(STACK["model_url"])
            if peers.port_free(port):
                cls.model = peers.ModelServer(port, dim=256)
            else:
                log(f"port {port} (the stack's OpenAiBaseUrl) is taken: the AI examples are skipped")
        if any(n in NEEDS_MILVUS and n not in SKIPPED for n in cls.selected):
            port = port_of(STACK["milvus_url"])
            if peers.port_free(port):
                try:
                    cls.milvus = peers.MilvusLite.start(port)
                except RuntimeError as e:
                    log(f"milvus-lite did not start: {e}")
            if cls.milvus is None:
                log(f"no milvus-lite on port {port} (the stack's MilvusUrl): the vector examples are skipped")
        cls.scratch = tempfile.mkdtemp(prefix="weft-diff-")
        cls.example_peers = {"secrets": {}, "env": {}, "peer_url": None, "received": None}
        cls.keep = os.environ.get("WEFT_DIFF_KEEP")
        if cls.keep:
            os.makedirs(cls.keep, exist_ok=True)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.scratch, ignore_errors=True)
        cls.echo.close()
        if cls.model:
            cls.model.close()
        if cls.milvus:
            cls.milvus.close()
        print("\nDifferential summary (LocalStack vs weft run):", file=sys.stderr)
        for line in cls.summary:
            print(f"  {line}", file=sys.stderr)

    # --- one engine each -------------------------------------------------------------------------

    def run_weft(self, path: str, case_input) -> tuple[dict, list[dict], float]:
        env = dict(os.environ, WEFT_HTTP_ALLOW="127.0.0.1", OPENAI_API_KEY="sk-test", **self.example_peers["env"])
        if self.model:
            env["OPENAI_BASE_URL"] = self.model.base_url
        if self.milvus:
            env["WEFT_MILVUS_URL"] = self.milvus.url
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
            history_path = f.name
        try:
            started = time.perf_counter()
            args = [WEFT, "run", path, "--fast-timers", "--quiet", "--input", json.dumps(case_input), "--history", history_path]
            if self.example_peers["secrets"]:
                secrets_path = os.path.join(self.scratch, "secrets.json")
                with open(secrets_path, "w") as f:
                    json.dump(self.example_peers["secrets"], f)
                args += ["--secrets", secrets_path]
            out = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
            seconds = time.perf_counter() - started
            with open(history_path) as f:
                events = json.load(f)["events"]
        finally:
            os.unlink(history_path)
        if out.returncode == 0:
            result = {"status": "SUCCEEDED", "output": json.loads(out.stdout)}
        elif out.returncode == 1:
            result = {"status": "FAILED", "stderr": out.stderr.strip()}
        else:
            raise AssertionError(f"weft run exit {out.returncode}: {out.stderr}")
        return result, events, seconds

    def run_localstack(self, workflow_id: str, case_input) -> tuple[dict, list[dict], str, float]:
        started = time.perf_counter()
        execution = expect(self.api.post(f"/v1/workflows/{workflow_id}/executions", {"input": case_input}), 201).json()
        doc = wait_execution(self.api, execution["id"], timeout=300, interval=0.25)
        seconds = time.perf_counter() - started
        arn = doc.get("execution_arn") or psql(
            STACK["database_url"], f"SELECT execution_arn FROM executions WHERE id = {quote(execution['id'])}")[0][0]
        events, kwargs = [], {"executionArn": arn, "maxResults": 1000}
        while True:
            page = self.sfn.get_execution_history(**kwargs)
            events += page["events"]
            if not page.get("nextToken"):
                break
            kwargs["nextToken"] = page["nextToken"]
        for e in events:
            e["timestamp"] = e["timestamp"].isoformat() if hasattr(e["timestamp"], "isoformat") else e["timestamp"]
        result = {"status": doc["status"], "output": doc.get("output")}
        if doc["status"] != "SUCCEEDED":
            result.update(error=doc.get("error"), cause=doc.get("cause"))
        return result, events, arn, seconds

    # --- the examples ----------------------------------------------------------------------------

    def test_examples(self):
        ran = 0
        for name in self.selected:
            why = SKIPPED.get(name)
            if not why and name in NEEDS_MODEL and not self.model:
                why = "the scripted model server could not take the stack's OpenAiBaseUrl port"
            if not why and name in NEEDS_MILVUS and not self.milvus:
                why = "no milvus-lite on the stack's MilvusUrl port"
            if why:
                self.summary.append(f"{name}: SKIPPED: {why}")
                continue
            with contextlib.ExitStack() as cleanup:
                ran += self.one_example(name, cleanup)
        self.assertGreater(ran, 0, "no example ran")

    def one_example(self, name: str, cleanup: contextlib.ExitStack) -> int:
        """Runs the cases of `name`; returns how many. `cleanup` closes its peers afterwards."""
        ran = 0
        setup = self.peers_for(name, cleanup)
        if isinstance(setup, str):
            self.summary.append(f"{name}: SKIPPED: {setup}")
            return 0
        self.example_peers = setup
        with open(os.path.join(ROOT, "examples", f"{name}.json")) as f:
            original = json.load(f)
        with open(os.path.join(ROOT, "cli", "tests", "expected", f"{name}.json")) as f:
            cases = json.load(f)["cases"]
        # Both engines run the graph as STANDARD: Step Functions keeps no history of EXPRESS
        # executions (GetExecutionHistory answers InvalidArn), and an asynchronous EXPRESS
        # start is never recorded (see test_e2e.py test_9). A graph the compiler makes
        # EXPRESS is also run as it is, with ?wait=true (StartSyncExecution), and that
        # output compared too.
        graph = json.loads(json.dumps(original))
        graph.setdefault("settings", {})["type"] = "standard"
        path = os.path.join(self.scratch, f"{name}.json")
        with open(path, "w") as f:
            json.dump(graph, f)
        created = expect(self.api.post("/v1/workflows", {"graph": graph}), 201).json()
        expect(self.api.post(f"/v1/workflows/{created['id']}/versions"), 201)
        as_is = expect(self.api.post("/v1/workflows", {"graph": original}), 201).json()
        as_is_type = expect(self.api.post(f"/v1/workflows/{as_is['id']}/versions"), 201).json()["workflow_type"]
        for case in cases:
            with self.subTest(example=name, case=case["name"]):
                ran += 1
                express_id = as_is["id"] if as_is_type == "EXPRESS" else None
                self.one_case(name, graph, path, created["id"], express_id, case)
        return ran

    # --- peers of the examples that need more than the echo server ---------------------------------

    def peers_for(self, name: str, cleanup: contextlib.ExitStack):
        """{"secrets", "env", "peer_url", "received"} for example `name`, or why it cannot run."""
        setup = {"secrets": {}, "env": {}, "peer_url": None, "received": None}
        if name not in NEEDS_SLACK:
            return setup
        slack = peers.SlackServer()
        cleanup.callback(slack.close)
        setup["env"]["WEFT_SLACK_API_URL"] = slack.url
        setup["secrets"]["slack"] = "xoxb-test-token"
        if name == "daily-sql-report":
            db = f"weft_diff_orders_{RUN}"
            server = urllib.parse.urlsplit(STACK["database_url"])
            admin = urllib.parse.urlunsplit((server.scheme, server.netloc, "/postgres", server.query, ""))
            url = urllib.parse.urlunsplit((server.scheme, server.netloc, f"/{db}", server.query, ""))
            psql(admin, f'CREATE DATABASE "{db}"')
            cleanup.callback(psql, admin, f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
            psql(url, ORDERS_SQL)
            try:
                smtp = peers.SmtpServer(os.path.join(ROOT, "functions", "email", "tests", "smtp_server.py"))
            except RuntimeError as e:
                return str(e)
            cleanup.callback(smtp.close)
            setup["secrets"].update(reports_db=url, smtp=f"smtp://127.0.0.1:{smtp.port}")
            setup["received"] = lambda: {"mail": smtp.take(), "slack": slack.take()}
        else:
            wiki = peers.RoutePeer({"/api/pages": WIKI_PAGES})
            cleanup.callback(wiki.close)
            setup["peer_url"] = wiki.url
            setup["received"] = lambda: {"wiki": wiki.take(), "slack": slack.take()}
        # The tenant's secrets, through the API (admins manage secrets).
        admin_api = Api(STACK["api_url"], token(STACK, TENANT, "admin"))
        for secret, value in setup["secrets"].items():
            expect(admin_api.post("/v1/secrets", {"name": secret, "value": value}), 201, 409)
        # The deployed slack function posts to our Slack while this example runs.
        lam = boto("lambda", STACK)
        function = STACK["functions"]["Slack"]
        original = lam.get_function_configuration(FunctionName=function)["Environment"]["Variables"]

        def set_env(variables):
            lam.update_function_configuration(FunctionName=function, Environment={"Variables": variables})
            deadline = time.monotonic() + 60
            while lam.get_function_configuration(FunctionName=function).get("LastUpdateStatus") != "Successful":
                if time.monotonic() > deadline:
                    raise AssertionError(f"{function} not updated after 60 s")
                time.sleep(0.2)
        set_env(dict(original, WEFT_SLACK_API_URL=slack.url))
        cleanup.callback(set_env, original)
        log(f"{name}: WEFT_SLACK_API_URL={slack.url} on {function} while it runs")
        return setup

    def run_express_sync(self, workflow_id: str, case_input) -> dict | None:
        """None when the api cannot reach StartSyncExecution (the SDK's `sync-` host prefix on the
        127.0.0.1 endpoint: see test_e2e.py test_8 and the README)."""
        answer = self.api.post(f"/v1/workflows/{workflow_id}/executions?wait=true", {"input": case_input})
        if answer.status == 503:
            return None
        doc = expect(answer, 200).json()
        result = {"status": doc["status"], "output": doc.get("output")}
        if doc["status"] != "SUCCEEDED":
            result.update(error=doc.get("error"), cause=doc.get("cause"))
        return result

    def one_case(self, name, graph, path, workflow_id, express_id, case):
        variables = {"$CALLBACK_URL": self.echo.url}
        if self.example_peers["peer_url"]:
            variables["$PEER_URL"] = self.example_peers["peer_url"]
        case_input = substitute(case["input"], variables)
        take = self.example_peers["received"] or (lambda: None)
        take()
        weft, weft_events, weft_s = self.run_weft(path, case_input)
        weft_received = take()
        local, local_events, arn, local_s = self.run_localstack(workflow_id, case_input)
        local_received = take()
        express = self.run_express_sync(express_id, case_input) if express_id else None
        take()
        workflow_type = "STANDARD" + (", compiles to EXPRESS" if express_id else "")
        label = f"{name}/{case['name']}"
        if self.keep:
            slug = f"{name}--{case['name']}".replace(" ", "_").replace("/", "_").replace(":", "")
            with open(os.path.join(self.keep, f"{slug}.json"), "w") as f:
                json.dump({"arn": arn, "localstack": {"result": local, "events": local_events},
                           "weft": {"result": weft, "events": weft_events}}, f, indent=1, default=str)
        a, b = types_of(local_events), types_of(weft_events)
        same_order = a == b
        same_multiset = collections.Counter(a) == collections.Counter(b)
        expected = case.get("output")
        vs_expected = "=" if weft.get("output") == expected else "differs from expected"
        if local.get("output") == weft.get("output"):
            output_note = "same"
        elif canonical(local.get("output")) == canonical(weft.get("output")):
            output_note = "same up to the key order of JSON text in strings (an error `cause`)"
        else:
            output_note = "DIFFERENT"
        line = (f"{label} [{workflow_type}]: status {local['status']}/{weft['status']}, output "
                f"{output_note} (weft vs the expected file: "
                f"{vs_expected}), history {len(a)}/{len(b)} events "
                f"{'same order' if same_order else ('same types, other order' if same_multiset else 'DIFFERENT types')}"
                f", {local_s:.1f} s / {weft_s:.1f} s")
        if weft_received is not None:
            line += (f"; the peers received {'the same' if local_received == weft_received else 'DIFFERENT things'}"
                     f" (weft vs the expected file: {'=' if weft_received == case.get('received') else 'differs'})")
        self.summary.append(line)
        log(line)
        self.assertEqual(local_received, weft_received, f"{label}: the peers received different things")
        if express_id and express is None:
            self.summary.append(f"{label} [EXPRESS ?wait=true]: not compared: the api answered 503 (its "
                                "StartSyncExecution goes to http://sync-127.0.0.1:4566)")
        elif express:
            same = canonical(express.get("output")) == canonical(weft.get("output")) and express["status"] == weft["status"]
            self.summary.append(f"{label} [EXPRESS ?wait=true]: status {express['status']}, output "
                                f"{'same as weft run' if same else 'DIFFERENT'}")
        self.assertEqual(local["status"], weft["status"], f"{label}: {local} vs {weft}")
        self.assertEqual(canonical(local.get("output")), canonical(weft.get("output")), f"{label}: outputs differ")
        if express:
            self.assertEqual((express["status"], canonical(express.get("output"))), (weft["status"], canonical(weft.get("output"))),
                             f"{label}: the EXPRESS run (?wait=true) differs: {express}")
        if not same_multiset or (not same_order and not concurrent(graph)):
            diff = "\n".join(difflib.unified_diff(a, b, "localstack", "weft run", lineterm="", n=2))
            self.fail(f"{label}: history event types differ ({arn}):\n{diff}")
        if not same_order:
            log(f"{label}: same event types in another order (concurrent branches)")


if __name__ == "__main__":
    unittest.main(verbosity=2)
