//! Lowering rules, one small graph each, checked at the JSON pointers that matter.

// Tests fail loudly on unexpected errors; that is what unwrap is for here.
#![allow(clippy::unwrap_used)]

use compiler::{CompileOptions, Compiled, WorkflowType};
use serde_json::{Value, json};

fn compile_with(nodes: Value, edges: Value, settings: Value, options: &CompileOptions) -> Compiled {
    let g = json!({"format": "weft/v1", "id": "t", "name": "t", "settings": settings, "nodes": nodes, "edges": edges});
    let graph = compiler::parse(&g.to_string()).expect("parses");
    compiler::compile(&graph, options).unwrap_or_else(|d| panic!("{d:#?}"))
}

fn compile(nodes: Value, edges: Value) -> Compiled {
    compile_with(nodes, edges, json!({}), &CompileOptions::default())
}

/// Asserts the value at each JSON pointer of the ASL.
fn check(c: &Compiled, expected: &[(&str, Value)]) {
    for (pointer, want) in expected {
        let got = c.asl.pointer(pointer).unwrap_or_else(|| panic!("no {pointer} in {:#}", c.asl));
        assert_eq!(got, want, "at {pointer}");
    }
}

fn e(s: &str, t: &str) -> Value {
    json!({"source": s, "target": t})
}

fn eh(s: &str, h: &str, t: &str) -> Value {
    json!({"source": s, "sourceHandle": h, "target": t})
}

fn start() -> Value {
    json!({"id": "start", "type": "start", "data": {}})
}

#[test]
fn start_builds_the_layout_and_its_node_means_the_input() {
    let c = compile(
        json!([start(), {"id": "say", "type": "slack", "data": {"connection": "slack", "text": "Hi {{ nodes.start.name }}", "channel": "{{ input.channel }}"}},
               {"id": "done", "type": "end", "data": {}}]),
        json!([e("start", "say"), e("say", "done")]),
    );
    check(
        &c,
        &[
            ("/StartAt", json!("start")),
            ("/States/start/Parameters", json!({"input.$": "$", "nodes": {}})),
            (
                "/States/say/Parameters/Payload/config",
                json!({"connection": "slack", "text.$": "States.Format('Hi {}', $.input.name)", "channel.$": "$.input.channel"}),
            ),
            ("/States/say/ResultSelector", json!({"value.$": "$.Payload"})),
            ("/States/say/ResultPath", json!("$.nodes.say")),
            ("/States/say/Next", json!("say.output")),
            (
                "/States/say.output",
                json!({"Type": "Pass", "InputPath": "$.nodes.say.value", "ResultPath": "$.nodes.say", "Next": "done.from.say"}),
            ),
            ("/States/done.from.say", json!({"Type": "Succeed", "OutputPath": "$.nodes.say"})),
        ],
    );
    assert_eq!(c.workflow_type, WorkflowType::Express);
    // Compiling is deterministic.
    let again = compile(
        json!([start(), {"id": "say", "type": "slack", "data": {"connection": "slack", "text": "Hi {{ nodes.start.name }}", "channel": "{{ input.channel }}"}},
               {"id": "done", "type": "end", "data": {}}]),
        json!([e("start", "say"), e("say", "done")]),
    );
    assert_eq!(serde_json::to_string(&c.asl).unwrap(), serde_json::to_string(&again.asl).unwrap());
}

#[test]
fn retries_timeouts_and_on_error_continue() {
    let c = compile(
        json!([start(),
               {"id": "call", "type": "http", "timeout_seconds": 20, "on_error": "continue",
                "retry": {"max_attempts": 3, "interval_seconds": 2, "backoff_rate": 1.5, "max_delay_seconds": 10, "jitter": true},
                "data": {"method": "GET", "url": "https://x", "label": "Call the API"}},
               {"id": "done", "type": "end", "data": {"output": "{{ nodes.call }}"}}]),
        json!([e("start", "call"), e("call", "done")]),
    );
    check(
        &c,
        &[
            ("/States/call/TimeoutSeconds", json!(20)),
            ("/States/call/Parameters/Payload/config", json!({"method": "GET", "url": "https://x"})),
            ("/States/call/Retry/0/ErrorEquals/0", json!("Lambda.ServiceException")),
            ("/States/call/Retry/1", json!({"ErrorEquals": ["Config.Invalid", "Secret.NotFound"], "MaxAttempts": 0})),
            (
                "/States/call/Retry/2",
                json!({"ErrorEquals": ["States.ALL"], "IntervalSeconds": 2, "MaxAttempts": 2, "BackoffRate": 1.5, "MaxDelaySeconds": 10, "JitterStrategy": "FULL"}),
            ),
            (
                "/States/call/Catch",
                json!([{"ErrorEquals": ["States.ALL"], "ResultPath": "$.nodes.call", "Next": "call.error"}]),
            ),
            (
                "/States/call.error",
                json!({"Type": "Pass", "Parameters": {"error.$": "$.nodes.call.Error", "cause.$": "$.nodes.call.Cause"}, "ResultPath": "$.nodes.call", "Next": "done"}),
            ),
            (
                "/States/done",
                json!({"Type": "Pass", "Parameters": {"value.$": "$.nodes.call"}, "OutputPath": "$.value", "End": true}),
            ),
        ],
    );
}

