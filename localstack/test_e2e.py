"""The deployed SAM stack on LocalStack, end to end, through its API Gateway URL only (boto3 is
used just to look at queues, the bus, logs and, for the init-error case, one function's
configuration; psql to read the executions row the recorder writes).

    eval "$(localstack/up)" && localstack/deploy
    python3 localstack/test_e2e.py            # exits non-zero on any failure

Reads $WEFT_LOCALSTACK_DIR/stack.json (localstack/deploy writes it). Every run uses fresh tenants
(`e2e-<random>`), so runs do not see each other's workflows, approvals or dead letters.

The events queue's VisibilityTimeout (360 s) times maxReceiveCount (5) makes a poison message
take 30 minutes to reach the dead-letter queue, as on AWS. To keep the run short the dead-letter
tests lower the queue's VisibilityTimeout to WEFT_E2E_VISIBILITY seconds (default 2) while they
run and put the template's value back afterwards; WEFT_E2E_VISIBILITY=keep leaves it as deployed
(and waits up to maxReceiveCount x VisibilityTimeout + 2 minutes).
"""

from __future__ import annotations

import http.server
import json
import os
import socketserver
import sys
import threading
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from weft_stack import (  # noqa: E402
    TERMINAL, Api, boto, expect, load_stack, log, parse_sse, psql, quote, token, wait_execution, wait_for,
)

STACK = load_stack()
RUN = uuid.uuid4().hex[:8]
TENANT = f"e2e-{RUN}"
OTHER_TENANT = f"e2e-{RUN}-other"
EVENT = f"e2e.{RUN}.order"
DLQ_EVENT = f"e2e.{RUN}.strict"
DB = STACK["database_url"]
T0 = time.monotonic()


def approval_graph(event: str) -> dict:
    """STANDARD (an approval node), started by the API or by `event` through the queue."""
    return {
        "format": "weft/v1", "id": f"e2e-approval-{RUN}", "name": f"e2e approval {RUN}",
        "settings": {"type": "standard"},
        "triggers": [{"type": "queue", "event": event}],
        "nodes": [
            {"id": "start", "type": "start", "data": {"input_schema": {
                "type": "object", "required": ["n"], "properties": {"n": {"type": "number"}}}}},
            {"id": "double", "type": "code", "data": {"expression": "({ doubled: input.n * 2 })"}},
            {"id": "review", "type": "approval", "data": {
                "message": "Approve {{ nodes.double.doubled }}?", "timeout_seconds": 900}},
            {"id": "done", "type": "end", "data": {"output": {
                "doubled": "{{ nodes.double.doubled }}", "review": "{{ nodes.review }}"}}},
        ],
        "edges": [
            {"id": "e1", "source": "start", "target": "double"},
            {"id": "e2", "source": "double", "target": "review"},
            {"id": "e3", "source": "review", "target": "done"},
        ],
    }


def strict_graph(event: str, strict: bool = True) -> dict:
    """A queue-triggered workflow whose start refuses a non-numeric `n` (while `strict`)."""
    start = {"id": "start", "type": "start", "data": {}}
    if strict:
        start["data"]["input_schema"] = {"type": "object", "required": ["n"], "properties": {"n": {"type": "number"}}}
    return {
        "format": "weft/v1", "id": f"e2e-strict-{RUN}", "name": f"e2e strict {RUN}",
        "settings": {"type": "standard"},  # an asynchronous EXPRESS execution is never recorded (test_8)
        "triggers": [{"type": "queue", "event": event}],
        "nodes": [
            start,
            {"id": "echo", "type": "code", "data": {"expression": "({ got: input.n })"}},
            {"id": "done", "type": "end", "data": {}},
        ],
        "edges": [{"id": "e1", "source": "start", "target": "echo"}, {"id": "e2", "source": "echo", "target": "done"}],
    }


