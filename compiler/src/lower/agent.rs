//! `agent` and `multi_agent` nodes: durable tool-calling loops made of states.
//!
//! The node's state is a Parallel named after the node, with one branch holding its loops: the
//! node's events open and close with it, its `retry`/`on_error`/error edge apply to the whole
//! loop, and the loops' scratch state stays inside the branch; `<id>.output` then stores the
//! branch's result at `$.nodes.<id>`, as for a Task.
//!
//! One agent loop, with `<p>` its state-name prefix and `<slot>` where its working state lives
//! (`$.nodes.<id>`, or `$.agent` for a supervisor's agent inside the supervisor's tool-call Map):
//!
//! ```text
//! <p>.start           Pass    seeds <slot> with {"turn": 0, ...}
//! <p>.turn            Task    the agent function: one model call (Payload `state.$`: <slot>),
//!                             with the default Retry of model calls
//! <p>.turn.output     Pass    the returned working state replaces <slot>
//! <p>.route           Choice  status "tools" → <p>.tools (turn ≥ max_steps → <p>.max_steps, a Fail
//!                             that only a broken function could reach); otherwise the loop ends
//! <p>.tools           Map     over <slot>.calls, results to <slot>.results, then <p>.turn again
//!   <p>.call            Choice  the call's `key` → the declared tool's state; anything else →
//!   <p>.call.unknown    Pass    answered "Agent.UnknownTool" (an undeclared tool never runs)
//!   <p>.call.<tool>     Task    the node function of the tool's type, `{{ args.X }}` = the
//!                               model's arguments; its type's default Retry; any failure →
//!   <p>.call.failed     Pass    {id, name, args, error, cause}; a success →
//!   <p>.call.ok         Pass    {id, name, args, result}
//!   (<p>.call.<tool>.approval: a waitForTaskToken Task on the approval function first, for a
//!    tool with `requires_approval`; a rejection or time-out goes to `.failed`)
//! <p>.done            Pass    ends the branch with <slot>.output: the node's output
//! ```
//!
//! `multi_agent` chains such loops: `sequential` runs one per agent (`<id>.<name>`), each seeded
//! with the previous one's answer, agents and totals; `parallel` runs them as the branches of a
//! Parallel state `<id>.agents`, whose result seeds `<id>.aggregator`; `supervisor` runs
//! `<id>.supervisor`, whose tools are `transfer_to_<name>`: each such call runs that agent's whole
//! loop inside the supervisor's tool-call Map (slot `$.agent`), and its answer is the tool result.
//! The working state's shape is the agent function's (`functions/agent`).

use std::collections::VecDeque;

use serde_json::{Map, Value, json};

use super::{Lower, MAX_STATE_NAME, Region, count_states, lambda_service_retry, transient_retry};
use crate::agent::{self, DEFAULT_MAX_STEPS, Tool};
use crate::analysis::is_js_field;
use crate::diagnostic::codes;
use crate::json::{json_len, obj};
use crate::template::node_jsonpath;

/// Where an agent loop goes when the model gave its final answer.
enum Exit {
    /// `<p>.done` ends the branch with `<slot>.output` (the node's last loop, a parallel agent).
    Output,
    /// Straight to this state (the next agent of a sequential chain seeds from `<slot>.output`).
    Goto(String),
    /// `<p>.done` answers the supervisor's transfer call: `{id, name, args, result}`, and ends.
    ToolResult,
}

/// Where a failed turn goes.
#[derive(Clone, Copy, PartialEq)]
enum Catch {
    /// Retry only: the failure leaves the node's Parallel (whose Retry and Catch are the node's).
    Propagate,
    /// Retry, then `<p>.failed` answers the supervisor's transfer call with the error.
    ToolError,
}

/// A config entry of the turn: compiled as a template, or passed as it is.
enum Entry {
    Template(Value),
    Literal(Value),
}