#[test]
fn error_edges_catch_to_their_target_and_conditions_continue_through_false() {
    let c = compile(
        json!([start(), {"id": "save", "type": "database", "data": {"connection": "db", "query": "select 1"}},
               {"id": "alert", "type": "slack", "data": {"connection": "slack", "text": "failed: {{ nodes.save.error }}"}},
               {"id": "ok", "type": "end", "data": {}}, {"id": "bad", "type": "end", "data": {"output": "failed"}}]),
        json!([e("start", "save"), e("save", "ok"), eh("save", "error", "alert"), e("alert", "bad")]),
    );
    check(
        &c,
        &[
            ("/States/save/Catch/0/Next", json!("save.error")),
            ("/States/save.error/Next", json!("alert")),
            (
                "/States/alert/Parameters/Payload/config/text.$",
                json!("States.Format('failed: {}', $.nodes.save.error)"),
            ),
            ("/States/bad", json!({"Type": "Pass", "Result": "failed", "End": true})),
        ],
    );
    let c = compile(
        json!([start(), {"id": "c", "type": "condition", "on_error": "continue", "data": {"expression": "input.items.length > 0"}},
               {"id": "yes", "type": "end", "data": {"output": 1}}, {"id": "no", "type": "end", "data": {"output": 0}}]),
        json!([e("start", "c"), eh("c", "true", "yes"), eh("c", "false", "no")]),
    );
    check(
        &c,
        &[
            ("/States/c/Type", json!("Task")),
            ("/States/c/Parameters/Payload/config", json!({"expression": "input.items.length > 0"})),
            (
                "/States/c/Parameters/Payload/scope",
                json!({"input.$": "$.input", "nodes.$": "$.nodes", "start": "start"}),
            ),
            ("/States/c/ResultPath", json!("$.test")),
            ("/States/c/Catch/0/Next", json!("c.error")),
            ("/States/c.error/Next", json!("no")),
            ("/States/c.test/Default", json!("yes")),
            ("/States/c.test/Choices/0/Next", json!("no")),
        ],
    );
}

#[test]
fn native_conditions_and_guards() {
    let c = compile(
        json!([start(), {"id": "c", "type": "condition", "data": {"expression": "input.plan === 'pro' && !(input.trial == null)"}},
               {"id": "yes", "type": "end", "data": {"output": 1}}, {"id": "no", "type": "end", "data": {"output": 0}}]),
        json!([e("start", "c"), eh("c", "true", "yes"), eh("c", "false", "no")]),
    );
    check(
        &c,
        &[
            ("/States/c/Type", json!("Choice")),
            ("/States/c/Default", json!("no")),
            // The guard: `input` itself null would make JavaScript throw.
            ("/States/c/Choices/0/Next", json!("c.js0")),
            (
                "/States/c/Choices/1",
                json!({"And": [
                    {"Variable": "$.input.plan", "IsPresent": true},
                    {"Variable": "$.input.plan", "IsString": true},
                    {"Variable": "$.input.plan", "StringEquals": "pro"},
                    {"Not": {"Or": [
                        {"Not": {"Variable": "$.input.trial", "IsPresent": true}},
                        {"And": [{"Variable": "$.input.trial", "IsPresent": true}, {"Variable": "$.input.trial", "IsNull": true}]}
                    ]}}
                ], "Next": "yes"}),
            ),
            (
                "/States/c.js0/Parameters/Payload/config/expression",
                json!("input.plan === 'pro' && !(input.trial == null)"),
            ),
            ("/States/c.js0.test/Default", json!("yes")),
        ],
    );
    // `index` is always a number: no guard, the rule alone.
    let c = compile(
        json!([start(), {"id": "l", "type": "loop", "data": {"items": "{{ input.xs }}"}},
               {"id": "c", "type": "condition", "parentId": "l", "data": {"expression": "index >= 2"}},
               {"id": "a", "type": "code", "parentId": "l", "data": {"expression": "item"}},
               {"id": "b", "type": "code", "parentId": "l", "data": {"expression": "null"}},
               {"id": "m", "type": "code", "parentId": "l", "data": {"expression": "nodes.a ?? nodes.b"}},
               {"id": "done", "type": "end", "data": {}}]),
        json!([e("start", "l"), e("l", "done"), eh("c", "true", "a"), eh("c", "false", "b"), e("a", "m"), e("b", "m")]),
    );
    check(
        &c,
        &[(
            "/States/l/ItemProcessor/States/c",
            json!({"Type": "Choice", "Choices": [{"And": [
                {"Variable": "$.index", "IsPresent": true},
                {"Variable": "$.index", "IsNumeric": true},
                {"Variable": "$.index", "NumericGreaterThanEquals": 2}
            ], "Next": "a"}], "Default": "b"}),
        )],
    );
}

