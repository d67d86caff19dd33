//! Lowering a validated graph to ASL (JSONPath query language).
//!
//! # State layout
//!
//! The execution state is always `{"input": <execution input>, "nodes": {"<id>": <output>}}`,
//! plus `item` and `index` inside a loop body. The first state (named after the `start` node)
//! builds it: `Parameters: {"input.$": "$", "nodes": {}}`. Every node's output is stored, plain,
//! at `$.nodes.<id>`:
//!
//! - a function Task (`lambda:invoke`) keeps `{"value.$": "$.Payload"}` (ResultSelector) at
//!   `$.nodes.<id>` (ResultPath), then a Pass named `<id>.output` moves the value up with
//!   `InputPath: $.nodes.<id>.value, ResultPath: $.nodes.<id>`. ResultSelector can only build an
//!   object, so this second state is what keeps outputs plain (JavaScript and templates see
//!   `nodes.fetch.body`, not `nodes.fetch.Payload.body`) without listing the nodes anywhere;
//! - `approval` (`.waitForTaskToken`) returns the callback's output as is: one state;
//! - `workflow` (`states:startExecution.sync:2`) is unwrapped like a function, from `$.Output`;
//! - a `loop` is a Map whose result array goes to `$.nodes.<id>`;
//! - a `join` is a Pass building `{"<final id>": output, ...}` at `$.nodes.<join>`;
//! - `start` has no entry: `nodes.<start>` means `$.input`; `condition`, `switch`, `delay` and
//!   `parallel` pass their predecessor's value through (templates naming them resolve to it).
//!
//! Templates become paths into this layout (see [`crate::template`]). A failure caught by an
//! `error` edge or `on_error: continue` is stored as `{"error", "cause"}` at `$.nodes.<id>` by a
//! Pass named `<id>.error`. JavaScript conditions that do not lower (see [`crate::js`]) run on
//! the `code` function, whose result is kept at `$.test` (scratch, overwritten by the next test)
//! as `{"value": ...}` and tested for truthiness.
//!
//! State names are node ids (which are identifiers), or an id plus a `.suffix`, so they never
//! collide. Output is deterministic: states appear in breadth-first order from the entry, and
//! edges in handle order (`true` before `false`, cases in order, then `default`).

mod agent;

use std::collections::{HashMap, VecDeque};

use serde_json::{Map, Value, json};

use crate::analysis::{Analysis, Handle, UI_KEYS, ValueSource, is_js_field, switch_cases};
use crate::diagnostic::codes;
use crate::graph::{OnError, is_task_type};
use crate::js::{self, Cond, JsRoot};
use crate::json::{json_len_shallow, obj, str_len};
use crate::template::{self, Compiled as Tpl, Root, node_jsonpath};
use crate::{CompileOptions, Compiled, Diagnostic, Graph, WorkflowType};

/// AWS's recommended retry for `lambda:invoke` Tasks (what the console generates).
pub const LAMBDA_SERVICE_ERRORS: &[&str] = &[
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
];

/// Errors that no retry can fix.
pub const NEVER_RETRIED: &[&str] =
    &[node_contract::error_names::CONFIG_INVALID, node_contract::error_names::SECRET_NOT_FOUND];

/// ASL's limit on a definition's size.
pub const MAX_DEFINITION_BYTES: usize = 1_048_576;

/// Step Functions' limit on a state name.
pub const MAX_STATE_NAME: usize = 80;

/// The scratch key holding a JavaScript condition's result.
pub const TEST_PATH: &str = "$.test";

/// Where a region of states sits.
#[derive(Clone, Copy)]
struct Region {
    /// The join that ends a parallel branch (reaching it means `End`).
    stop: Option<usize>,
    /// Inside a loop body: `item`/`index` exist, and the body's exit returns its value.
    in_loop: bool,
}

struct Lower<'a> {
    graph: &'a Graph,
    a: &'a Analysis,
    options: &'a CompileOptions,
    diags: Vec<Diagnostic>,
    join_owner: HashMap<usize, usize>,
    /// Helper states (`<end>.from.<id>`, `<id>.error`) written after the state that needs them,
    /// so a definition reads top to bottom.
    deferred: Vec<(String, Value)>,
    /// Serialized size of the nested `States` maps built for the node being lowered (see
    /// [`Lower::region`]); sizes are summed while each state is hot in cache instead of walking
    /// the finished definition.
    inner_size: usize,
    state_count: usize,
    /// Compiling the config of an agent's tool: `{{ args.X }}` is the model's argument.
    in_tool: bool,
}