struct Loop<'g> {
    prefix: String,
    /// The seed state (name, state), or none when the state before seeds the slot.
    seed: Option<(String, Map<String, Value>)>,
    slot: String,
    config: Vec<(&'static str, Entry)>,
    tools: Vec<Tool<'g>>,
    /// A supervisor's agents: `transfer_to_<name>` runs their loops.
    team: Vec<(&'g str, &'g Map<String, Value>)>,
    max_steps: Option<u64>,
    exit: Exit,
    catch: Catch,
}

impl<'g> Loop<'g> {
    /// The loop of one agent of a `multi_agent` node (`a`: its object).
    fn member(
        prefix: String,
        seed: Option<(String, Map<String, Value>)>,
        slot: String,
        config: Vec<(&'static str, Entry)>,
        a: &'g Map<String, Value>,
        exit: Exit,
        catch: Catch,
    ) -> Self {
        Loop {
            prefix,
            seed,
            slot,
            config,
            tools: agent::tools(a.get("tools")),
            team: Vec::new(),
            max_steps: Some(a.get("max_steps").and_then(Value::as_u64).unwrap_or(DEFAULT_MAX_STEPS)),
            exit,
            catch,
        }
    }
}

const SUPERVISOR_INSTRUCTIONS: &str = "You lead a team of agents. Break the task down, delegate each part to the agent best suited for it with its transfer_to_<name> tool (give it a complete, self-contained task), then answer the task from what they report.";
const AGGREGATOR_INSTRUCTIONS: &str =
    "Several agents worked on the same task. Combine their answers into one answer to the task.";

impl<'g> Lower<'g> {
    /// An `agent` or `multi_agent` node: a Parallel named after the node, with one branch holding
    /// its loops (so the node's events open and close with it, its Retry and Catch are the node's,
    /// and the loops' scratch state never leaks), then `<id>.output` stores the branch's output.
    pub(super) fn agent_node(
        &mut self,
        x: usize,
        region: Region,
        states: &mut Map<String, Value>,
        queue: &mut VecDeque<usize>,
    ) {
        let id = self.id(x).to_owned();
        let (start, inner) = self.agent_branch(x, region, queue);
        let inner = Value::Object(inner);
        self.inner_size += json_len(&inner) - 2;
        self.state_count += count_states(&json!({"States": inner}));
        let mut s = Map::new();
        s.insert("Type".into(), json!("Parallel"));
        s.insert("Branches".into(), json!([obj([("StartAt", json!(start)), ("States", inner)])]));
        s.insert("ResultSelector".into(), json!({"value.$": "$[0]"}));
        s.insert("ResultPath".into(), json!(node_jsonpath(&id)));
        self.retry_catch(x, &mut s, false, region, states, queue);
        self.unwrap_output(x, s, region, states, queue);
    }