#[test]
fn switch_cases_keep_order_with_mixed_native_and_javascript() {
    let c = compile(
        json!([start(), {"id": "s", "type": "switch", "data": {"cases": [
                   {"name": "many", "expression": "input.items.length > 10"},
                   {"name": "vip", "expression": "input.tier === 'gold'"}]}},
               {"id": "a", "type": "end", "data": {"output": "many"}},
               {"id": "b", "type": "end", "data": {"output": "vip"}},
               {"id": "d", "type": "end", "data": {"output": "default"}}]),
        json!([e("start", "s"), eh("s", "many", "a"), eh("s", "vip", "b"), eh("s", "default", "d")]),
    );
    check(
        &c,
        &[
            ("/States/s/Type", json!("Task")),
            ("/States/s/Next", json!("s.test")),
            ("/States/s.test/Default", json!("a")),
            ("/States/s.test/Choices/0/Next", json!("s.case1")),
            ("/States/s.case1/Type", json!("Choice")),
            ("/States/s.case1/Choices/1/Next", json!("b")),
            ("/States/s.case1/Default", json!("d")),
            ("/States/s.js1.test/Choices/0/Next", json!("d")),
            ("/States/s.js1.test/Default", json!("b")),
        ],
    );
}

#[test]
fn loops_map_items_and_collect_the_final_node() {
    let c = compile(
        json!([start(),
               {"id": "each", "type": "loop", "data": {"items": "{{ input.orders }}", "concurrency": 3}},
               {"id": "price", "type": "code", "parentId": "each", "data": {"expression": "item.qty * 2"}},
               {"id": "wait", "type": "delay", "parentId": "each", "data": {"seconds": 1.2}},
               {"id": "done", "type": "end", "data": {"output": {"totals": "{{ nodes.each }}", "first": "{{ nodes.each[0] }}"}}}]),
        json!([e("start", "each"), e("each", "done"), e("price", "wait")]),
    );
    check(
        &c,
        &[
            ("/States/each/Type", json!("Map")),
            ("/States/each/ItemsPath", json!("$.input.orders")),
            ("/States/each/MaxConcurrency", json!(3)),
            (
                "/States/each/ItemSelector",
                json!({"input.$": "$.input", "nodes.$": "$.nodes", "item.$": "$$.Map.Item.Value", "index.$": "$$.Map.Item.Index"}),
            ),
            ("/States/each/ItemProcessor/ProcessorConfig/Mode", json!("INLINE")),
            ("/States/each/ItemProcessor/StartAt", json!("price")),
            ("/States/each/ItemProcessor/States/price/Parameters/Payload/scope/item.$", json!("$.item")),
            // A delay passes its predecessor's value through: the iteration returns `price`.
            (
                "/States/each/ItemProcessor/States/wait",
                json!({"Type": "Wait", "Seconds": 2, "End": true, "OutputPath": "$.nodes.price"}),
            ),
            ("/States/each/ResultPath", json!("$.nodes.each")),
            ("/States/done/Parameters/value", json!({"totals.$": "$.nodes.each", "first.$": "$.nodes.each[0]"})),
        ],
    );
}

#[test]
fn parallel_branches_merge_their_nodes_and_the_join_collects_finals() {
    let branch = |id: &str| json!({"id": id, "type": "code", "data": {"expression": "1"}});
    let c = compile(
        json!([start(), {"id": "p", "type": "parallel", "data": {}}, branch("a"), branch("b"), branch("c"), branch("c2"),
               {"id": "j", "type": "join", "data": {}},
               {"id": "use", "type": "slack", "data": {"connection": "slack", "text": "{{ nodes.c.x }} {{ nodes.j.b }}"}},
               {"id": "done", "type": "end", "data": {}}]),
        json!([
            e("start", "p"),
            e("p", "a"),
            e("p", "b"),
            e("p", "c"),
            e("c", "c2"),
            e("a", "j"),
            e("b", "j"),
            e("c2", "j"),
            e("j", "use"),
            e("use", "done")
        ]),
    );
    check(
        &c,
        &[
            ("/States/p/Type", json!("Parallel")),
            ("/States/p/Branches/0/StartAt", json!("a")),
            ("/States/p/Branches/0/States/a.output/End", json!(true)),
            ("/States/p/Branches/2/States/c.output/Next", json!("c2")),
            (
                "/States/p/ResultSelector",
                json!({"input.$": "$[0].input", "nodes.$": "States.JsonMerge(States.JsonMerge($[0].nodes, $[1].nodes, false), $[2].nodes, false)"}),
            ),
            ("/States/p/ResultPath", json!("$")),
            ("/States/p/Next", json!("j")),
            (
                "/States/j",
                json!({"Type": "Pass", "Parameters": {"a.$": "$.nodes.a", "b.$": "$.nodes.b", "c2.$": "$.nodes.c2"}, "ResultPath": "$.nodes.j", "Next": "use"}),
            ),
        ],
    );
}