pub fn lower(graph: &Graph, a: &Analysis, options: &CompileOptions) -> Result<Compiled, Vec<Diagnostic>> {
    let warnings: Vec<Diagnostic> = a.diagnostics.iter().filter(|d| !d.is_error()).cloned().collect();
    let Some(start) = a.start else {
        return Err(vec![Diagnostic::error(codes::MISSING_START, "the graph has no `start` node")]);
    };
    let join_owner = a.regions.iter().map(|(p, r)| (r.join, *p)).collect();
    let mut cx = Lower {
        graph,
        a,
        options,
        diags: Vec::new(),
        join_owner,
        deferred: Vec::new(),
        inner_size: 0,
        state_count: 0,
        in_tool: false,
    };
    let (states, states_size) = cx.region(start, Region { stop: None, in_loop: false });

    let mut asl = Map::new();
    let comment = match &graph.description {
        Some(d) if !d.is_empty() => format!("{}: {d}", graph.name),
        _ => graph.name.clone(),
    };
    if !comment.is_empty() {
        asl.insert("Comment".into(), json!(comment));
    }
    asl.insert("StartAt".into(), json!(graph.nodes[start].id));
    asl.insert("States".into(), Value::Object(states));
    if let Some(t) = graph.settings.timeout_seconds {
        asl.insert("TimeoutSeconds".into(), json!(t));
    }
    let asl = Value::Object(asl);
    let size = json_len_shallow(&asl) + states_size - 2;
    if size > MAX_DEFINITION_BYTES {
        cx.diags.push(Diagnostic::error(
            codes::TOO_LARGE,
            format!("the state machine is {size} bytes; Step Functions accepts at most {MAX_DEFINITION_BYTES}; split the graph with `workflow` nodes"),
        ));
    }
    if size <= MAX_DEFINITION_BYTES && crate::nests_deeper(&asl, crate::MAX_JSON_DEPTH) {
        cx.diags.push(Diagnostic::error(
            codes::TOO_LARGE,
            format!("the state machine nests JSON more than {} levels deep (each parallel adds four levels, each loop three); nest fewer loops and parallels or split the graph with `workflow` nodes", crate::MAX_JSON_DEPTH),
        ));
    }
    if cx.diags.iter().any(Diagnostic::is_error) {
        let mut all = cx.diags;
        all.extend(warnings);
        return Err(all);
    }
    let workflow_type = match graph.settings.workflow_type {
        crate::SettingsType::Standard => WorkflowType::Standard,
        crate::SettingsType::Express => WorkflowType::Express,
        crate::SettingsType::Auto if a.standard_reasons.is_empty() => WorkflowType::Express,
        crate::SettingsType::Auto => WorkflowType::Standard,
    };
    let standard_reasons =
        if workflow_type == WorkflowType::Standard { a.standard_reasons.clone() } else { Vec::new() };
    let state_count = cx.state_count;
    Ok(Compiled { asl, workflow_type, standard_reasons, warnings, state_count, definition_bytes: size })
}

/// Counts states, nested Parallel branches and Map processors included.
pub fn count_states(asl: &Value) -> usize {
    let Some(states) = asl.get("States").and_then(Value::as_object) else {
        return 0;
    };
    states
        .values()
        .map(|s| {
            1 + s.get("Branches").and_then(Value::as_array).map_or(0, |b| b.iter().map(count_states).sum())
                + s.get("ItemProcessor").map_or(0, count_states)
        })
        .sum()
}