def http_graph(url: str) -> dict:
    return {
        "format": "weft/v1", "id": f"e2e-http-{RUN}", "name": f"e2e http {RUN}",
        "settings": {"type": "standard"},
        "nodes": [
            {"id": "start", "type": "start", "data": {}},
            {"id": "call", "type": "http", "data": {"method": "GET", "url": url}},
            {"id": "done", "type": "end", "data": {"output": {"status": "{{ nodes.call.status }}"}}},
        ],
        "edges": [{"id": "e1", "source": "start", "target": "call"}, {"id": "e2", "source": "call", "target": "done"}],
    }


class Peer:
    """A tiny HTTP server on 127.0.0.1 answering 200 {"ok": true}."""

    def __init__(self):
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = b'{"ok": true}'
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/ping"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class E2E(unittest.TestCase):
    """Tests run in name order and share what the earlier ones created (class attributes)."""

    api: Api
    shared: dict = {}

    @classmethod
    def setUpClass(cls):
        cls.api = Api(STACK["api_url"], token(STACK, TENANT, "editor"))
        cls.admin = Api(STACK["api_url"], token(STACK, TENANT, "admin"))
        cls.viewer = Api(STACK["api_url"], token(STACK, TENANT, "viewer"))
        cls.other_admin = Api(STACK["api_url"], token(STACK, OTHER_TENANT, "admin"))
        cls.sqs = boto("sqs", STACK)
        cls.events = boto("events", STACK)
        cls.logs = boto("logs", STACK)
        cls.lam = boto("lambda", STACK)
        cls.outputs = STACK["outputs"]
        # Domain events: a rule on the stack's bus sending everything Weft puts there (source
        # "weft") to a queue of our own, made before anything happens.
        cls.capture_url = cls.sqs.create_queue(QueueName=f"weft-e2e-domain-{RUN}")["QueueUrl"]
        capture_arn = cls.sqs.get_queue_attributes(QueueUrl=cls.capture_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        cls.bus = cls.outputs["EventBusName"]
        cls.rule = f"weft-e2e-domain-{RUN}"
        cls.events.put_rule(Name=cls.rule, EventBusName=cls.bus, EventPattern=json.dumps({"source": ["weft"]}))
        cls.events.put_targets(Rule=cls.rule, EventBusName=cls.bus, Targets=[{"Id": "capture", "Arn": capture_arn}])
        cls.captured: list[dict] = []
        log(f"tenant {TENANT}; api {STACK['api_url']}")

    @classmethod
    def tearDownClass(cls):
        try:
            cls.events.remove_targets(Rule=cls.rule, EventBusName=cls.bus, Ids=["capture"])
            cls.events.delete_rule(Name=cls.rule, EventBusName=cls.bus)
            cls.sqs.delete_queue(QueueUrl=cls.capture_url)
        except Exception as e:  # cleanup only
            log(f"cleanup: {e}")
        log(f"e2e total {time.monotonic() - T0:.1f} s")

    # helpers -----------------------------------------------------------------------------------

    def create_and_publish(self, graph: dict, api: Api | None = None) -> tuple[str, dict]:
        api = api or self.api
        created = expect(api.post("/v1/workflows", {"graph": graph}), 201).json()
        published = expect(api.post(f"/v1/workflows/{created['id']}/versions"), 201).json()
        return created["id"], published

    def pending_approval(self, execution_id: str, timeout: float = 60) -> dict:
        def probe():
            items = expect(self.api.get("/v1/approvals"), 200).json()["items"]
            return next((a for a in items if a["execution_id"] == execution_id), None)
        return wait_for(f"the approval of {execution_id}", probe, timeout, 0.3)

    def drain_capture(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            got = self.sqs.receive_message(QueueUrl=self.capture_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            for m in got.get("Messages", []):
                self.captured.append(json.loads(m["Body"]))
                self.sqs.delete_message(QueueUrl=self.capture_url, ReceiptHandle=m["ReceiptHandle"])

    def execution_row(self, execution_id: str) -> tuple[str, str | None, str | None]:
        rows = psql(DB, f"SELECT status, output::text, execution_arn FROM executions WHERE id = {quote(execution_id)}")
        return tuple(rows[0]) if rows else (None, None, None)

    def dlq_bodies(self) -> list[dict]:
        """The dead-letter queue's messages, looked at without hiding them."""
        url = self.outputs["DeadLetterQueueUrl"]
        seen = {}
        for _ in range(5):
            got = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0,
                                           AttributeNames=["All"])
            for m in got.get("Messages", []):
                seen[m["MessageId"]] = m
            if not got.get("Messages"):
                break
        return list(seen.values())

    def lowered_visibility(self):
        """Lowers the events queue's VisibilityTimeout for the dead-letter tests (see the docstring)."""
        url = self.outputs["EventsQueueUrl"]
        attrs = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        visibility = int(attrs["VisibilityTimeout"])
        max_receives = json.loads(attrs["RedrivePolicy"])["maxReceiveCount"]
        wanted = os.environ.get("WEFT_E2E_VISIBILITY", "2")
        if wanted != "keep" and int(wanted) < visibility:
            self.sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": wanted})
            self.addCleanup(self.sqs.set_queue_attributes, QueueUrl=url, Attributes={"VisibilityTimeout": str(visibility)})
            log(f"events queue: VisibilityTimeout {visibility} s -> {wanted} s for this test (maxReceiveCount {max_receives})")
            visibility = int(wanted)
        return visibility, int(max_receives)

    # 1 -------------------------------------------------------------------------------------------
    def test_1_create_and_publish(self):
        workflow_id, published = self.create_and_publish(approval_graph(EVENT))
        self.assertEqual(published["workflow_type"], "STANDARD", published)
        self.assertTrue(published["state_machine_arn"].split(":")[-1].startswith("weft-"), published)
        triggers = expect(self.api.get(f"/v1/workflows/{workflow_id}/triggers"), 200).json()
        self.assertIn(EVENT, json.dumps(triggers), triggers)
        self.shared["workflow_id"] = workflow_id
        log(f"workflow {workflow_id} published: {published['state_machine_version_arn']}")

    # 2 -------------------------------------------------------------------------------------------
    def test_2_start_follow_approve_read(self):
        workflow_id = self.shared.get("workflow_id") or self.skipTest("test_1 did not publish")
        started = time.monotonic()
        execution = expect(self.api.post(f"/v1/workflows/{workflow_id}/executions", {"input": {"n": 21}}), 201).json()
        execution_id = execution["id"]
        self.shared["api_execution_id"] = execution_id
        approval = self.pending_approval(execution_id)
        self.assertEqual(approval["message"], "Approve 42?", approval)
        log(f"approval pending after {time.monotonic() - started:.1f} s")

        # SSE before the decision: a short wait, the body arrives whole when the response ends.
        first = expect(self.api.get(f"/v1/executions/{execution_id}/events?timeout_ms=1000",
                                    headers={"accept": "text/event-stream"}), 200)
        self.assertIn("text/event-stream", first.headers.get("content-type", ""), first.headers)
        frames = parse_sse(first.text())
        node_events = [f.json() for f in frames if f.event in (None, "message") and f.data]
        self.assertTrue(any(e.get("node_id") == "double" for e in node_events), first.text()[:2000])
        self.assertFalse(any(f.event == "end" for f in frames), "ended before the approval")
        last_id = next((f.id for f in reversed(frames) if f.id), None)

        decided = expect(self.api.post(f"/v1/approvals/{approval['id']}",
                                       {"decision": "approve", "comment": "fine by e2e"}), 200).json()
        self.assertEqual(decided["status"], "approved", decided)

        # Follow the stream from where it stopped until `event: end`.
        end = None
        deadline = time.monotonic() + 90
        while end is None:
            self.assertLess(time.monotonic(), deadline, "no `event: end` within 90 s")
            headers = {"accept": "text/event-stream"}
            if last_id:
                headers["last-event-id"] = last_id
            part = expect(self.api.get(f"/v1/executions/{execution_id}/events?timeout_ms=5000", headers=headers), 200)
            for f in parse_sse(part.text()):
                if f.event == "end":
                    end = f.json()
                elif f.data:
                    node_events.append(f.json())
                if f.id:
                    last_id = f.id
        self.assertEqual(end["status"], "SUCCEEDED", end)
        types = [(e.get("type"), e.get("node_id")) for e in node_events]
        self.assertTrue(any(n == "review" for _, n in types), types)
        self.assertTrue(any(n == "done" or t == "execution_succeeded" for t, n in types), types)

        doc = expect(self.api.get(f"/v1/executions/{execution_id}"), 200).json()
        self.assertEqual(doc["status"], "SUCCEEDED", doc)
        self.assertEqual(doc["output"]["doubled"], 42, doc)
        self.assertIs(doc["output"]["review"]["approved"], True, doc)
        self.assertEqual(doc["output"]["review"]["comment"], "fine by e2e", doc)
        log(f"api start -> SUCCEEDED in {time.monotonic() - started:.1f} s; node events: {types}")

    # 3 -------------------------------------------------------------------------------------------
    def test_3_event_through_the_queue_recorded_by_the_recorder(self):
        workflow_id = self.shared.get("workflow_id") or self.skipTest("test_1 did not publish")
        started = time.monotonic()
        sent = expect(self.api.post("/v1/events", {"event": EVENT, "payload": {"n": 5}}), 202).json()
        self.assertEqual(sent["delivery"], "queued", sent)
        # Found in Postgres, not through the API: GET /v1/executions/{id} would record it on read.
        def started_row():
            rows = psql(DB, f"SELECT id, status, started_by FROM executions WHERE tenant_id = {quote(TENANT)} "
                            f"AND workflow_id = {quote(workflow_id)} AND started_by LIKE 'queue:%'")
            return rows[0] if rows else None
        execution_id, _, started_by = wait_for("the trigger function to start the execution", started_row, 60, 0.3)
        log(f"queue -> trigger -> started {execution_id} ({started_by}) in {time.monotonic() - started:.1f} s")
        self.shared["queue_execution_id"] = execution_id
        approval = self.pending_approval(execution_id)
        expect(self.api.post(f"/v1/approvals/{approval['id']}", {"decision": "approve"}), 200)
        decided_at = time.monotonic()

        # Nobody reads the execution now: only the recorder (EventBridge status change) can
        # write SUCCEEDED and the output on its row.
        def recorded():
            status, output, arn = self.execution_row(execution_id)
            return (status, output, arn) if status in TERMINAL else None
        status, output, arn = wait_for("the recorder to record the end", recorded, 90, 0.5)
        self.assertEqual(status, "SUCCEEDED")
        self.assertEqual(json.loads(output)["doubled"], 10, output)
        log(f"recorded SUCCEEDED {time.monotonic() - decided_at:.1f} s after the decision")

        # And the recorder's logs name this execution.
        group = f"/aws/lambda/{STACK['functions']['Recorder']}"
        def logged():
            # LocalStack 2026.3.0 ignores filterPattern (it returns every event): filtered here too.
            try:
                pages = self.logs.get_paginator("filter_log_events").paginate(
                    logGroupName=group, filterPattern=f'"{execution_id}"')
                found = [e for page in pages for e in page.get("events", []) if execution_id in e["message"]]
            except self.logs.exceptions.ResourceNotFoundException:
                return None
            return found or None
        try:
            events = wait_for(f"{group} to mention the execution", logged, 10, 1)
            log(f"recorder log: {events[-1]['message'].strip()[:200]}")
        except AssertionError:
            # The row is the evidence; fn-recorder logs no line per recording it makes.
            log(f"{group} has no line naming {execution_id} (fn-recorder logs none per recording)")

    # 4 -------------------------------------------------------------------------------------------
    def test_4_domain_events_reach_the_bus(self):
        workflow_id = self.shared.get("workflow_id") or self.skipTest("test_1 did not publish")
        executions = {self.shared.get("api_execution_id"), self.shared.get("queue_execution_id")} - {None}
        wanted = {("WorkflowPublished", workflow_id)} | {("ExecutionSucceeded", e) for e in executions}
        deadline = time.monotonic() + 30
        got = set()
        while time.monotonic() < deadline and not wanted <= got:
            self.drain_capture(2)
            for event in self.captured:
                detail = event.get("detail") or {}
                data = detail.get("data") or {}
                if detail.get("tenant_id") == TENANT:
                    got.add((event.get("detail-type"), data.get("execution_id") or data.get("workflow_id")))
        if not wanted <= got:
            outbox = psql(DB, "SELECT kind, count(*), count(published_at) FROM domain_events "
                              f"WHERE tenant_id = {quote(TENANT)} GROUP BY kind ORDER BY kind")
            self.fail(
                f"domain events missing on bus {self.bus}: {sorted(wanted - got)}; received "
                f"{sorted(got) or 'none'} ({len(self.captured)} message(s) on the capture queue). "
                f"Outbox rows of this tenant (kind, rows, published): {outbox or 'none'}. "
                "Rows with published = 0 mean no relay publishes the outbox in the deployed functions.")
        log(f"domain events received: {sorted(got)}")

    # 5 -------------------------------------------------------------------------------------------
    def test_5_poison_message_reaches_the_dead_letter_queue(self):
        visibility, max_receives = self.lowered_visibility()
        body = f"not json {RUN}"
        sent_id = self.sqs.send_message(QueueUrl=self.outputs["EventsQueueUrl"], MessageBody=body)["MessageId"]
        started = time.monotonic()
        def arrived():
            return next((m for m in self.dlq_bodies() if m["Body"] == body), None)
        message = wait_for("the poison message in the dead-letter queue", arrived, max_receives * visibility + 120, 1)
        receives = message["Attributes"].get("ApproximateReceiveCount")
        log(f"poison {sent_id} in the DLQ after {time.monotonic() - started:.1f} s "
            f"(maxReceiveCount {max_receives}, visibility {visibility} s; DLQ receive count {receives})")
        self.shared["poison_body"] = body

    # 6 -------------------------------------------------------------------------------------------
    def test_6_admin_dead_letters_are_the_tenants_and_redrive(self):
        visibility, max_receives = self.lowered_visibility()
        workflow_id, _ = self.create_and_publish(strict_graph(DLQ_EVENT))
        # The same event in another tenant, refused there too: its dead letter is not ours.
        self.create_and_publish(strict_graph(DLQ_EVENT), api=Api(STACK["api_url"], token(STACK, OTHER_TENANT, "editor")))
        ours = expect(self.api.post("/v1/events", {"event": DLQ_EVENT, "payload": {"n": "not a number"}}), 202).json()
        theirs = expect(Api(STACK["api_url"], token(STACK, OTHER_TENANT, "editor")).post(
            "/v1/events", {"event": DLQ_EVENT, "payload": {"n": "theirs"}}), 202).json()
        self.assertEqual(ours["delivery"], "queued", ours)
        if "poison_body" not in self.shared:  # a tenant-less poison message of our own
            self.shared["poison_body"] = f"not json {RUN}"
            self.sqs.send_message(QueueUrl=self.outputs["EventsQueueUrl"], MessageBody=self.shared["poison_body"])

        def both_dead():
            ids = {m["MessageId"] for m in self.dlq_bodies()}
            return {ours["message_id"], theirs["message_id"]} <= ids
        wait_for("both refused messages in the dead-letter queue", both_dead, max_receives * visibility + 120, 1)

        self.assertEqual(self.api.get("/v1/admin/dead-letters").status, 403, "an editor listed dead letters")
        listed = expect(self.admin.get("/v1/admin/dead-letters?limit=100"), 200).json()["items"]
        ids = [i["message_id"] for i in listed]
        self.assertIn(ours["message_id"], ids, listed)
        self.assertNotIn(theirs["message_id"], ids, "another tenant's dead letter was listed")
        self.assertTrue(all(i.get("event") == DLQ_EVENT for i in listed), f"a message without our tenant was listed: {listed}")
        mine = next(i for i in listed if i["message_id"] == ours["message_id"])
        self.assertEqual(mine["input"], {"n": "not a number"}, mine)
        self.assertGreaterEqual(mine.get("receive_count") or 0, max_receives, mine)
        other = expect(self.other_admin.get("/v1/admin/dead-letters?limit=100"), 200).json()["items"]
        self.assertIn(theirs["message_id"], [i["message_id"] for i in other])
        self.assertNotIn(ours["message_id"], [i["message_id"] for i in other])

        # Fix the cause (a new version without the schema), then redrive: the message starts it.
        expect(self.api.put(f"/v1/workflows/{workflow_id}", {"graph": strict_graph(DLQ_EVENT, strict=False)}), 200)
        expect(self.api.post(f"/v1/workflows/{workflow_id}/versions"), 201)
        redriven = expect(self.admin.post("/v1/admin/dead-letters/redrive", {"message_ids": [ours["message_id"]]}), 200).json()
        self.assertEqual(redriven["redriven"], [ours["message_id"]], redriven)
        after = [i["message_id"] for i in expect(self.admin.get("/v1/admin/dead-letters?limit=100"), 200).json()["items"]]
        self.assertNotIn(ours["message_id"], after)
        self.assertIn(theirs["message_id"], [m["MessageId"] for m in self.dlq_bodies()], "redrive moved another tenant's message")

        def started():
            rows = psql(DB, f"SELECT id FROM executions WHERE tenant_id = {quote(TENANT)} AND workflow_id = {quote(workflow_id)}")
            return rows[0][0] if rows else None
        execution_id = wait_for("the redriven message to start the workflow", started, 60, 0.5)
        doc = wait_execution(self.api, execution_id, 60)
        self.assertEqual(doc["status"], "SUCCEEDED", doc)
        self.assertEqual(doc["output"], {"got": "not a number"}, doc)
        log(f"redriven message started {execution_id}: {doc['output']}")

    # 7 -------------------------------------------------------------------------------------------
    def test_7_init_error_shows_on_the_execution(self):
        """The http function with an invalid WEFT_SECRETS_KEY exits during init (its main returns
        the config error): the invocation is Runtime.InitError and the execution fails with it.
        The function's environment is put back afterwards."""
        peer = Peer()
        self.addCleanup(peer.close)
        workflow_id, _ = self.create_and_publish(http_graph(peer.url))
        ok = wait_execution(self.api, expect(self.api.post(f"/v1/workflows/{workflow_id}/executions", {"input": {}}), 201).json()["id"])
        self.assertEqual(ok["status"], "SUCCEEDED", ok)
        self.assertEqual(ok["output"], {"status": 200}, ok)

        name = STACK["functions"]["Http"]
        original = self.lam.get_function_configuration(FunctionName=name)["Environment"]["Variables"]
        broken = dict(original, WEFT_SECRETS_KEY="not base64!")

        def set_env(variables):
            self.lam.update_function_configuration(FunctionName=name, Environment={"Variables": variables})
            wait_for(f"{name} to be updated", lambda: self.lam.get_function_configuration(FunctionName=name)
                     .get("LastUpdateStatus") == "Successful", 60, 0.2)
        set_env(broken)
        self.addCleanup(set_env, original)

        # The function itself, invoked directly: Runtime.InitError.
        direct = self.lam.invoke(FunctionName=name, Payload=b"{}")
        doc = json.loads(direct["Payload"].read())
        self.assertEqual(direct.get("FunctionError"), "Unhandled", doc)
        self.assertEqual(doc.get("errorType"), "Runtime.InitError", doc)
        # The bootstrap's own words (the config error on stderr) are not in the answer: its main
        # returns the error and exits without posting /runtime/init/error, and LocalStack passes
        # no logs on its startup-error path (localstack/README.md, Limits).
        log(f"direct invoke of {name}: {doc}")

        started = time.monotonic()
        failed = expect(self.api.post(f"/v1/workflows/{workflow_id}/executions", {"input": {}}), 201).json()
        doc = wait_execution(self.api, failed["id"], 180, 0.5)
        log(f"execution with the broken function: {doc['status']} error={doc.get('error')!r} "
            f"cause={str(doc.get('cause'))[:300]!r} after {time.monotonic() - started:.1f} s")
        self.assertEqual(doc["status"], "FAILED", doc)
        node = next((n for n in doc.get("nodes") or [] if n.get("node_id") == "call"), {})
        shown = json.dumps([doc.get("error"), doc.get("cause"), node])
        self.assertIn("Runtime.InitError", shown, doc)

    # 8, 9 ----------------------------------------------------------------------------------------
    def express_workflow(self) -> str:
        if "express_id" not in self.shared:
            graph = strict_graph(f"e2e.{RUN}.express", strict=False)
            graph.pop("settings")
            graph["id"] = f"e2e-express-{RUN}"
            workflow_id, published = self.create_and_publish(graph)
            self.assertEqual(published["workflow_type"], "EXPRESS", published)
            self.shared["express_id"] = workflow_id
        return self.shared["express_id"]

    def test_8_express_wait_true(self):
        """POST .../executions?wait=true on an EXPRESS workflow: StartSyncExecution."""
        workflow_id = self.express_workflow()
        answer = self.api.post(f"/v1/workflows/{workflow_id}/executions?wait=true", {"input": {"n": 1}})
        if answer.status == 503:
            self.fail("?wait=true answered 503: the api's aws-sdk-sfn adds StartSyncExecution's `sync-` host "
                      "prefix to the endpoint LocalStack gives the function (AWS_ENDPOINT_URL=http://127.0.0.1:4566), "
                      "so it calls http://sync-127.0.0.1:4566, which does not resolve (boto3 with "
                      "inject_host_prefix=False reaches LocalStack's StartSyncExecution fine). On AWS the prefixed "
                      f"host exists. Body: {answer.text()[:300]}")
        doc = expect(answer, 200).json()
        self.assertEqual((doc["status"], doc.get("output")), ("SUCCEEDED", {"got": 1}), doc)

    # A known, open defect (issue 13's closing note): kept as an expected failure so that it is
    # reported as such on every run, and turns into an "unexpected success" the day it is fixed.
    @unittest.expectedFailure
    def test_9_async_express_execution_ends(self):
        """A workflow the compiler makes EXPRESS, started asynchronously (POST .../executions
        without ?wait=true, as queue and cron triggers start too), must end as SUCCEEDED.

        Step Functions keeps no history of EXPRESS executions and answers DescribeExecution,
        GetExecutionHistory and ListExecutions with InvalidArn / StateMachineTypeNotSupported
        (AWS documents this; LocalStack 2026.3.0 does the same), and sends EventBridge status
        changes for STANDARD workflows only, so neither the recorder nor a read can learn how
        it ended."""
        workflow_id = self.express_workflow()
        started = expect(self.api.post(f"/v1/workflows/{workflow_id}/executions", {"input": {"n": 2}}), 201).json()
        try:
            doc = wait_execution(self.api, started["id"], 30, 0.5)
        except AssertionError:
            _, _, arn = self.execution_row(started["id"])
            self.fail(f"the asynchronous EXPRESS execution {started['id']} is still RUNNING after 30 s: Weft cannot "
                      f"read how {arn} ended (no DescribeExecution, GetExecutionHistory or status-change event for "
                      "EXPRESS). Asynchronous starts of EXPRESS workflows (the API without ?wait=true, queue and "
                      "cron triggers) are never recorded, on AWS either.")
        self.assertEqual(doc["status"], "SUCCEEDED", doc)

if __name__ == "__main__":
    unittest.main(verbosity=2)