#[test]
fn delays_workflows_approvals_and_the_workflow_type() {
    let mut options = CompileOptions::default();
    options.workflows.insert("child".into(), "arn:aws:states:us-east-1:1:stateMachine:child".into());
    options.functions.insert("approval", "arn:aws:lambda:us-east-1:1:function:approve");
    let c = compile_with(
        json!([start(),
               {"id": "w1", "type": "delay", "data": {"seconds": "{{ input.wait }}"}},
               {"id": "w2", "type": "delay", "data": {"until": "2030-01-01T09:00:00Z"}},
               {"id": "ok", "type": "approval", "data": {"message": "go? {{ secrets.X }}", "timeout_seconds": 3600}},
               {"id": "sub", "type": "workflow", "data": {"workflow_id": "child", "input": "{{ nodes.ok }}"}},
               {"id": "sub2", "type": "workflow", "data": {"workflow_id": "other-flow"}},
               {"id": "done", "type": "end", "data": {}}]),
        json!([e("start", "w1"), e("w1", "w2"), e("w2", "ok"), e("ok", "sub"), e("sub", "sub2"), e("sub2", "done")]),
        json!({"timeout_seconds": 7200}),
        &options,
    );
    check(
        &c,
        &[
            ("/TimeoutSeconds", json!(7200)),
            ("/States/w1", json!({"Type": "Wait", "SecondsPath": "$.input.wait", "Next": "w2"})),
            ("/States/w2", json!({"Type": "Wait", "Timestamp": "2030-01-01T09:00:00Z", "Next": "ok"})),
            ("/States/ok/Resource", json!("arn:aws:states:::lambda:invoke.waitForTaskToken")),
            ("/States/ok/Parameters/FunctionName", json!("arn:aws:lambda:us-east-1:1:function:approve")),
            ("/States/ok/Parameters/Payload/task_token.$", json!("$$.Task.Token")),
            ("/States/ok/Parameters/Payload/config/message", json!("go? {{ secrets.X }}")),
            ("/States/ok/TimeoutSeconds", json!(3600)),
            ("/States/ok/ResultPath", json!("$.nodes.ok")),
            ("/States/ok/Next", json!("sub")),
            ("/States/sub/Resource", json!("arn:aws:states:::states:startExecution.sync:2")),
            (
                "/States/sub/Parameters",
                json!({"StateMachineArn": "arn:aws:states:us-east-1:1:stateMachine:child", "Input.$": "$.nodes.ok"}),
            ),
            ("/States/sub/ResultSelector", json!({"value.$": "$.Output"})),
            ("/States/sub2/Parameters", json!({"StateMachineArn": "${Workflow_other_flow_Arn}", "Input": {}})),
        ],
    );
    assert!(c.asl.pointer("/States/ok/ResultSelector").is_none());
    assert!(c.asl.pointer("/States/sub/Retry").is_none(), "no Lambda retries on a sub-workflow");
    assert_eq!(c.workflow_type, WorkflowType::Standard);
    assert_eq!(c.standard_reasons.len(), 6, "{:?}", c.standard_reasons);
}

#[test]
fn state_names_stay_within_80_characters() {
    let long = "a".repeat(64);
    let end = "e".repeat(64);
    let c = compile(
        json!([start(), {"id": long, "type": "code", "data": {"expression": "1"}},
               {"id": "c", "type": "switch", "data": {"cases": [{"name": "x", "expression": "input.a.length"}]}},
               {"id": end, "type": "end", "data": {}}]),
        json!([e("start", &long), e(&long, "c"), eh("c", "x", &end), eh("c", "default", &end)]),
    );
    fn names(m: &Value, out: &mut Vec<String>) {
        for (k, s) in m["States"].as_object().unwrap() {
            out.push(k.clone());
            for b in s.get("Branches").and_then(Value::as_array).into_iter().flatten() {
                names(b, out);
            }
        }
    }
    let mut all = Vec::new();
    names(&c.asl, &mut all);
    assert!(all.iter().all(|n| n.chars().count() <= 80), "{all:?}");
    assert!(all.contains(&format!("{end}.from.2")), "{all:?}");
}