impl Lower<'_> {
    fn id(&self, x: usize) -> &str {
        &self.graph.nodes[x].id
    }

    fn ty(&self, x: usize) -> &str {
        &self.graph.nodes[x].node_type
    }

    fn fail(&mut self, x: usize, code: &str, msg: String) {
        self.diags.push(Diagnostic::error(code, msg).at_node(self.id(x)));
    }

    /// The JSONPath of a value source.
    fn source_path(&self, s: ValueSource) -> Option<String> {
        match s {
            ValueSource::Input => Some("$.input".to_owned()),
            ValueSource::Node(y) => Some(node_jsonpath(self.id(y))),
            ValueSource::None => None,
        }
    }

    fn value_path(&self, x: usize) -> Option<String> {
        self.source_path(self.a.value_source[x])
    }

    fn root_path(&self, root: &Root) -> Result<String, String> {
        match root {
            Root::Input => Ok("$.input".into()),
            Root::Item => Ok("$.item".into()),
            Root::Index => Ok("$.index".into()),
            Root::Args if self.in_tool => Ok("$.call.args".into()),
            Root::Args => Err("`args` exists only in the config of an agent's tool".into()),
            Root::Node(id) => self
                .a
                .index
                .get(id)
                .and_then(|&y| self.value_path(y))
                .ok_or_else(|| format!("`{}` has no value here", template::node_ref(id))),
        }
    }

    /// The JSONPath of a root in a JavaScript condition, where it means exactly what the `code`
    /// function's scope means: `nodes` holds stored outputs only (and the start node, which
    /// the function binds to `input`), and `item`/`index` exist only in loop bodies. Anything
    /// else is left to JavaScript.
    fn js_root(&self, root: &JsRoot, in_loop: bool) -> Option<String> {
        match root {
            JsRoot::Input => Some("$.input".into()),
            JsRoot::Item if in_loop => Some("$.item".into()),
            JsRoot::Index if in_loop => Some("$.index".into()),
            JsRoot::Item | JsRoot::Index => None,
            JsRoot::Node(id) => {
                let y = *self.a.index.get(id)?;
                match self.a.value_source[y] {
                    ValueSource::Input if Some(y) == self.a.start => Some("$.input".into()),
                    ValueSource::Node(z) if z == y => self.value_path(y),
                    _ => None,
                }
            }
        }
    }

    /// Compiles `value` for `key` into `out` (`key` or `key.$`).
    fn put(&mut self, x: usize, out: &mut Map<String, Value>, key: &str, value: &Value) {
        let compiled = template::compile_value(value, &|r| self.root_path(r));
        match compiled {
            Ok(Tpl::Literal(v)) => {
                out.insert(key.to_owned(), v);
            }
            Ok(Tpl::Dynamic(expr)) => {
                out.insert(format!("{key}.$"), Value::String(expr));
            }
            Err(problem) => self.fail(x, codes::INVALID_TEMPLATE, format!("`{key}`: {problem}")),
        }
    }

    /// Emits the states of a region starting at `entry` into a new `States` map; returns it with
    /// its serialized size.
    fn region(&mut self, entry: usize, region: Region) -> (Map<String, Value>, usize) {
        let outer = std::mem::take(&mut self.deferred);
        let outer_inner = std::mem::take(&mut self.inner_size);
        // Sized up front: growing a map of thousands of states re-allocates large buffers,
        // whose frees made the allocator consolidate (a fifth of the compile time).
        let capacity = if region.stop.is_none() && !region.in_loop { self.graph.nodes.len() * 2 + 8 } else { 16 };
        let mut states = Map::with_capacity(capacity);
        let mut size = 1;
        let mut queue = VecDeque::from([entry]);
        while let Some(x) = queue.pop_front() {
            if states.contains_key(self.id(x)) {
                continue;
            }
            let before = states.len();
            self.node(x, region, &mut states, &mut queue);
            for (name, state) in std::mem::take(&mut self.deferred) {
                states.entry(name).or_insert(state);
            }
            for (name, state) in states.iter().skip(before) {
                size += str_len(name) + 1 + json_len_shallow(state) + 1;
            }
            size += std::mem::take(&mut self.inner_size);
            self.state_count += states.len() - before;
        }
        self.deferred = outer;
        self.inner_size = outer_inner;
        // `{` was counted up front; each state added a trailing comma, which becomes the `}`.
        let size = if states.is_empty() { 2 } else { size };
        (states, size)
    }

    /// Sets `Next`/`End` on `state` for the way from `from` to `to` (`None`: the region ends).
    fn link(
        &mut self,
        state: &mut Map<String, Value>,
        from: usize,
        to: Option<usize>,
        region: Region,
        states: &mut Map<String, Value>,
        queue: &mut VecDeque<usize>,
    ) {
        match to {
            None => {
                state.insert("End".into(), json!(true));
                if region.in_loop
                    && let Some(path) = self.value_path(from)
                {
                    state.insert("OutputPath".into(), json!(path));
                }
            }
            Some(t) if Some(t) == region.stop => {
                state.insert("End".into(), json!(true));
            }
            Some(t) if self.ty(t) == "end" && self.graph.nodes[t].data.get("output").is_none_or(Value::is_null) => {
                // The execution's output is the value of the node that led here: one Succeed per
                // value source.
                let src = self.a.value_source[from];
                let suffix = match src {
                    ValueSource::Node(y) => self.id(y).to_owned(),
                    _ => "input".to_owned(),
                };
                let mut name = format!("{}.from.{suffix}", self.id(t));
                if name.chars().count() > MAX_STATE_NAME {
                    // State names hold at most 80 characters; ids hold 64.
                    let index = match src {
                        ValueSource::Node(y) => y + 1,
                        _ => 0,
                    };
                    name = format!("{}.from.{index}", self.id(t));
                }
                if !self.has_state(states, &name) {
                    let mut s = Map::new();
                    s.insert("Type".into(), json!("Succeed"));
                    if let Some(path) = self.source_path(src) {
                        s.insert("OutputPath".into(), json!(path));
                    }
                    self.deferred.push((name.clone(), Value::Object(s)));
                }
                state.insert("Next".into(), json!(name));
            }
            Some(t) => {
                state.insert("Next".into(), json!(self.id(t)));
                queue.push_back(t);
            }
        }
    }

    /// The state name a transition to `to` uses (for Choice rules, which cannot `End`).
    fn target_name(
        &mut self,
        from: usize,
        to: usize,
        region: Region,
        states: &mut Map<String, Value>,
        queue: &mut VecDeque<usize>,
    ) -> String {
        let mut tmp = Map::new();
        self.link(&mut tmp, from, Some(to), region, states, queue);
        tmp.get("Next").and_then(Value::as_str).map(str::to_owned).unwrap_or_default()
    }

    fn has_state(&self, states: &Map<String, Value>, name: &str) -> bool {
        states.contains_key(name) || self.deferred.iter().any(|(n, _)| n == name)
    }

    fn next_of(&self, x: usize) -> Option<usize> {
        self.a.edge(x, &Handle::Next)
    }

    fn node(&mut self, x: usize, region: Region, states: &mut Map<String, Value>, queue: &mut VecDeque<usize>) {
        let id = self.id(x).to_owned();
        let node = &self.graph.nodes[x];
        let t = node.node_type.as_str();
        let mut s = Map::new();
        match t {
            "start" => {
                s.insert("Type".into(), json!("Pass"));
                s.insert("Parameters".into(), json!({"input.$": "$", "nodes": {}}));
                let next = self.next_of(x);
                self.link(&mut s, x, next, region, states, queue);
            }
            "end" => {
                let output = node.data.get("output").cloned().unwrap_or(Value::Null);
                s.insert("Type".into(), json!("Pass"));
                if template::has_templates(&output) {
                    let mut params = Map::new();
                    self.put(x, &mut params, "value", &output);
                    s.insert("Parameters".into(), Value::Object(params));
                    s.insert("OutputPath".into(), json!("$.value"));
                } else {
                    s.insert("Result".into(), output);
                }
                s.insert("End".into(), json!(true));
            }
            "delay" => {
                s.insert("Type".into(), json!("Wait"));
                let (field, value) = match node.data.get("seconds") {
                    Some(v) => ("Seconds", v.clone()),
                    None => ("Timestamp", node.data.get("until").cloned().unwrap_or(Value::Null)),
                };
                match template::compile_value(&value, &|r| self.root_path(r)) {
                    Ok(Tpl::Dynamic(path)) => {
                        s.insert(format!("{field}Path"), json!(path));
                    }
                    Ok(Tpl::Literal(v)) => {
                        let v = match v.as_f64() {
                            // ASL waits whole seconds; round a fractional wait up.
                            Some(secs) if field == "Seconds" => json!(secs.ceil() as u64),
                            _ => v,
                        };
                        s.insert(field.into(), v);
                    }
                    Err(problem) => self.fail(x, codes::INVALID_TEMPLATE, problem),
                }
                let next = self.next_of(x);
                self.link(&mut s, x, next, region, states, queue);
            }
            "join" => {
                s.insert("Type".into(), json!("Pass"));
                let mut params = Map::new();
                if let Some(region_info) = self.join_owner.get(&x).and_then(|p| self.a.regions.get(p)) {
                    for &f in &region_info.finals {
                        if let Some(path) = self.value_path(f) {
                            params.insert(format!("{}.$", self.id(f)), json!(path));
                        }
                    }
                }
                s.insert("Parameters".into(), Value::Object(params));
                s.insert("ResultPath".into(), json!(node_jsonpath(&id)));
                let next = self.next_of(x);
                self.link(&mut s, x, next, region, states, queue);
            }
            "parallel" => {
                let Some(info) = self.a.regions.get(&x).cloned() else {
                    return;
                };
                s.insert("Type".into(), json!("Parallel"));
                let mut branches = Vec::new();
                for &b in &info.branches {
                    let (inner, inner_size) = self.region(b, Region { stop: Some(info.join), in_loop: region.in_loop });
                    self.inner_size += inner_size - 2;
                    branches.push(obj([("StartAt", json!(self.id(b))), ("States", Value::Object(inner))]));
                }
                s.insert("Branches".into(), Value::Array(branches));
                let merge = merge_nodes(0, info.branches.len());
                let mut sel = Map::new();
                sel.insert("input.$".into(), json!("$[0].input"));
                sel.insert("nodes.$".into(), json!(merge));
                if region.in_loop {
                    sel.insert("item.$".into(), json!("$[0].item"));
                    sel.insert("index.$".into(), json!("$[0].index"));
                }
                s.insert("ResultSelector".into(), Value::Object(sel));
                s.insert("ResultPath".into(), json!("$"));
                self.retry_catch(x, &mut s, false, region, states, queue);
                self.link(&mut s, x, Some(info.join), region, states, queue);
            }
            "loop" => {
                let Some(body) = self.a.bodies.get(&x).cloned() else {
                    return;
                };
                let Some(entry) = body.entry else { return };
                s.insert("Type".into(), json!("Map"));
                let items = node.data.get("items").cloned().unwrap_or(Value::Null);
                match template::compile_value(&items, &|r| self.root_path(r)) {
                    Ok(Tpl::Dynamic(path)) => {
                        s.insert("ItemsPath".into(), json!(path));
                    }
                    _ => self.fail(x, codes::INVALID_FIELD, "`data.items` must be one template naming an array".into()),
                }
                let mut sel = Map::new();
                sel.insert("input.$".into(), json!("$.input"));
                sel.insert("nodes.$".into(), json!("$.nodes"));
                sel.insert("item.$".into(), json!("$$.Map.Item.Value"));
                sel.insert("index.$".into(), json!("$$.Map.Item.Index"));
                s.insert("ItemSelector".into(), Value::Object(sel));
                let (inner, inner_size) = self.region(entry, Region { stop: None, in_loop: true });
                self.inner_size += inner_size - 2;
                s.insert(
                    "ItemProcessor".into(),
                    obj([
                        ("ProcessorConfig", json!({"Mode": "INLINE"})),
                        ("StartAt", json!(self.id(entry))),
                        ("States", Value::Object(inner)),
                    ]),
                );
                if let Some(c) = node.data.get("concurrency").and_then(Value::as_u64) {
                    s.insert("MaxConcurrency".into(), json!(c));
                }
                s.insert("ResultPath".into(), json!(node_jsonpath(&id)));
                self.retry_catch(x, &mut s, false, region, states, queue);
                let next = self.next_of(x);
                self.link(&mut s, x, next, region, states, queue);
            }
            "condition" | "switch" => {
                self.choice(x, region, states, queue);
                return;
            }
            "agent" | "multi_agent" => {
                self.agent_node(x, region, states, queue);
                return;
            }
            _ if is_task_type(t) => {
                self.task(x, region, states, queue);
                return;
            }
            _ => return,
        }
        states.insert(id, Value::Object(s));
    }

    /// The `Payload` of a `lambda:invoke` Task for node `x` with the given config.
    fn payload(&self, x: usize, config: Value, with_scope: bool, region: Region) -> Value {
        let mut p = Map::new();
        p.insert("node".into(), json!({"id": self.id(x), "type": self.ty(x)}));
        p.insert("config".into(), config);
        p.insert("execution".into(), json!({"id.$": "$$.Execution.Id"}));
        p.insert("attempt.$".into(), json!("$$.State.RetryCount"));
        if with_scope {
            let mut scope = Map::new();
            scope.insert("input.$".into(), json!("$.input"));
            scope.insert("nodes.$".into(), json!("$.nodes"));
            if region.in_loop {
                scope.insert("item.$".into(), json!("$.item"));
                scope.insert("index.$".into(), json!("$.index"));
            }
            // The start node has no entry in `nodes` (its output is the input); naming it lets
            // the function bind `nodes.<start>` to `input`, as templates and native rules do.
            if let Some(start) = self.a.start {
                scope.insert("start".into(), json!(self.id(start)));
            }
            p.insert("scope".into(), Value::Object(scope));
        }
        Value::Object(p)
    }

    fn function_name(&mut self, x: usize, node_type: &str) -> String {
        match self.options.functions.get(node_type) {
            Some(f) => f.to_owned(),
            None => {
                self.fail(
                    x,
                    codes::MISSING_FUNCTION,
                    format!("the function map has no function for `{node_type}` nodes"),
                );
                String::new()
            }
        }
    }

    fn task(&mut self, x: usize, region: Region, states: &mut Map<String, Value>, queue: &mut VecDeque<usize>) {
        let id = self.id(x).to_owned();
        let node = &self.graph.nodes[x];
        let t = node.node_type.as_str();
        let mut s = Map::new();
        s.insert("Type".into(), json!("Task"));
        let unwrap_from = match t {
            "workflow" => {
                s.insert("Resource".into(), json!("arn:aws:states:::states:startExecution.sync:2"));
                let mut params = Map::new();
                let wid = node.data.get("workflow_id").and_then(Value::as_str).unwrap_or_default();
                params.insert("StateMachineArn".into(), json!(self.options.workflow_arn(wid)));
                let input = node.data.get("input").cloned().unwrap_or_else(|| json!({}));
                self.put(x, &mut params, "Input", &input);
                s.insert("Parameters".into(), Value::Object(params));
                Some("$.Output")
            }
            _ => {
                let approval = t == "approval";
                let resource = if approval {
                    "arn:aws:states:::lambda:invoke.waitForTaskToken"
                } else {
                    "arn:aws:states:::lambda:invoke"
                };
                s.insert("Resource".into(), json!(resource));
                let mut config = Map::new();
                // Where the graph itself templates secrets (JSON pointers into the config the
                // function receives): the function resolves secrets there only, never in text
                // that data carried in.
                let mut secret_refs = node_contract::SecretRefs::new();
                if let Value::Object(data) = &node.data {
                    for (key, value) in data {
                        if UI_KEYS.contains(&key.as_str()) {
                            continue;
                        }
                        if is_js_field(t, key) {
                            config.insert(key.clone(), value.clone());
                        } else {
                            let escaped = key.replace('~', "~0").replace('/', "~1");
                            for (pointer, names) in node_contract::secret_refs(value) {
                                secret_refs.insert(format!("/{escaped}{pointer}"), names);
                            }
                            self.put(x, &mut config, key, value);
                        }
                    }
                }
                let mut payload = self.payload(x, Value::Object(config), t == "code", region);
                if !secret_refs.is_empty()
                    && let Value::Object(p) = &mut payload
                {
                    p.insert("secrets".into(), json!(secret_refs));
                }
                if approval && let Value::Object(p) = &mut payload {
                    p.insert("task_token.$".into(), json!("$$.Task.Token"));
                }
                let fname = self.function_name(x, t);
                s.insert("Parameters".into(), obj([("FunctionName", Value::String(fname)), ("Payload", payload)]));
                (!approval).then_some("$.Payload")
            }
        };
        if let Some(from) = unwrap_from {
            s.insert("ResultSelector".into(), json!({"value.$": from}));
        }
        s.insert("ResultPath".into(), json!(node_jsonpath(&id)));
        let timeout = node
            .timeout_seconds
            .or_else(|| (t == "approval").then(|| node.data.get("timeout_seconds").and_then(Value::as_u64)).flatten());
        if let Some(timeout) = timeout {
            s.insert("TimeoutSeconds".into(), json!(timeout));
        }
        self.retry_catch(x, &mut s, t != "workflow", region, states, queue);
        let next = self.next_of(x);
        if unwrap_from.is_some() {
            self.unwrap_output(x, s, region, states, queue);
        } else {
            self.link(&mut s, x, next, region, states, queue);
            states.insert(id, Value::Object(s));
        }
    }

    /// Inserts node `x`'s state `s`, which leaves `{"value": <output>}` at `$.nodes.<id>`, and
    /// the `<id>.output` Pass after it that stores the output itself there.
    fn unwrap_output(
        &mut self,
        x: usize,
        mut s: Map<String, Value>,
        region: Region,
        states: &mut Map<String, Value>,
        queue: &mut VecDeque<usize>,
    ) {
        let id = self.id(x).to_owned();
        let out_name = format!("{id}.output");
        s.insert("Next".into(), json!(out_name));
        let mut o = Map::new();
        o.insert("Type".into(), json!("Pass"));
        o.insert("InputPath".into(), json!(format!("{}.value", node_jsonpath(&id))));
        o.insert("ResultPath".into(), json!(node_jsonpath(&id)));
        let next = self.next_of(x);
        self.link(&mut o, x, next, region, states, queue);
        states.insert(id, Value::Object(s));
        states.insert(out_name, Value::Object(o));
    }

    /// Adds `Retry` and `Catch` to a state of node `x` (and the `<id>.error` Pass once).
    fn retry_catch(
        &mut self,
        x: usize,
        s: &mut Map<String, Value>,
        lambda: bool,
        region: Region,
        states: &mut Map<String, Value>,
        queue: &mut VecDeque<usize>,
    ) {
        let node = &self.graph.nodes[x];
        let mut retry = Vec::new();
        if lambda {
            retry.push(lambda_service_retry());
        }
        match &node.retry {
            Some(r) => {
                if lambda {
                    retry.push(json!({"ErrorEquals": NEVER_RETRIED, "MaxAttempts": 0}));
                }
                let mut user = Map::new();
                user.insert("ErrorEquals".into(), json!(["States.ALL"]));
                user.insert("IntervalSeconds".into(), json!(r.interval_seconds));
                user.insert("MaxAttempts".into(), json!(r.max_attempts.saturating_sub(1)));
                user.insert("BackoffRate".into(), num(r.backoff_rate));
                if let Some(d) = r.max_delay_seconds {
                    user.insert("MaxDelaySeconds".into(), json!(d));
                }
                if r.jitter {
                    user.insert("JitterStrategy".into(), json!("FULL"));
                }
                retry.push(Value::Object(user));
            }
            None if lambda => retry.push(transient_retry(&node.node_type)),
            None => {}
        }
        if !retry.is_empty() {
            s.insert("Retry".into(), Value::Array(retry));
        }
        let error_target = self.a.edge(x, &Handle::Error);
        let continue_target = (node.on_error == Some(OnError::Continue)).then(|| match node.node_type.as_str() {
            "condition" => self.a.edge(x, &Handle::False),
            "switch" => self.a.edge(x, &Handle::Default),
            _ => self.next_of(x),
        });
        let (handled, to) = match (error_target, continue_target) {
            (Some(t), _) => (true, Some(t)),
            (None, Some(t)) => (true, t),
            (None, None) => (false, None),
        };
        let id = self.id(x).to_owned();
        let mut catch = Vec::new();
        if node.node_type == "workflow" {
            catch.push(self.child_failure(x, &id, handled.then_some(to), region, states, queue));
        }
        if !handled {
            if !catch.is_empty() {
                s.insert("Catch".into(), Value::Array(catch));
            }
            return;
        }
        let err_name = format!("{id}.error");
        catch.push(json!({"ErrorEquals": ["States.ALL"], "ResultPath": node_jsonpath(&id), "Next": err_name}));
        s.insert("Catch".into(), Value::Array(catch));
        if !self.has_state(states, &err_name) {
            let mut e = Map::new();
            e.insert("Type".into(), json!("Pass"));
            e.insert(
                "Parameters".into(),
                json!({"error.$": format!("{}.Error", node_jsonpath(&id)), "cause.$": format!("{}.Cause", node_jsonpath(&id))}),
            );
            e.insert("ResultPath".into(), json!(node_jsonpath(&id)));
            self.link(&mut e, x, to, region, states, queue);
            self.deferred.push((err_name, Value::Object(e)));
        }
    }

    /// A `workflow` node whose child execution failed fails with the *child's* error and cause,
    /// not `States.TaskFailed` (what `startExecution.sync` reports, with the child's description
    /// as its cause): a catcher for `States.TaskFailed` parses that description (defaults merged
    /// in, since a child's error and cause may be absent), then either a handler gets
    /// `{error, cause, execution_arn}` of the child (`handler` is the error edge's or
    /// `on_error`'s target), or a Fail state ends the parent (or its branch) with them.
    fn child_failure(
        &mut self,
        x: usize,
        id: &str,
        handler: Option<Option<usize>>,
        region: Region,
        states: &mut Map<String, Value>,
        queue: &mut VecDeque<usize>,
    ) -> Value {
        let at = node_jsonpath(id);
        let parse_name = format!("{id}.child_failed");
        let end_name = format!("{id}.child_error");
        if !self.has_state(states, &parse_name) {
            // `{` and `}` are reserved in intrinsic string literals: escaped.
            let merged = format!(
                "States.JsonMerge(States.StringToJson('\\{{\"Error\":\"States.TaskFailed\",\"Cause\":\"\",\"ExecutionArn\":\"\"\\}}'), States.StringToJson({at}.Cause), false)"
            );
            let mut parse = Map::new();
            parse.insert("Type".into(), json!("Pass"));
            parse.insert("Parameters".into(), json!({"child.$": merged}));
            parse.insert("ResultPath".into(), json!(at));
            parse.insert("Next".into(), json!(end_name));
            self.deferred.push((parse_name.clone(), Value::Object(parse)));
            let mut end = Map::new();
            match handler {
                Some(to) => {
                    end.insert("Type".into(), json!("Pass"));
                    end.insert(
                        "Parameters".into(),
                        json!({"error.$": format!("{at}.child.Error"), "cause.$": format!("{at}.child.Cause"),
                            "execution_arn.$": format!("{at}.child.ExecutionArn")}),
                    );
                    end.insert("ResultPath".into(), json!(at));
                    self.link(&mut end, x, to, region, states, queue);
                }
                None => {
                    end.insert("Type".into(), json!("Fail"));
                    end.insert("ErrorPath".into(), json!(format!("{at}.child.Error")));
                    end.insert("CausePath".into(), json!(format!("{at}.child.Cause")));
                }
            }
            self.deferred.push((end_name, Value::Object(end)));
        }
        json!({"ErrorEquals": ["States.TaskFailed"], "ResultPath": at, "Next": parse_name})
    }

    /// `condition` and `switch`: native Choice rules where the JavaScript lowers exactly, the
    /// `code` function otherwise (see [`crate::js`]).
    fn choice(&mut self, x: usize, region: Region, states: &mut Map<String, Value>, queue: &mut VecDeque<usize>) {
        let node = &self.graph.nodes[x];
        let id = node.id.clone();
        let (cases, default): (Vec<(String, usize)>, Option<usize>) = if node.node_type == "condition" {
            let expr = node.data.get("expression").and_then(Value::as_str).unwrap_or_default().to_owned();
            match self.a.edge(x, &Handle::True) {
                Some(t) => (vec![(expr, t)], self.a.edge(x, &Handle::False)),
                None => return,
            }
        } else {
            let cases = switch_cases(node)
                .into_iter()
                .enumerate()
                .filter_map(|(i, (_, expr))| Some((expr, self.a.edge(x, &Handle::Case(i))?)))
                .collect();
            (cases, self.a.edge(x, &Handle::Default))
        };
        let Some(default) = default else { return };
        let lowered: Vec<Option<js::Lowered>> =
            cases.iter().map(|(e, _)| js::lower(e, &|r| self.js_root(r, region.in_loop))).collect();
        let n = cases.len();
        // The state that evaluates case `k` onwards.
        let entry = |k: usize| -> String { if k == 0 { id.clone() } else { format!("{id}.case{k}") } };
        let default_name = self.target_name(x, default, region, states, queue);
        let after = |k: usize| -> String { if k + 1 >= n { default_name.clone() } else { entry(k + 1) } };
        for k in 0..n {
            let target = self.target_name(x, cases[k].1, region, states, queue);
            match &lowered[k] {
                Some(l) => {
                    let mut rules = Vec::new();
                    let guarded = l.guard != Cond::Const(false);
                    let js_name = format!("{id}.js{k}");
                    if guarded {
                        let mut g = l.guard.clone().into_rule();
                        if let Value::Object(m) = &mut g {
                            m.insert("Next".into(), json!(js_name));
                        }
                        rules.push(g);
                    }
                    let mut r = l.rule.clone().into_rule();
                    if let Value::Object(m) = &mut r {
                        m.insert("Next".into(), json!(target));
                    }
                    rules.push(r);
                    states.insert(
                        entry(k),
                        obj([
                            ("Type", json!("Choice")),
                            ("Choices", Value::Array(rules)),
                            ("Default", json!(after(k))),
                        ]),
                    );
                    if guarded {
                        self.js_case(x, &js_name, &cases[k].0, &target, &after(k), region, states, queue);
                    }
                }
                None => {
                    let name = entry(k);
                    self.js_case(x, &name, &cases[k].0, &target, &after(k), region, states, queue);
                }
            }
        }
    }

    /// A Task evaluating `expr` on the `code` function, then a Choice on the truthiness of its
    /// result: falsy is missing, `null`, `false`, `0` or `""` (see [`js::falsy`]).
    #[allow(clippy::too_many_arguments)]
    fn js_case(
        &mut self,
        x: usize,
        name: &str,
        expr: &str,
        if_true: &str,
        if_false: &str,
        region: Region,
        states: &mut Map<String, Value>,
        queue: &mut VecDeque<usize>,
    ) {
        let fname = self.function_name(x, "code");
        let payload = self.payload(x, json!({"expression": expr}), true, region);
        let mut s = Map::new();
        s.insert("Type".into(), json!("Task"));
        s.insert("Resource".into(), json!("arn:aws:states:::lambda:invoke"));
        s.insert("Parameters".into(), obj([("FunctionName", Value::String(fname)), ("Payload", payload)]));
        s.insert("ResultSelector".into(), json!({"value.$": "$.Payload"}));
        s.insert("ResultPath".into(), json!(TEST_PATH));
        self.retry_catch(x, &mut s, true, region, states, queue);
        let test_name = format!("{name}.test");
        s.insert("Next".into(), json!(test_name));
        states.insert(name.to_owned(), Value::Object(s));
        let value = format!("{TEST_PATH}.value");
        let mut rule = js::falsy(&value).into_rule();
        if let Value::Object(m) = &mut rule {
            m.insert("Next".into(), json!(if_false));
        }
        states.insert(
            test_name,
            obj([("Type", json!("Choice")), ("Choices", Value::Array(vec![rule])), ("Default", json!(if_true))]),
        );
    }
}