    /// The states of the node's branch and the first one's name.
    fn agent_branch(&mut self, x: usize, region: Region, queue: &mut VecDeque<usize>) -> (String, Map<String, Value>) {
        let graph: &'g crate::Graph = self.graph;
        let node = &graph.nodes[x];
        let id = node.id.clone();
        let data = &node.data;
        let slot = node_jsonpath(&id);
        let seed = |prefix: &str, fields: Value| -> Option<(String, Map<String, Value>)> {
            let mut s = Map::new();
            s.insert("Type".into(), json!("Pass"));
            s.insert("Parameters".into(), fields);
            s.insert("ResultPath".into(), json!(slot.clone()));
            Some((format!("{prefix}.start"), s))
        };
        let mut states = Map::new();
        if node.node_type == "agent" {
            let mut config = self.agent_config(data, None, None);
            config.push(("input", Entry::Template(data.get("input").cloned().unwrap_or(Value::Null))));
            for key in ["max_steps", "on_max_steps"] {
                if let Some(v) = data.get(key) {
                    config.push((key, Entry::Template(v.clone())));
                }
            }
            let l = Loop {
                prefix: id.clone(),
                seed: seed(&id, json!({"turn": 0})),
                slot: slot.clone(),
                config,
                tools: agent::tools(data.get("tools")),
                team: Vec::new(),
                max_steps: Some(data.get("max_steps").and_then(Value::as_u64).unwrap_or(DEFAULT_MAX_STEPS)),
                exit: Exit::Output,
                catch: Catch::Propagate,
            };
            self.agent_loop(x, l, region, &mut states, queue);
            return (format!("{id}.start"), states);
        }
        let team = agent::agents(data);
        let strategy = data.get("strategy").and_then(Value::as_str).unwrap_or("sequential");
        let n = team.len();
        let task = data.get("task").cloned().unwrap_or(Value::Null);
        match strategy {
            "parallel" => {
                let share = data.get("max_tokens").and_then(Value::as_u64).map(|b| b / (n as u64 + 1));
                let mut branches = Vec::with_capacity(n);
                for &(name, a) in &team {
                    let prefix = format!("{id}.{name}");
                    let mut fields = json!({"turn": 0});
                    if let Some(share) = share {
                        fields["budget"] = json!(share);
                    }
                    let mut config = self.agent_config(data, Some((name, a)), Some("agent"));
                    config.push(("input", Entry::Template(task.clone())));
                    let l = Loop::member(
                        prefix.clone(),
                        seed(&prefix, fields),
                        slot.clone(),
                        config,
                        a,
                        Exit::Output,
                        Catch::Propagate,
                    );
                    let mut inner = Map::new();
                    self.agent_loop(x, l, region, &mut inner, queue);
                    branches
                        .push(obj([("StartAt", json!(format!("{prefix}.start"))), ("States", Value::Object(inner))]));
                }
                let aggregator = format!("{id}.aggregator");
                let agents = format!("{id}.agents");
                states.insert(
                    agents.clone(),
                    json!({"Type": "Parallel", "Branches": branches, "ResultSelector": {"turn": 0, "prior.$": "$"},
                           "ResultPath": slot, "Next": format!("{aggregator}.turn")}),
                );
                let role = data.get("aggregator").and_then(Value::as_object);
                let mut config = self.role_config(data, role, "aggregator", AGGREGATOR_INSTRUCTIONS, &team);
                config.push(("task", Entry::Template(task)));
                let l = Loop {
                    prefix: aggregator,
                    seed: None,
                    slot,
                    config,
                    tools: Vec::new(),
                    team: Vec::new(),
                    max_steps: Some(DEFAULT_MAX_STEPS),
                    exit: Exit::Output,
                    catch: Catch::Propagate,
                };
                self.agent_loop(x, l, region, &mut states, queue);
                (agents, states)
            }
            "supervisor" => {
                let role = data.get("supervisor").and_then(Value::as_object);
                let mut config = self.role_config(data, role, "supervisor", SUPERVISOR_INSTRUCTIONS, &team);
                config.push(("input", Entry::Template(task.clone())));
                config.push(("task", Entry::Template(task)));
                let max_turns = data.get("max_turns").cloned().unwrap_or(json!(DEFAULT_MAX_STEPS));
                config.push(("max_steps", Entry::Template(max_turns)));
                config.push((
                    "agents",
                    Entry::Literal(Value::Array(
                        team.iter()
                            .map(|(name, a)| {
                                json!({"name": name, "description": a.get("description").cloned().unwrap_or(json!(""))})
                            })
                            .collect(),
                    )),
                ));
                let prefix = format!("{id}.supervisor");
                let l = Loop {
                    prefix: prefix.clone(),
                    seed: seed(&prefix, json!({"turn": 0})),
                    slot,
                    config,
                    tools: Vec::new(),
                    team,
                    max_steps: Some(data.get("max_turns").and_then(Value::as_u64).unwrap_or(DEFAULT_MAX_STEPS)),
                    exit: Exit::Output,
                    catch: Catch::Propagate,
                };
                self.agent_loop(x, l, region, &mut states, queue);
                (format!("{prefix}.start"), states)
            }
            _ => {
                for (k, &(name, a)) in team.iter().enumerate() {
                    let prefix = format!("{id}.{name}");
                    let fields = if k == 0 {
                        json!({"turn": 0})
                    } else {
                        json!({"turn": 0, "input.$": format!("{slot}.output.answer"),
                               "prior.$": format!("{slot}.output.agents"), "carried.$": format!("{slot}.output.total")})
                    };
                    let mut config = self.agent_config(data, Some((name, a)), Some("agent"));
                    config.push(("input", Entry::Template(task.clone())));
                    config.push(("last", Entry::Literal(json!(k + 1 == n))));
                    let exit = match team.get(k + 1) {
                        Some((next, _)) => Exit::Goto(format!("{id}.{next}.start")),
                        None => Exit::Output,
                    };
                    let l = Loop::member(
                        prefix.clone(),
                        seed(&prefix, fields),
                        slot.clone(),
                        config,
                        a,
                        exit,
                        Catch::Propagate,
                    );
                    self.agent_loop(x, l, region, &mut states, queue);
                }
                let first = team.first().map_or_else(String::new, |(name, _)| format!("{id}.{name}.start"));
                (first, states)
            }
        }
    }