#[test]
fn conditions_on_nodes_without_stored_output_run_in_javascript() {
    // `nodes.wait` (a delay) is not in the code function's `nodes`: JavaScript decides.
    let c = compile(
        json!([start(), {"id": "wait", "type": "delay", "data": {"seconds": 1}},
               {"id": "c", "type": "condition", "data": {"expression": "nodes.wait === undefined && item === undefined"}},
               {"id": "yes", "type": "end", "data": {"output": 1}}, {"id": "no", "type": "end", "data": {"output": 0}}]),
        json!([e("start", "wait"), e("wait", "c"), eh("c", "true", "yes"), eh("c", "false", "no")]),
    );
    check(
        &c,
        &[
            ("/States/c/Type", json!("Task")),
            ("/States/c/Parameters/Payload/config/expression", json!("nodes.wait === undefined && item === undefined")),
        ],
    );
    // The start node is the input.
    let c = compile(
        json!([start(), {"id": "c", "type": "condition", "data": {"expression": "nodes.start.n > 2"}},
               {"id": "yes", "type": "end", "data": {"output": 1}}, {"id": "no", "type": "end", "data": {"output": 0}}]),
        json!([e("start", "c"), eh("c", "true", "yes"), eh("c", "false", "no")]),
    );
    check(
        &c,
        &[
            ("/States/c/Type", json!("Choice")),
            ("/States/c/Choices/1/And/2", json!({"Variable": "$.input.n", "NumericGreaterThan": 2})),
        ],
    );
}

#[test]
fn react_flow_ids_use_bracket_paths_and_keep_native_rules() {
    // Ids as React Flow editors produce them: "1", "node-1", a UUID, "dndnode_0".
    let text = include_str!("fixtures/react-flow-ids.json");
    let graph = compiler::parse(text).expect("parses");
    let c = compiler::compile(&graph, &CompileOptions::default()).unwrap_or_else(|d| panic!("{d:#?}"));
    let cond = "3f2b9c1e-7d4a-4c1b-9e2f-0a1b2c3d4e5f";
    check(
        &c,
        &[
            ("/StartAt", json!("1")),
            ("/States/1/Next", json!("node-1")),
            ("/States/node-1/ResultPath", json!("$.nodes['node-1']")),
            (
                "/States/node-1.output",
                json!({"Type": "Pass", "InputPath": "$.nodes['node-1'].value", "ResultPath": "$.nodes['node-1']", "Next": "dndnode_0"}),
            ),
            (
                "/States/node-1/Catch",
                json!([{"ErrorEquals": ["States.ALL"], "ResultPath": "$.nodes['node-1']", "Next": "node-1.error"}]),
            ),
            (
                "/States/node-1.error/Parameters",
                json!({"error.$": "$.nodes['node-1'].Error", "cause.$": "$.nodes['node-1'].Cause"}),
            ),
            ("/States/dndnode_0/Branches/1/States/2/ResultPath", json!("$.nodes['2']")),
            (
                "/States/j-1",
                json!({"Type": "Pass", "Parameters": {"a-1.$": "$.nodes['a-1']", "2.$": "$.nodes['2']"}, "ResultPath": "$.nodes['j-1']", "Next": cond}),
            ),
            // `nodes["node-1"].total > 5` lowers to a native rule on the bracket path.
            (
                &format!("/States/{cond}/Choices/1"),
                json!({"And": [
                    {"Variable": "$.nodes['node-1'].total", "IsPresent": true},
                    {"Variable": "$.nodes['node-1'].total", "IsNumeric": true},
                    {"Variable": "$.nodes['node-1'].total", "NumericGreaterThan": 5}
                ], "Next": "node-7"}),
            ),
            (&format!("/States/{cond}/Choices/0/Next"), json!(format!("{cond}.js0"))),
            (&format!("/States/{cond}/Default"), json!("node-8")),
            (
                "/States/node-7/Parameters/value",
                json!({"size": "big", "total.$": "$.nodes['node-1'].total", "first.$": "$.nodes['node-1'].items[0]",
                       "plus_one.$": "$.nodes['j-1']['a-1']", "n.$": "$.nodes['2']", "start.$": "$.input.n"}),
            ),
            (
                "/States/node-8/Parameters/value.$",
                json!("States.Format('small: {} from {}', $.nodes['node-1'].total, $.input.n)"),
            ),
        ],
    );
    // `cli/tests/run_cli.rs` runs this graph on the engine, which reads these bracket paths.
}

