"""Drives Weft's Step Functions endpoint with boto3, a real third-party client.

Usage: python3 boto3_client.py http://127.0.0.1:PORT ACCESS_KEY_ID SECRET_ACCESS_KEY
Prints one line per check and exits non-zero on the first failure. The endpoint accepts only
requests signed (SigV4) with those credentials.
"""

import json
import sys
import time

import boto3
from botocore.config import Config

from botocore.exceptions import ClientError

ENDPOINT, ACCESS_KEY_ID, SECRET_ACCESS_KEY = sys.argv[1:4]
ROLE = "arn:aws:iam::123456789012:role/weft"


def client(access_key_id=ACCESS_KEY_ID, secret_access_key=SECRET_ACCESS_KEY):
    # StartSyncExecution carries the modeled host prefix "sync-"; a custom endpoint must not get it.
    return boto3.client(
        "stepfunctions",
        endpoint_url=ENDPOINT,
        region_name="us-east-1",
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        config=Config(inject_host_prefix=False, retries={"max_attempts": 1}),
    )


sfn = client()


def check(cond, what):
    if not cond:
        print(f"FAIL: {what}")
        sys.exit(1)
    print(f"ok: {what}")


def expect_error(exc_class, fn, what):
    try:
        fn()
    except exc_class as e:
        check(True, f"{what} -> {e.response['Error']['Code']}")
        return
    check(False, f"{what} raised {exc_class.__name__}")


definition = {
    "StartAt": "Hello",
    "States": {"Hello": {"Type": "Pass", "Parameters": {"greeting.$": "States.Format('hello {}', $.who)"}, "End": True}},
}
created = sfn.create_state_machine(name="boto", definition=json.dumps(definition), roleArn=ROLE, publish=True)
arn = created["stateMachineArn"]
check(arn.endswith(":stateMachine:boto"), "create_state_machine returns the ARN")
check(created["stateMachineVersionArn"] == arn + ":1", "publish=True creates version 1")

described = sfn.describe_state_machine(stateMachineArn=arn)
check(json.loads(described["definition"]) == definition, "describe_state_machine returns the definition")
check(hasattr(described["creationDate"], "year"), "timestamps parse as datetimes")

alias = sfn.create_state_machine_alias(
    name="live", routingConfiguration=[{"stateMachineVersionArn": arn + ":1", "weight": 100}]
)["stateMachineAliasArn"]
started = sfn.start_execution(stateMachineArn=alias, name="first", input=json.dumps({"who": "boto3"}))
exec_arn = started["executionArn"]
check(exec_arn.endswith(":execution:boto:first"), "start_execution returns the execution ARN")

for _ in range(500):
    d = sfn.describe_execution(executionArn=exec_arn)
    if d["status"] != "RUNNING":
        break
    time.sleep(0.01)
check(d["status"] == "SUCCEEDED", "the execution succeeds")
check(json.loads(d["output"]) == {"greeting": "hello boto3"}, "the output is the Pass state's")
check(d["stateMachineAliasArn"] == alias, "describe_execution names the alias")

pages = sfn.get_paginator("get_execution_history").paginate(executionArn=exec_arn, PaginationConfig={"PageSize": 2})
events = [e for p in pages for e in p["events"]]
check([e["type"] for e in events] == ["ExecutionStarted", "PassStateEntered", "PassStateExited", "ExecutionSucceeded"],
      "the paginator reads the whole history")
listed = sfn.list_executions(stateMachineArn=arn, statusFilter="SUCCEEDED")["executions"]
check([e["executionArn"] for e in listed] == [exec_arn], "list_executions filters by status")

expect_error(sfn.exceptions.ExecutionAlreadyExists,
             lambda: sfn.start_execution(stateMachineArn=arn, name="first", input="{}"),
             "the same name with another input")
expect_error(sfn.exceptions.ExecutionDoesNotExist,
             lambda: sfn.describe_execution(executionArn=exec_arn + "-nope"), "an unknown execution")