/// The intrinsic merging the `nodes` of branch outputs `lo..hi`: a balanced tree of
/// `States.JsonMerge` (`⌈log2 n⌉` deep, so wide fans stay within the engine's and AWS's nesting
/// limits for intrinsics); for up to three branches the same as merging left to right.
fn merge_nodes(lo: usize, hi: usize) -> String {
    if hi - lo <= 1 {
        return format!("$[{lo}].nodes");
    }
    let mid = lo + (hi - lo).next_power_of_two() / 2;
    format!("States.JsonMerge({}, {}, false)", merge_nodes(lo, mid), merge_nodes(mid, hi))
}

/// AWS's recommended retry of Lambda's own service errors, on every `lambda:invoke` Task.
fn lambda_service_retry() -> Value {
    json!({"ErrorEquals": LAMBDA_SERVICE_ERRORS, "IntervalSeconds": 1, "MaxAttempts": 3, "BackoffRate": 2, "JitterStrategy": "FULL"})
}

/// The default retry of the errors a function of `node_type` fails with transiently (a node
/// without `retry`).
fn transient_retry(node_type: &str) -> Value {
    let errors = node_contract::error_names::transient(node_type);
    if matches!(node_type, "llm" | "agent" | "multi_agent") {
        // Model providers shed load with 429s and 5xx bursts: more attempts, spread out, with
        // jitter so parallel branches do not retry in step (the function has already waited out
        // a short Retry-After before failing).
        json!({"ErrorEquals": errors, "IntervalSeconds": 2, "MaxAttempts": 4, "BackoffRate": 2, "MaxDelaySeconds": 60, "JitterStrategy": "FULL"})
    } else {
        json!({"ErrorEquals": errors, "IntervalSeconds": 1, "MaxAttempts": 2, "BackoffRate": 2})
    }
}