#[test]
fn secret_names_lists_what_function_nodes_resolve() {
    let g = json!({"format": "weft/v1", "id": "t", "name": "t", "nodes": [
        {"id": "start", "type": "start", "data": {}},
        {"id": "a", "type": "http", "data": {"method": "POST", "url": "https://x/{{ secrets.PATH }}/{{ input.id }}",
            "headers": {"Authorization": "Bearer {{secrets.TOKEN}}"}, "body": {"deep": ["{{ secrets.BODY }}"]}}},
        {"id": "b", "type": "code", "data": {"source": "return '{{ secrets.IN_JS }}'"}},
        {"id": "done", "type": "end", "data": {"output": "{{ secrets.NOT_A_FUNCTION }}"}}],
        "edges": [{"id": "e1", "source": "start", "target": "a"}, {"id": "e2", "source": "a", "target": "b"},
                  {"id": "e3", "source": "b", "target": "done"}]});
    let graph = compiler::parse(&g.to_string()).unwrap();
    let names: Vec<String> = compiler::secret_names(&graph).into_iter().collect();
    assert_eq!(names, ["BODY", "PATH", "TOKEN"]);
    // The secret templates stay verbatim in the state machine: values never enter its state.
    let c = compiler::compile(&graph, &CompileOptions::default()).unwrap();
    check(&c, &[("/States/a/Parameters/Payload/config/headers/Authorization", json!("Bearer {{secrets.TOKEN}}"))]);
    // Where the graph put them, so the function resolves secrets there only (never in text that
    // data carried in, such as `{{ input.id }}`'s value).
    check(
        &c,
        &[(
            "/States/a/Parameters/Payload/secrets",
            json!({
        "/url": ["PATH"], "/headers/Authorization": ["TOKEN"], "/body/deep/0": ["BODY"]}),
        )],
    );
    assert!(c.asl.pointer("/States/b/Parameters/Payload/secrets").is_none(), "JavaScript is not templated");
}

#[test]
fn a_failed_child_workflow_fails_with_the_childs_own_error() {
    // Unhandled: the child's description (the cause of `States.TaskFailed`) is parsed, defaults
    // merged in, and a Fail state ends the parent with the child's error and cause.
    let c = compile(
        json!([start(), {"id": "sub", "type": "workflow", "data": {"workflow_id": "child", "input": {"n": 1}}},
               {"id": "done", "type": "end", "data": {}}]),
        json!([e("start", "sub"), e("sub", "done")]),
    );
    check(
        &c,
        &[
            ("/States/sub/Resource", json!("arn:aws:states:::states:startExecution.sync:2")),
            (
                "/States/sub/Catch",
                json!([{"ErrorEquals": ["States.TaskFailed"], "ResultPath": "$.nodes.sub", "Next": "sub.child_failed"}]),
            ),
            ("/States/sub.child_failed/Type", json!("Pass")),
            ("/States/sub.child_failed/Next", json!("sub.child_error")),
            (
                "/States/sub.child_error",
                json!({"Type": "Fail", "ErrorPath": "$.nodes.sub.child.Error", "CausePath": "$.nodes.sub.child.Cause"}),
            ),
        ],
    );
    // Handled by an error edge: the handler gets the child's error, cause and execution ARN;
    // other failures (a timeout, a missing state machine) take the usual `.error` path.
    let c = compile(
        json!([start(), {"id": "sub", "type": "workflow", "data": {"workflow_id": "child"}},
               {"id": "oops", "type": "end", "data": {"output": "{{ nodes.sub }}"}},
               {"id": "done", "type": "end", "data": {}}]),
        json!([e("start", "sub"), e("sub", "done"), eh("sub", "error", "oops")]),
    );
    check(
        &c,
        &[
            (
                "/States/sub/Catch",
                json!([
                    {"ErrorEquals": ["States.TaskFailed"], "ResultPath": "$.nodes.sub", "Next": "sub.child_failed"},
                    {"ErrorEquals": ["States.ALL"], "ResultPath": "$.nodes.sub", "Next": "sub.error"}
                ]),
            ),
            (
                "/States/sub.child_error/Parameters",
                json!({"error.$": "$.nodes.sub.child.Error", "cause.$": "$.nodes.sub.child.Cause",
                       "execution_arn.$": "$.nodes.sub.child.ExecutionArn"}),
            ),
            ("/States/sub.child_error/Next", json!("oops")),
        ],
    );
}