expect_error(sfn.exceptions.StateMachineDoesNotExist,
             lambda: sfn.start_execution(stateMachineArn=arn + "-nope"), "an unknown state machine")
expect_error(sfn.exceptions.InvalidArn, lambda: sfn.describe_state_machine(stateMachineArn="nope"), "a malformed ARN")
expect_error(sfn.exceptions.InvalidDefinition,
             lambda: sfn.create_state_machine(name="bad", definition="{}", roleArn=ROLE), "an invalid definition")
expect_error(sfn.exceptions.TaskDoesNotExist,
             lambda: sfn.send_task_success(taskToken="no-such-token", output="{}"), "an unknown task token")

express = sfn.create_state_machine(name="boto-express", type="EXPRESS", definition=json.dumps(definition), roleArn=ROLE)
sync = sfn.start_sync_execution(stateMachineArn=express["stateMachineArn"], input=json.dumps({"who": "sync"}))
check(sync["status"] == "SUCCEEDED" and json.loads(sync["output"]) == {"greeting": "hello sync"},
      "start_sync_execution runs an EXPRESS machine to completion")

wait = sfn.create_state_machine(
    name="boto-wait", roleArn=ROLE,
    definition=json.dumps({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 600, "End": True}}}),
)
long_arn = sfn.start_execution(stateMachineArn=wait["stateMachineArn"])["executionArn"]
sfn.stop_execution(executionArn=long_arn, error="Boto.Stop", cause="test")
stopped = sfn.describe_execution(executionArn=long_arn)
check(stopped["status"] == "ABORTED" and stopped["error"] == "Boto.Stop", "stop_execution aborts")
redriven = sfn.redrive_execution(executionArn=long_arn)
check("redriveDate" in redriven, "redrive_execution restarts an aborted execution")
check(sfn.describe_execution(executionArn=long_arn)["redriveCount"] == 1, "redriveCount is 1")

# Authentication: only requests signed with the configured credentials run.
def expect_refused(fn, code, status, what):
    try:
        fn()
    except ClientError as e:
        got = (e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"])
        check(got == (code, status), f"{what} -> {got}")
        return
    check(False, f"{what} was refused")


expect_refused(lambda: client(access_key_id="AKIDSTRANGER0000").list_executions(stateMachineArn=wait["stateMachineArn"]),
               "UnrecognizedClientException", 400, "an unknown access key id")
expect_refused(lambda: client(secret_access_key="not-the-secret").stop_execution(executionArn=exec_arn),
               "InvalidSignatureException", 400, "a wrong secret")

# A signature replayed with another body: the hook rewrites the body after botocore signed it.
victim = sfn.start_execution(stateMachineArn=wait["stateMachineArn"], name="victim")["executionArn"]
replayer = client()


def swap_body(request, **kwargs):
    request.body = json.dumps({"executionArn": victim}).encode()
    del request.headers["Content-Length"]  # the headers are an email.message: set appends
    request.headers["Content-Length"] = str(len(request.body))


replayer.meta.events.register("before-send.stepfunctions.StopExecution", swap_body)
expect_refused(lambda: replayer.stop_execution(executionArn=long_arn + "-other"),
               "InvalidSignatureException", 400, "a signature computed for another body")
check(sfn.describe_execution(executionArn=victim)["status"] == "RUNNING", "the replay did not stop the execution")


def unsigned(request, **kwargs):
    for name in ("Authorization", "X-Amz-Date"):
        if name in request.headers:
            del request.headers[name]


anonymous = client()
anonymous.meta.events.register("before-send.stepfunctions.ListStateMachines", unsigned)
expect_refused(anonymous.list_state_machines, "MissingAuthenticationTokenException", 403, "an unsigned request")

sfn.stop_execution(executionArn=victim)
sfn.stop_execution(executionArn=long_arn)
print("ALL OK")