    /// The turn config shared by agents: model, instructions, budget and call settings, the
    /// agent's name and role (for `multi_agent` agents).
    fn agent_config(
        &self,
        data: &Value,
        agent: Option<(&str, &Map<String, Value>)>,
        role: Option<&str>,
    ) -> Vec<(&'static str, Entry)> {
        let own = |key: &str| agent.and_then(|(_, a)| a.get(key)).or_else(|| data.get(key)).cloned();
        let mut c = Vec::new();
        for key in ["model", "instructions", "response_format", "temperature"] {
            if let Some(v) = own(key) {
                c.push((key, Entry::Template(v)));
            }
        }
        if let Some((_, a)) = agent
            && let Some(v) = a.get("max_steps")
        {
            c.push(("max_steps", Entry::Template(v.clone())));
        }
        for key in ["max_tokens", "provider", "timeout_seconds"] {
            if let Some(v) = data.get(key) {
                c.push((key, Entry::Template(v.clone())));
            }
        }
        let tools = agent.map_or_else(|| data.get("tools"), |(_, a)| a.get("tools"));
        c.push(("tools", Entry::Literal(Value::Array(agent::tools(tools).iter().map(Tool::interface).collect()))));
        if let Some((name, _)) = agent {
            c.push(("agent", Entry::Literal(json!(name))));
        }
        if let Some(role) = role {
            c.push(("role", Entry::Literal(json!(role))));
        }
        c
    }

    /// The config of a supervisor's or aggregator's turn: the role object's model and
    /// instructions, else the node's model (or the first agent's) and the default instructions.
    fn role_config(
        &self,
        data: &Value,
        role: Option<&Map<String, Value>>,
        name: &'static str,
        default_instructions: &str,
        team: &[(&str, &Map<String, Value>)],
    ) -> Vec<(&'static str, Entry)> {
        let model = role
            .and_then(|r| r.get("model"))
            .or_else(|| data.get("model"))
            .or_else(|| team.first().and_then(|(_, a)| a.get("model")))
            .cloned()
            .unwrap_or(Value::Null);
        let instructions =
            role.and_then(|r| r.get("instructions")).cloned().unwrap_or_else(|| json!(default_instructions));
        let mut c = vec![("model", Entry::Template(model)), ("instructions", Entry::Template(instructions))];
        for key in ["response_format", "temperature", "max_tokens", "provider", "timeout_seconds"] {
            if let Some(v) = data.get(key) {
                c.push((key, Entry::Template(v.clone())));
            }
        }
        c.push(("tools", Entry::Literal(json!([]))));
        c.push(("agent", Entry::Literal(json!(name))));
        c.push(("role", Entry::Literal(json!(name))));
        c.push(("last", Entry::Literal(json!(true))));
        c
    }