fn num(f: f64) -> Value {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        json!(f as i64)
    } else {
        serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn branch_outputs_merge_in_a_balanced_tree() {
        assert_eq!(merge_nodes(0, 2), "States.JsonMerge($[0].nodes, $[1].nodes, false)");
        assert_eq!(
            merge_nodes(0, 3),
            "States.JsonMerge(States.JsonMerge($[0].nodes, $[1].nodes, false), $[2].nodes, false)"
        );
        assert_eq!(
            merge_nodes(0, 4),
            "States.JsonMerge(States.JsonMerge($[0].nodes, $[1].nodes, false), States.JsonMerge($[2].nodes, $[3].nodes, false), false)"
        );
        // 1,000 branches: 999 merges, 10 deep; every branch once, in order.
        let m = merge_nodes(0, 1000);
        assert_eq!(m.matches("States.JsonMerge(").count(), 999);
        let mut depth = 0usize;
        let mut deepest = 0;
        for c in m.chars() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                _ => {}
            }
            deepest = deepest.max(depth);
        }
        assert_eq!(deepest, 10);
        let order: Vec<usize> = m.split("$[").skip(1).map(|p| p.split(']').next().unwrap().parse().unwrap()).collect();
        assert_eq!(order, (0..1000).collect::<Vec<_>>());
    }
}