#[test]
fn an_agent_is_a_loop_of_turns_and_tool_calls() {
    let tools = json!([
        {"name": "weather", "description": "Weather of a city", "type": "http", "method": "GET",
         "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
         "url": "https://api.example.com/weather/{{ args.city }}", "headers": {"authorization": "Bearer {{ secrets.WX }}"}},
        {"name": "double", "type": "code", "expression": "args.n * 2", "requires_approval": true},
    ]);
    let c = compile(
        json!([start(), {"id": "a", "type": "agent", "data": {"model": "m", "instructions": "Help {{ input.name }}.",
                                                             "input": "{{ input.q }}", "tools": tools, "max_steps": 3}},
               {"id": "done", "type": "end", "data": {}}]),
        json!([e("start", "a"), e("a", "done")]),
    );
    let b = "/States/a/Branches/0/States";
    let iteration = format!("{b}/a.tools/ItemProcessor/States");
    let at = |rest: &str| format!("{b}/{rest}");
    check(
        &c,
        &[
            ("/States/a/Type", json!("Parallel")),
            ("/States/a/Branches/0/StartAt", json!("a.start")),
            ("/States/a/ResultSelector", json!({"value.$": "$[0]"})),
            ("/States/a/ResultPath", json!("$.nodes.a")),
            ("/States/a/Next", json!("a.output")),
            (
                "/States/a.output",
                json!({"Type": "Pass", "InputPath": "$.nodes.a.value", "ResultPath": "$.nodes.a", "Next": "done.from.a"}),
            ),
            (
                &at("a.start"),
                json!({"Type": "Pass", "Parameters": {"turn": 0}, "ResultPath": "$.nodes.a", "Next": "a.turn"}),
            ),
            (&at("a.turn/Parameters/Payload/state.$"), json!("$.nodes.a")),
            (&at("a.turn/Parameters/Payload/config/instructions.$"), json!("States.Format('Help {}.', $.input.name)")),
            // The model sees the declarations only, never a tool's config.
            (
                &at("a.turn/Parameters/Payload/config/tools"),
                json!([{"name": "weather", "description": "Weather of a city",
                        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}},
                       {"name": "double", "description": "", "parameters": {"type": "object", "properties": {}}}]),
            ),
            (&at("a.turn/Retry/1/ErrorEquals"), json!(["Llm.RateLimited", "Llm.Provider"])),
            (&at("a.turn.output/InputPath"), json!("$.nodes.a.value")),
            (&at("a.route/Choices/0/Next"), json!("a.max_steps")),
            (&at("a.route/Choices/0/And/1"), json!({"Variable": "$.nodes.a.turn", "NumericGreaterThanEquals": 3})),
            (
                &at("a.route/Choices/1"),
                json!({"Variable": "$.nodes.a.status", "StringEquals": "tools", "Next": "a.tools"}),
            ),
            (&at("a.route/Default"), json!("a.done")),
            (&at("a.max_steps/Error"), json!("Agent.MaxSteps")),
            (&at("a.tools/ItemsPath"), json!("$.nodes.a.calls")),
            (&at("a.tools/ResultPath"), json!("$.nodes.a.results")),
            (&at("a.tools/Next"), json!("a.turn")),
            (&at("a.tools/ItemProcessor/StartAt"), json!("a.call")),
            (&format!("{iteration}/a.call/Default"), json!("a.call.unknown")),
            (
                &format!("{iteration}/a.call/Choices/0"),
                json!({"Variable": "$.call.key", "StringEquals": "weather", "Next": "a.call.weather"}),
            ),
            (&format!("{iteration}/a.call/Choices/1/Next"), json!("a.call.double.approval")),
            (&format!("{iteration}/a.call.unknown/Parameters/error"), json!("Agent.UnknownTool")),
            // `{{ args.X }}` is the call's argument; the secret stays for the function to resolve.
            (
                &format!("{iteration}/a.call.weather/Parameters/Payload/config/url.$"),
                json!("States.Format('https://api.example.com/weather/{}', $.call.args.city)"),
            ),
            (
                &format!("{iteration}/a.call.weather/Parameters/Payload/secrets"),
                json!({"/headers/authorization": ["WX"]}),
            ),
            (
                &format!("{iteration}/a.call.weather/Retry/1/ErrorEquals"),
                json!(["Http.Timeout", "Http.Connect", "Http.Status5xx"]),
            ),
            (&format!("{iteration}/a.call.weather/Catch/0/Next"), json!("a.call.failed")),
            (&format!("{iteration}/a.call.weather/Next"), json!("a.call.ok")),
            (&format!("{iteration}/a.call.double/Parameters/Payload/scope/args.$"), json!("$.call.args")),
            (&format!("{iteration}/a.call.double/Parameters/Payload/config"), json!({"expression": "args.n * 2"})),
            (
                &format!("{iteration}/a.call.double.approval/Resource"),
                json!("arn:aws:states:::lambda:invoke.waitForTaskToken"),
            ),
            (&format!("{iteration}/a.call.double.approval/Catch/0/Next"), json!("a.call.failed")),
            (&format!("{iteration}/a.call.ok/Parameters/result.$"), json!("$.out.value")),
            (&format!("{iteration}/a.call.failed/Parameters/error.$"), json!("$.failure.Error")),
            (&at("a.done"), json!({"Type": "Pass", "InputPath": "$.nodes.a.output", "End": true})),
        ],
    );
    // A tool that needs approval makes the workflow STANDARD.
    assert_eq!(c.workflow_type, WorkflowType::Standard, "{:?}", c.standard_reasons);
}