    /// Emits one agent loop into `states` (a map inside the node's branch).
    fn agent_loop(
        &mut self,
        x: usize,
        l: Loop<'g>,
        region: Region,
        states: &mut Map<String, Value>,
        queue: &mut VecDeque<usize>,
    ) {
        let p = l.prefix.clone();
        let slot = l.slot.clone();
        let turn = format!("{p}.turn");
        if let Some((name, mut seed)) = l.seed {
            seed.insert("Next".into(), json!(turn));
            states.insert(name, Value::Object(seed));
        }
        // The turn: one model call on the agent function.
        let mut config = Map::new();
        let mut secret_refs = node_contract::SecretRefs::new();
        for (key, entry) in &l.config {
            match entry {
                Entry::Literal(v) => {
                    config.insert((*key).to_owned(), v.clone());
                }
                Entry::Template(v) => {
                    for (pointer, names) in node_contract::secret_refs(v) {
                        secret_refs.insert(format!("/{key}{pointer}"), names);
                    }
                    self.put(x, &mut config, key, v);
                }
            }
        }
        let mut payload = self.payload(x, Value::Object(config), false, region);
        if let Value::Object(m) = &mut payload {
            m.insert("state.$".into(), json!(slot));
            if !secret_refs.is_empty() {
                m.insert("secrets".into(), json!(secret_refs));
            }
        }
        let fname = self.function_name(x, "agent");
        let mut t = Map::new();
        t.insert("Type".into(), json!("Task"));
        t.insert("Resource".into(), json!("arn:aws:states:::lambda:invoke"));
        t.insert("Parameters".into(), obj([("FunctionName", Value::String(fname)), ("Payload", payload)]));
        t.insert("ResultSelector".into(), json!({"value.$": "$.Payload"}));
        t.insert("ResultPath".into(), json!(slot));
        // A Parallel takes no TimeoutSeconds: the node's timeout bounds each model call.
        if let Some(timeout) = self.graph.nodes[x].timeout_seconds {
            t.insert("TimeoutSeconds".into(), json!(timeout));
        }
        t.insert("Retry".into(), default_retry("agent"));
        if l.catch == Catch::ToolError {
            t.insert(
                "Catch".into(),
                json!([{"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": format!("{p}.failed")}]),
            );
            states.insert(format!("{p}.failed"), tool_failure());
        }
        t.insert("Next".into(), json!(format!("{turn}.output")));
        states.insert(turn.clone(), Value::Object(t));
        states.insert(
            format!("{turn}.output"),
            json!({"Type": "Pass", "InputPath": format!("{slot}.value"), "ResultPath": slot, "Next": format!("{p}.route")}),
        );
        // Where the final answer goes.
        let done = format!("{p}.done");
        let finish = match &l.exit {
            Exit::Goto(next) => next.clone(),
            _ => done.clone(),
        };
        let mut rules = Vec::new();
        if let Some(max) = l.max_steps {
            rules.push(json!({"And": [{"Variable": format!("{slot}.status"), "StringEquals": "tools"},
                                      {"Variable": format!("{slot}.turn"), "NumericGreaterThanEquals": max}],
                              "Next": format!("{p}.max_steps")}));
        }
        rules
            .push(json!({"Variable": format!("{slot}.status"), "StringEquals": "tools", "Next": format!("{p}.tools")}));
        states.insert(format!("{p}.route"), json!({"Type": "Choice", "Choices": rules, "Default": finish}));
        if let Some(max) = l.max_steps {
            states.insert(
                format!("{p}.max_steps"),
                json!({"Type": "Fail", "Error": node_contract::error_names::AGENT_MAX_STEPS,
                       "Cause": format!("the agent asked for tools after max_steps ({max}) model calls")}),
            );
        }
        // The tool calls.
        let iteration = self.tool_calls(x, &p, &l.tools, &l.team, region, queue);
        // The router, or the answer to undeclared tools when there are none to route to.
        let start = iteration.keys().next().cloned().unwrap_or_default();
        let too_long = long_state_name(&iteration);
        let mut selector = Map::new();
        selector.insert("call.$".into(), json!("$$.Map.Item.Value"));
        selector.insert("input.$".into(), json!("$.input"));
        selector.insert("nodes.$".into(), json!("$.nodes"));
        if region.in_loop {
            selector.insert("item.$".into(), json!("$.item"));
            selector.insert("index.$".into(), json!("$.index"));
        }
        let iteration = Value::Object(iteration);
        let mut m = Map::new();
        m.insert("Type".into(), json!("Map"));
        m.insert("ItemsPath".into(), json!(format!("{slot}.calls")));
        m.insert("ItemSelector".into(), Value::Object(selector));
        m.insert(
            "ItemProcessor".into(),
            obj([("ProcessorConfig", json!({"Mode": "INLINE"})), ("StartAt", json!(start)), ("States", iteration)]),
        );
        m.insert("ResultPath".into(), json!(format!("{slot}.results")));
        if l.catch == Catch::ToolError {
            m.insert(
                "Catch".into(),
                json!([{"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": format!("{p}.failed")}]),
            );
        }
        m.insert("Next".into(), json!(turn));
        states.insert(format!("{p}.tools"), Value::Object(m));
        // The final answer.
        match l.exit {
            Exit::Goto(_) => {}
            Exit::Output => {
                states.insert(done, json!({"Type": "Pass", "InputPath": format!("{slot}.output"), "End": true}));
            }
            Exit::ToolResult => {
                states.insert(
                    done,
                    json!({"Type": "Pass", "Parameters": {"id.$": "$.call.id", "name.$": "$.call.name",
                           "args.$": "$.call.args", "result.$": format!("{slot}.output")}, "End": true}),
                );
            }
        }
        let longest = [format!("{turn}.output"), format!("{p}.max_steps")]
            .into_iter()
            .find(|n| n.chars().count() > MAX_STATE_NAME);
        if let Some(name) = longest.or(too_long) {
            let id = self.id(x).to_owned();
            self.diags.push(
                crate::Diagnostic::error(
                    codes::TOO_LARGE,
                    format!("the agent's state `{name}` is longer than {MAX_STATE_NAME} characters (Step Functions' limit): shorten the node id, the agent or the tool names"),
                )
                .at_node(&id),
            );
        }
    }

    /// The states of one tool-call iteration (`$.call` is the call), the first one first.
    fn tool_calls(
        &mut self,
        x: usize,
        p: &str,
        tools: &[Tool<'g>],
        team: &[(&'g str, &'g Map<String, Value>)],
        region: Region,
        queue: &mut VecDeque<usize>,
    ) -> Map<String, Value> {
        let mut states = Map::new();
        let router = format!("{p}.call");
        let unknown = format!("{router}.unknown");
        let mut rules = Vec::new();
        for tool in tools {
            let base = format!("{router}.{}", tool.name);
            let entry = if tool.requires_approval() { format!("{base}.approval") } else { base.clone() };
            rules.push(json!({"Variable": "$.call.key", "StringEquals": tool.name, "Next": entry}));
            self.tool_states(x, &router, tool, region, &mut states);
        }
        if !tools.is_empty() {
            states.insert(
                format!("{router}.ok"),
                json!({"Type": "Pass", "Parameters": {"id.$": "$.call.id", "name.$": "$.call.name", "args.$": "$.call.args",
                       "result.$": "$.out.value"}, "End": true}),
            );
            states.insert(format!("{router}.failed"), tool_failure());
        }
        let id = self.id(x).to_owned();
        let graph: &'g crate::Graph = self.graph;
        let data = &graph.nodes[x].data;
        for &(name, a) in team {
            let prefix = format!("{id}.{name}");
            rules.push(json!({"Variable": "$.call.key", "StringEquals": format!("transfer_to_{name}"),
                              "Next": format!("{prefix}.start")}));
            let mut config = self.agent_config(data, Some((name, a)), Some("agent"));
            config.push(("input", Entry::Template(data.get("task").cloned().unwrap_or(Value::Null))));
            let mut seed = Map::new();
            seed.insert("Type".into(), json!("Pass"));
            seed.insert(
                "Parameters".into(),
                json!({"turn": 0, "input.$": "$.call.args.task", "budget.$": "$.call.budget"}),
            );
            seed.insert("ResultPath".into(), json!("$.agent"));
            let l = Loop::member(
                prefix.clone(),
                Some((format!("{prefix}.start"), seed)),
                "$.agent".to_owned(),
                config,
                a,
                Exit::ToolResult,
                Catch::ToolError,
            );
            self.agent_loop(x, l, region, &mut states, queue);
        }
        let start = if rules.is_empty() {
            unknown.clone()
        } else {
            states.insert(router.clone(), json!({"Type": "Choice", "Choices": rules, "Default": unknown}));
            router
        };
        let mut ordered = Map::new();
        if let Some(first) = states.remove(&start) {
            ordered.insert(start, first);
        }
        ordered.insert(
            unknown,
            json!({"Type": "Pass", "Parameters": {"id.$": "$.call.id", "name.$": "$.call.name", "args.$": "$.call.args",
                   "error": node_contract::error_names::AGENT_UNKNOWN_TOOL,
                   "cause": "the node declares no tool of this name; it was not run"}, "End": true}),
        );
        ordered.extend(states);
        ordered
    }

    /// A declared tool's states: `<router>.<name>` runs it (after `.approval` if it needs one);
    /// `<router>.ok` and `<router>.failed` (shared by the tools) answer the call.
    fn tool_states(
        &mut self,
        x: usize,
        router: &str,
        tool: &Tool<'g>,
        region: Region,
        states: &mut Map<String, Value>,
    ) {
        let base = format!("{router}.{}", tool.name);
        let failed = format!("{router}.failed");
        let catch = json!([{"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": failed}]);
        let id = self.id(x).to_owned();
        if tool.requires_approval() {
            let fname = self.function_name(x, "approval");
            let mut config = Map::new();
            match tool.declaration.get("approval_message") {
                Some(message) => {
                    self.in_tool = true;
                    self.put(x, &mut config, "message", message);
                    self.in_tool = false;
                }
                None => {
                    config.insert(
                        "message.$".into(),
                        json!(format!(
                            "States.Format('The agent {id} asks to call the tool {} with the arguments {{}}', States.JsonToString($.call.args))",
                            tool.name
                        )),
                    );
                }
            }
            let timeout = tool.declaration.get("approval_timeout_seconds").and_then(Value::as_u64);
            if let Some(t) = timeout {
                config.insert("timeout_seconds".into(), json!(t));
            }
            let payload = json!({"node": {"id": id, "type": "approval"}, "config": config,
                                 "execution": {"id.$": "$$.Execution.Id"}, "attempt.$": "$$.State.RetryCount",
                                 "task_token.$": "$$.Task.Token"});
            let mut s = Map::new();
            s.insert("Type".into(), json!("Task"));
            s.insert("Resource".into(), json!("arn:aws:states:::lambda:invoke.waitForTaskToken"));
            s.insert("Parameters".into(), obj([("FunctionName", Value::String(fname)), ("Payload", payload)]));
            s.insert("ResultPath".into(), json!("$.approval"));
            if let Some(t) = timeout {
                s.insert("TimeoutSeconds".into(), json!(t));
            }
            s.insert("Retry".into(), json!([lambda_service_retry()]));
            s.insert("Catch".into(), catch.clone());
            s.insert("Next".into(), json!(base.clone()));
            states.insert(format!("{base}.approval"), Value::Object(s));
        }
        let mut s = Map::new();
        s.insert("Type".into(), json!("Task"));
        self.in_tool = true;
        if tool.tool_type == "workflow" {
            s.insert("Resource".into(), json!("arn:aws:states:::states:startExecution.sync:2"));
            let wid = tool.declaration.get("workflow_id").and_then(Value::as_str).unwrap_or_default();
            let mut params = Map::new();
            params.insert("StateMachineArn".into(), json!(self.options.workflow_arn(wid)));
            let input = tool.declaration.get("input").cloned().unwrap_or_else(|| json!({"args": "{{ args }}"}));
            self.put(x, &mut params, "Input", &input);
            s.insert("Parameters".into(), Value::Object(params));
            s.insert("ResultSelector".into(), json!({"value.$": "$.Output"}));
        } else {
            let mut config = Map::new();
            let mut secret_refs = node_contract::SecretRefs::new();
            for (key, value) in tool.config() {
                if is_js_field(tool.tool_type, key) {
                    config.insert(key.clone(), value.clone());
                    continue;
                }
                let escaped = key.replace('~', "~0").replace('/', "~1");
                for (pointer, names) in node_contract::secret_refs(value) {
                    secret_refs.insert(format!("/{escaped}{pointer}"), names);
                }
                self.put(x, &mut config, key, value);
            }
            let mut payload = self.payload(x, Value::Object(config), tool.tool_type == "code", region);
            if let Value::Object(m) = &mut payload {
                m.insert("node".into(), json!({"id": id, "type": tool.tool_type}));
                if let Some(Value::Object(scope)) = m.get_mut("scope") {
                    scope.insert("args.$".into(), json!("$.call.args"));
                }
                if !secret_refs.is_empty() {
                    m.insert("secrets".into(), json!(secret_refs));
                }
            }
            let fname = self.function_name(x, tool.tool_type);
            s.insert("Resource".into(), json!("arn:aws:states:::lambda:invoke"));
            s.insert("Parameters".into(), obj([("FunctionName", Value::String(fname)), ("Payload", payload)]));
            s.insert("ResultSelector".into(), json!({"value.$": "$.Payload"}));
            s.insert("Retry".into(), default_retry(tool.tool_type));
        }
        self.in_tool = false;
        s.insert("ResultPath".into(), json!("$.out"));
        s.insert("Catch".into(), catch);
        s.insert("Next".into(), json!(format!("{router}.ok")));
        states.insert(base, Value::Object(s));
    }
}

/// The default Retry of a Task invoking the function of `node_type` inside an agent loop: as for
/// a node of that type without `retry`.
fn default_retry(node_type: &str) -> Value {
    json!([lambda_service_retry(), transient_retry(node_type)])
}

/// The first state name longer than Step Functions allows in these states (nested maps included).
fn long_state_name(states: &Map<String, Value>) -> Option<String> {
    let mut stack = vec![states];
    while let Some(m) = stack.pop() {
        for (name, state) in m {
            if name.chars().count() > MAX_STATE_NAME {
                return Some(name.clone());
            }
            if let Some(Value::Object(inner)) = state.get("ItemProcessor").and_then(|p| p.get("States")) {
                stack.push(inner);
            }
            for b in state.get("Branches").and_then(Value::as_array).into_iter().flatten() {
                if let Some(Value::Object(inner)) = b.get("States") {
                    stack.push(inner);
                }
            }
        }
    }
    None
}

/// Answers a tool call with the failure caught at `$.failure`.
fn tool_failure() -> Value {
    json!({"Type": "Pass", "Parameters": {"id.$": "$.call.id", "name.$": "$.call.name", "args.$": "$.call.args",
           "error.$": "$.failure.Error", "cause.$": "$.failure.Cause"}, "End": true})
}