#[test]
fn multi_agent_strategies_chain_branch_or_delegate() {
    let agents = json!([{"name": "r", "model": "m", "instructions": "Research."},
                        {"name": "w", "model": "m", "instructions": "Write.", "description": "Writes"}]);
    let node = |strategy: &str| {
        json!({"id": "team", "type": "multi_agent", "data": {"strategy": strategy, "task": "{{ input.topic }}",
                                                             "agents": agents, "max_tokens": 3000}})
    };
    let graph = |strategy: &str| {
        compile(
            json!([start(), node(strategy), {"id": "done", "type": "end", "data": {}}]),
            json!([e("start", "team"), e("team", "done")]),
        )
    };
    // Sequential: the second agent starts from the first one's answer, agents and totals.
    let b = "/States/team/Branches/0/States";
    let at = |rest: &str| format!("{b}/{rest}");
    let c = graph("sequential");
    check(
        &c,
        &[
            ("/States/team/Branches/0/StartAt", json!("team.r.start")),
            (&at("team.r.start/Next"), json!("team.r.turn")),
            (&at("team.r.route/Default"), json!("team.w.start")),
            (
                &at("team.w.start/Parameters"),
                json!({"turn": 0, "input.$": "$.nodes.team.output.answer", "prior.$": "$.nodes.team.output.agents",
                       "carried.$": "$.nodes.team.output.total"}),
            ),
            (&at("team.r.turn/Parameters/Payload/config/last"), json!(false)),
            (&at("team.w.turn/Parameters/Payload/config/last"), json!(true)),
            (&at("team.w.turn/Parameters/Payload/config/agent"), json!("w")),
            (&at("team.w.route/Default"), json!("team.w.done")),
        ],
    );
    // Parallel: one branch per agent, each with its share of the budget, then the aggregator.
    let c = graph("parallel");
    check(
        &c,
        &[
            ("/States/team/Branches/0/StartAt", json!("team.agents")),
            (&at("team.agents/Type"), json!("Parallel")),
            (&at("team.agents/Branches/1/StartAt"), json!("team.w.start")),
            (&at("team.agents/Branches/1/States/team.w.start/Parameters"), json!({"turn": 0, "budget": 1000})),
            (
                &at("team.agents/Branches/1/States/team.w.done"),
                json!({"Type": "Pass", "InputPath": "$.nodes.team.output", "End": true}),
            ),
            (&at("team.agents/ResultSelector"), json!({"turn": 0, "prior.$": "$"})),
            (&at("team.agents/Next"), json!("team.aggregator.turn")),
            (&at("team.aggregator.turn/Parameters/Payload/config/role"), json!("aggregator")),
            (&at("team.aggregator.route/Default"), json!("team.aggregator.done")),
        ],
    );
    // Supervisor: each transfer_to_<name> runs that agent's loop inside the tool-call Map.
    let c = graph("supervisor");
    let iteration = format!("{b}/team.supervisor.tools/ItemProcessor/States");
    check(
        &c,
        &[
            ("/States/team/Branches/0/StartAt", json!("team.supervisor.start")),
            (
                &at("team.supervisor.turn/Parameters/Payload/config/agents"),
                json!([{"name": "r", "description": ""}, {"name": "w", "description": "Writes"}]),
            ),
            (
                &format!("{iteration}/team.supervisor.call/Choices/1"),
                json!({"Variable": "$.call.key", "StringEquals": "transfer_to_w", "Next": "team.w.start"}),
            ),
            (
                &format!("{iteration}/team.w.start/Parameters"),
                json!({"turn": 0, "input.$": "$.call.args.task", "budget.$": "$.call.budget"}),
            ),
            (&format!("{iteration}/team.w.start/ResultPath"), json!("$.agent")),
            (&format!("{iteration}/team.w.turn/Parameters/Payload/state.$"), json!("$.agent")),
            (&format!("{iteration}/team.w.turn/Catch/0/Next"), json!("team.w.failed")),
            (&format!("{iteration}/team.w.done/Parameters/result.$"), json!("$.agent.output")),
        ],
    );
}
