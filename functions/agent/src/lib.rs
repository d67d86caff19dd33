//! The `agent` node function: ONE turn of an agent loop per invocation. The loop itself is
//! compiled into states (a Task running this function, a Choice on the returned `status`, a Map
//! running the tool calls as ordinary node functions), so every model call and every tool call is
//! a state of the execution: visible, retried and limited like any other. This function reads the
//! loop's working state, adds the tool results to the transcript, makes one streamed model call
//! and returns the new working state. The shapes below are this function's side of the agent
//! loop contract with the compiler (its `agent` and `multi_agent` lowering).
//!
//! **Config** (`data` of an `agent` node, or one agent of a `multi_agent` node; templates resolved
//! except `{{ secrets.NAME }}`):
//! - `model` (required), `temperature`, `response_format` (`"text"`, `"json"` or a JSON Schema
//!   object), `timeout_seconds` (default 120, at most 900: this turn's model call, repair and
//!   rate-limit wait included), `provider` (`{"base_url", "api_key": "{{ secrets.NAME }}"}`): as
//!   an `llm` node's, checked by the same code (fn-llm's).
//! - `instructions`: the system message (rebuilt every turn, never stored in the state).
//! - `input`: the user's task, any JSON (a string as it is, anything else as its JSON text).
//!   `state.input` overrides it; one of them is required (except for an aggregator, which reads
//!   `task`).
//! - `tools`: `[{"name", "description"?, "parameters"?}]` (at most 128): declarations only. `name`
//!   is 1 to 64 of `a-z A-Z 0-9 _ -`, unique, not starting with `transfer_to_`; `parameters` a
//!   JSON Schema of an object (default: any object), compiled here (no remote `$ref`).
//! - `max_steps` (default 10, 1 to 1000): model calls per loop. `on_max_steps`: `"fail"`
//!   (default: `Agent.MaxSteps`) or `"answer"` (end with the last assistant text and
//!   `"stopped": "max_steps"`).
//! - `max_tokens`: the loop's token budget (input + output, all turns, `carried` included); the
//!   seed's `budget` overrides it. Not a per-reply limit: each request's `max_tokens` is what is
//!   left of the budget when that is at most 4096 ([`MAX_SENT_MAX_TOKENS`]; a larger value would
//!   be refused by models that write less), otherwise none is sent.
//! - `agent` (the agent's name, for `multi_agent` agents), `role` (`"agent"` default,
//!   `"supervisor"`, `"aggregator"`), `agents` (supervisor: `[{"name", "description"}]`, each
//!   offered as the tool `transfer_to_<name>(task)`, besides any declared `tools`), `task`
//!   (aggregator: the `multi_agent` task), `last` (the loop whose output is the node's).
//!
//! **State** (`NodeEvent::state`; missing means `{"turn": 0}`; a malformed field is
//! `Config.Invalid` naming it, `state.turn: ...`). Seed fields: `turn`, `input`, `prior`
//! (earlier agents' outputs or summaries), `carried` (`{"usage", "cost_usd"}` spent before this
//! loop; default the sum of `prior`), `budget` (tokens; `null`: no cap). Each turn returns the
//! new working state: every field it received except `results`, with
//! - `turn` (model calls so far), `status` (`"tools"` or `"final"`), `messages` (the transcript
//!   without the system message), `steps` (`{"tool", "args", "result"}` or
//!   `{"tool", "args", "error"}`, accumulated), `usage` (`{input_tokens, output_tokens,
//!   estimated}`) and `cost_usd` of this loop;
//! - `calls` (status `tools`): `[{"id", "key", "name", "args", "budget"?}]`, declared tools only
//!   (`budget`, tokens left or `null`, on a supervisor's `transfer_to_<name>` calls);
//! - `event`: `{"agent"?, "turn", "status", "text" (≤ 2 KiB), "calls": [{"name", "args"}],
//!   "usage", "cost_usd"}` of this turn alone;
//! - `output` (status `final`): an `agent` node's `{"answer", "json"?, "steps", "usage",
//!   "cost_usd", "stopped"?}`; a `multi_agent` agent's (`agent` or a role set, `last` false)
//!   `{"name", "answer", "json"?, "steps", "usage", "cost_usd", "agents", "total": {"usage",
//!   "cost_usd"}}`; the last loop's (`last` true) `{"answer", "json"?, "agents", "usage",
//!   "cost_usd"}` with totals. `agents` lists `{"name", "answer", "json"?, "usage", "cost_usd"}`
//!   summaries: `prior`'s, then a supervisor's collected ones, then this loop's own.
//! - a supervisor also keeps `agents` (the summaries its transfers returned) and `carried` (its
//!   transfers' usage added) in its working state.
//!
//! **Tool results.** The next turn turns `state.results` (`{id, name, args, result}` or `{id,
//! name, args, error, cause}`) into tool messages, in the order the model made the calls: a
//! string result as it is, another value as its JSON text, a failure as
//! `error: <name>: <message>` (the cause's `errorMessage` when it is a Lambda error's JSON; a
//! child execution's own `Error`/`Cause` for `States.TaskFailed`; at most 1 KiB). A supervisor's
//! transfer result is the sub-agent's output: the model sees its `answer`, the steps record the
//! answer, and its usage and `agents` are added to the supervisor's. A call the results do not
//! answer is answered `error: Agent.NoResult: ...`; results for calls not asked are ignored.
//!
//! **Tool-call safety.** Tool names and arguments come from the model: untrusted text, used only
//! in equality checks and messages. A call to an undeclared tool is never put in `calls`: it is
//! answered `error: Agent.UnknownTool: the node declares no tool named "x"; declared: a, b` and
//! recorded in `steps`; so are arguments that are not a JSON object (empty arguments are `{}`) or
//! not valid under the tool's `parameters` (`Agent.InvalidArguments`), and calls beyond 16 in one
//! reply (`Agent.TooManyCalls`: call it again). A call id that is missing, repeated or longer
//! than 64 bytes is replaced (`call_<turn>_<i>`) in the transcript and `calls` alike.
//! `Agent.NoResult` and `Agent.TooManyCalls` only ever appear in the transcript, never as a
//! node error.
//!
//! **Limits.** A tool result longer than 16 KiB is cut (`…[truncated N bytes]`) in the
//! transcript and in `steps`. When the returned state is larger than 200 KiB, the oldest tool
//! results (and step results) are shortened to 1 KiB, oldest first, until it fits; if it still
//! does not, `Agent.TranscriptTooLarge`. `max_steps`: a reply that asks for tools at turn
//! `max_steps` is `Agent.MaxSteps` (or, with `on_max_steps: "answer"`, the final answer). Budget:
//! before the call, `used >= budget` is `Agent.BudgetExceeded`; after it, `used > budget`
//! (`used` = `carried` + this loop).
//!
//! **Structured output.** A JSON `response_format` is sent with every request (providers apply
//! it to the text reply, not to tool calls). The final answer (a reply without tool calls) is
//! parsed into `json` (Markdown code fences tolerated); an invalid one gets ONE repair request in the same invocation
//! (tools offered with `tool_choice: "none"`), else `Llm.BadResponse`. The repair is not a turn
//! (`turn` counts invocations), but its usage counts. A `stopped` answer is not repaired: it has
//! `json` only if it parses.
//!
//! **Prompts.** System: `instructions`, then for a supervisor its agents and
//! "delegate with transfer_to_<name>(task)"; for an aggregator "combine the agents' answers"; for
//! any other agent with `prior`, the earlier answers as context (name: answer, each cut to 4 KiB).
//! First user message: the input; for an aggregator the task and each prior answer under its
//! name (each cut to 16 KiB).
//!
//! **Errors**: the model's exactly as fn-llm's (`Llm.RateLimited` after waiting out a capped
//! `Retry-After`, `Llm.Timeout`, `Llm.Provider`, `Llm.Connect`, `Llm.Auth`, `Llm.BadRequest`,
//! `Llm.ContextTooLong`, `Llm.BadResponse`, `Llm.ForbiddenAddress`); `Agent.MaxSteps`,
//! `Agent.BudgetExceeded`, `Agent.TranscriptTooLarge`; `Config.Invalid`; `Secret.NotFound` /
//! `Secret.Unavailable`.
//!
//! **Streaming and secrets** as fn-llm's: text deltas go to the [`TokenSink`] (node id = the
//! graph node's id; `Token::agent` = `config.agent` for `multi_agent` agents; reply 1 is a
//! repair's); declared secrets are resolved, and scrubbed (`***`) from the returned state, the
//! errors and the tokens. The state is scrubbed as a whole, so a secret the model echoed, or one
//! in a resolved `input`, reaches later turns as `***`.

mod config;
mod state;
pub mod transcript;

use std::collections::HashSet;
use std::sync::Arc;

use fn_llm::{Format, Holdback, LlmFunction, Pump};
use model_client::{
    ChatRequest, ChatResponse, Client, Message, Role as MessageRole, Tool, ToolCall, ToolChoice, estimate_tokens,
};
use node_contract::{NodeError, NodeEvent, NodeFunction, error_names};
use serde_json::{Map, Value, json};
use tenant_secrets::SecretResolver;
use tokio::time::Instant;

pub use config::{DEFAULT_MAX_STEPS, MAX_MAX_STEPS, MAX_TOOLS, TRANSFER_PREFIX};
pub use fn_llm::{NoSink, RedisSink, Settings, SettingsError, StderrSink, Token, TokenSink, token_stream_key};

use config::{Agent, OnMaxSteps, Role};
use state::{State, Totals};
use transcript::{clip, cut, error_text, text_of};

/// The most tool calls of one reply that are run; the rest are answered with an error.
pub const MAX_CALLS_PER_TURN: usize = 16;
/// The longest assistant text in a turn's `event`.
pub const MAX_EVENT_TEXT_BYTES: usize = 2048;
/// The longest prior answer quoted in a later agent's system message.
pub const MAX_PRIOR_CONTEXT_BYTES: usize = 4096;
/// The largest request `max_tokens` sent to cap a reply to the budget's remainder: every
/// current chat model can write at least this many tokens, so it is never refused as too large.
pub const MAX_SENT_MAX_TOKENS: u64 = 4096;
/// The longest call id kept as the model wrote it.
const MAX_CALL_ID_BYTES: usize = 64;
/// The longest untrusted tool name quoted in messages and steps.
const MAX_NAME_BYTES: usize = 128;

/// The `agent` function's handler: fn-llm's model plumbing (pooled clients, settings, secret
/// store, token sink) shared by all invocations.
#[derive(Clone, Debug)]
pub struct AgentFunction {
    llm: LlmFunction,
    schemas: Arc<config::Schemas>,
}

impl AgentFunction {
    pub fn new(settings: Settings) -> Result<Self, SettingsError> {
        Ok(Self { llm: LlmFunction::new(settings)?, schemas: Arc::default() })
    }

    /// The settings from the environment (fn-llm's: `OPENAI_BASE_URL`, `OPENAI_API_KEY`,
    /// `WEFT_HTTP_ALLOW`, `WEFT_MODEL_PRICES`, `WEFT_LLM_MAX_RETRY_AFTER_SECONDS`), no secret
    /// store and no sink.
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::new(Settings::from_env()?)
    }

    pub fn with_secrets(self, resolver: Arc<dyn SecretResolver>) -> Self {
        Self { llm: self.llm.with_secrets(resolver), ..self }
    }

    pub fn with_sink(self, sink: Arc<dyn TokenSink>) -> Self {
        Self { llm: self.llm.with_sink(sink), ..self }
    }

    /// One turn: the new working state (see the crate docs).
    pub async fn run(&self, mut event: NodeEvent) -> Result<Value, NodeError> {
        let state = event.state.take();
        let (config, scrubber, holdback) = self.llm.resolve(&event).await?;
        let outcome = self.turn(&event, &config, state, holdback).await;
        scrubber.result(outcome)
    }

    async fn turn(
        &self,
        event: &NodeEvent,
        config: &Value,
        state: Option<Value>,
        holdback: Holdback,
    ) -> Result<Value, NodeError> {
        let agent = config::parse(config, &event.secrets, &self.schemas)?;
        let mut st = state::parse(state)?;
        let deadline = Instant::now() + agent.call.timeout;
        if st.messages.is_empty() {
            let first = first_message(&agent, &st)?;
            st.messages.push(Message::user(first));
        }
        let carried_changed = consume_results(&agent, &mut st);
        if st.turn >= agent.max_steps {
            return Err(max_steps(&agent));
        }
        let budget = st.budget.unwrap_or(agent.max_tokens);
        let mut request = agent.call.request.clone();
        let system = system_message(&agent, &st);
        let offset = usize::from(system.is_some());
        request.messages = system.into_iter().chain(std::mem::take(&mut st.messages)).collect();
        request.tools = agent
            .tools
            .iter()
            .map(|t| Tool {
                name: t.name.clone(),
                description: t.description.clone(),
                parameters: t.parameters.clone(),
                strict: None,
            })
            .collect();

        let client = self.llm.client_for(agent.call.provider.as_ref())?;
        let mut pump = Pump::start_with_agent(
            self.llm.sink(),
            &event.execution.id,
            &event.node.id,
            agent.agent.as_deref(),
            holdback,
        );
        let mut this_turn = Totals::default();
        cap_to_budget(&mut request, budget, &st)?;
        let reply = self.llm.stream_once(&client, &request, &mut pump, deadline, agent.call.timeout).await?;
        let spent = self.tally(&request, &reply);
        this_turn.add(&spent);
        st.spent.add(&spent);
        st.turn += 1;
        over_budget(budget, &st)?;

        let mut event_calls = Vec::new();
        let mut calls = Vec::new();
        let mut ending = None;
        if reply.tool_calls.is_empty() {
            request.messages.push(Message::assistant(reply.text.clone()));
            let json = match &agent.call.format {
                Format::Text => None,
                Format::Json | Format::Schema(_) => {
                    let mut call =
                        Ongoing { request: &mut request, st: &mut st, this_turn: &mut this_turn, pump: &mut pump };
                    Some(self.structured(&agent, &client, &reply, budget, &mut call, deadline).await?)
                }
            };
            let answer = match request.messages.last() {
                Some(m) if m.role == MessageRole::Assistant => m.content.clone(),
                _ => reply.text.clone(),
            };
            ending = Some((answer, json, false));
        } else if st.turn >= agent.max_steps {
            if agent.on_max_steps == OnMaxSteps::Fail {
                return Err(max_steps(&agent));
            }
            // The calls are not run: the transcript keeps only the text, so it stays a valid
            // conversation.
            request.messages.push(Message::assistant(reply.text.clone()));
            event_calls = reply
                .tool_calls
                .iter()
                .map(|c| json!({"name": clip(&c.name, MAX_NAME_BYTES), "args": args_for_display(&c.arguments)}))
                .collect();
            let answer = request.messages[offset..]
                .iter()
                .rev()
                .find(|m| m.role == MessageRole::Assistant && !m.content.trim().is_empty())
                .map(|m| m.content.clone())
                .unwrap_or_default();
            let json = agent.wants_json().then(|| fn_llm::structured::check(&answer, agent.schema()).ok()).flatten();
            ending = Some((answer, json, true));
        } else {
            let left = budget.map(|b| b.saturating_sub(st.carried.tokens().saturating_add(st.spent.tokens())));
            let checked = check_calls(&agent, &reply, st.turn, left);
            request.messages.push(Message::assistant_tool_calls(reply.text.clone(), checked.assistant_calls));
            request.messages.extend(checked.answers);
            st.steps.extend(checked.steps);
            calls = checked.calls;
            event_calls = checked.event_calls;
        }
        pump.finish(deadline.min(Instant::now() + self.llm.settings().sink_flush_grace)).await;

        st.messages = request.messages.split_off(offset);
        let status = if ending.is_some() { "final" } else { "tools" };
        let mut event_summary = Map::new();
        if let Some(name) = &agent.agent {
            event_summary.insert("agent".into(), json!(name));
        }
        event_summary.insert("turn".into(), json!(st.turn));
        event_summary.insert("status".into(), json!(status));
        // A final turn shows its answer (a repair's reply, when there was one).
        let text = match &ending {
            Some((answer, _, false)) => answer.as_str(),
            _ => reply.text.as_str(),
        };
        event_summary.insert("text".into(), json!(clip(text, MAX_EVENT_TEXT_BYTES)));
        event_summary.insert("calls".into(), Value::Array(event_calls));
        event_summary.insert("usage".into(), this_turn.usage_json());
        event_summary.insert("cost_usd".into(), json!(this_turn.cost_usd));

        let output = ending.map(|(answer, json, stopped)| output(&agent, &st, answer, json, stopped));
        finish_state(&agent, st, status, calls, Value::Object(event_summary), output, carried_changed)
    }

    /// The final answer as JSON, with one repair request when it is not valid.
    async fn structured(
        &self,
        agent: &Agent,
        client: &Client,
        reply: &ChatResponse,
        budget: Option<u64>,
        call: &mut Ongoing<'_>,
        deadline: Instant,
    ) -> Result<Value, NodeError> {
        let Ongoing { request, st, this_turn, pump } = call;
        let schema = agent.schema();
        let problems = match fn_llm::structured::check(&reply.text, schema) {
            Ok(v) => return Ok(v),
            Err(problems) => problems,
        };
        let ask = fn_llm::structured::repair_messages(Vec::new(), &reply.text, &problems, schema.is_some());
        // `repair_messages` repeats the invalid reply (already in the transcript) first.
        request.messages.extend(ask.into_iter().skip(1));
        if !request.tools.is_empty() {
            request.tool_choice = Some(ToolChoice::None);
        }
        cap_to_budget(request, budget, st)?;
        pump.next_reply();
        let second = self.llm.stream_once(client, request, pump, deadline, agent.call.timeout).await?;
        request.tool_choice = None;
        let spent = self.tally(request, &second);
        this_turn.add(&spent);
        st.spent.add(&spent);
        over_budget(budget, st)?;
        request.messages.push(Message::assistant(second.text.clone()));
        fn_llm::structured::check(&second.text, schema).map_err(|problems| {
            NodeError::new(
                fn_llm::error_names::LLM_BAD_RESPONSE,
                format!(
                    "the final answer is not {} even after a repair request: {}",
                    if schema.is_some() { "valid under response_format's schema" } else { "valid JSON" },
                    problems.join("; ")
                ),
            )
        })
    }

    /// Usage and cost of one call (estimated when the provider reported no usage).
    fn tally(&self, request: &ChatRequest, reply: &ChatResponse) -> Totals {
        let (usage, estimated) = match reply.usage {
            Some(u) => (u, false),
            None => {
                let call_tokens = |calls: &[ToolCall]| -> u64 {
                    calls.iter().map(|c| estimate_tokens(&c.name) + estimate_tokens(&c.arguments)).sum()
                };
                let input =
                    request.messages.iter().map(|m| estimate_tokens(&m.content) + call_tokens(&m.tool_calls)).sum();
                let output = estimate_tokens(&reply.text) + call_tokens(&reply.tool_calls);
                (model_client::Usage { input_tokens: input, output_tokens: output }, true)
            }
        };
        let prices = &self.llm.settings().prices;
        // A dated or routed name the table does not know is priced as the requested model.
        let priced =
            if !reply.model.is_empty() && prices.is_known(&reply.model) { &reply.model } else { &request.model };
        Totals {
            input_tokens: usage.input_tokens,
            output_tokens: usage.output_tokens,
            cost_usd: prices.cost_usd(priced, &usage),
            estimated,
        }
    }
}

/// What a repair request changes: the request, the state's usage, the turn's and the pump.
struct Ongoing<'a> {
    request: &'a mut ChatRequest,
    st: &'a mut State,
    this_turn: &'a mut Totals,
    pump: &'a mut Pump,
}

impl NodeFunction for AgentFunction {
    fn handle(&self, event: NodeEvent) -> impl Future<Output = Result<Value, NodeError>> + Send {
        self.run(event)
    }
}

fn max_steps(agent: &Agent) -> NodeError {
    NodeError::new(
        error_names::AGENT_MAX_STEPS,
        format!(
            "the agent still asked for tools after {} model calls (max_steps); raise max_steps, or set on_max_steps to \"answer\" to end with its last answer",
            agent.max_steps
        ),
    )
}

fn budget_exceeded(used: u64, budget: u64, when: &str) -> NodeError {
    NodeError::new(
        error_names::AGENT_BUDGET_EXCEEDED,
        format!(
            "used {used} tokens of the budget of {budget} (input and output, all turns and earlier agents){when}; raise max_tokens"
        ),
    )
}

/// Before a call: the budget must have room; the request may use what is left.
fn cap_to_budget(request: &mut ChatRequest, budget: Option<u64>, st: &State) -> Result<(), NodeError> {
    let Some(b) = budget else { return Ok(()) };
    let used = st.carried.tokens().saturating_add(st.spent.tokens());
    if used >= b {
        return Err(budget_exceeded(used, b, " before the next model call"));
    }
    // A `max_tokens` above what the model can write is a 400 for most providers, so a large
    // remainder is not sent: the check after the call still holds the budget.
    let left = b - used;
    request.max_tokens = (left <= MAX_SENT_MAX_TOKENS).then(|| u32::try_from(left).unwrap_or(u32::MAX));
    Ok(())
}

/// After a call: the budget must not be exceeded.
fn over_budget(budget: Option<u64>, st: &State) -> Result<(), NodeError> {
    let Some(b) = budget else { return Ok(()) };
    let used = st.carried.tokens().saturating_add(st.spent.tokens());
    if used > b { Err(budget_exceeded(used, b, "")) } else { Ok(()) }
}

/// The first user message: the input, or for an aggregator the task and the agents' answers.
fn first_message(agent: &Agent, st: &State) -> Result<String, NodeError> {
    let input = st.input.as_ref().or(agent.input.as_ref());
    if agent.role == Role::Aggregator {
        let task = agent.task.as_ref().or(input).map(text_of).unwrap_or_default();
        let mut text = format!("Task:\n{task}\n\nThe agents' answers:");
        for p in &st.prior {
            let name = p.get("name").map(text_of).unwrap_or_default();
            let answer = p.get("answer").map(text_of).unwrap_or_default();
            let answer = cut(&answer, transcript::MAX_TOOL_RESULT_BYTES).unwrap_or(answer);
            text.push_str(&format!("\n\n## {name}\n{answer}"));
        }
        return Ok(text);
    }
    input.map(text_of).ok_or_else(|| {
        NodeError::config("input", "is required: the agent's task (or the loop's seed gives it as state.input)")
    })
}

/// The system message: the instructions and what the role adds.
fn system_message(agent: &Agent, st: &State) -> Option<Message> {
    let mut text = agent.instructions.trim_end().to_owned();
    let mut add = |part: &str| {
        if !text.is_empty() {
            text.push_str("\n\n");
        }
        text.push_str(part);
    };
    match agent.role {
        Role::Supervisor => {
            let mut part = String::from("You lead these agents:");
            for a in &agent.agents {
                part.push_str(&format!("\n- {}: {}", a.name, a.description));
            }
            part.push_str(&format!(
                "\nDelegate a task to an agent with {TRANSFER_PREFIX}<name>(task); its answer comes back as the tool's result. When you have what you need, give the final answer yourself."
            ));
            add(&part);
        }
        Role::Aggregator => {
            add("Combine the agents' answers (in the user's message) into one answer to the task.");
        }
        Role::Agent => {}
    }
    if agent.role != Role::Aggregator && !st.prior.is_empty() {
        let mut part = String::from("What the agents before you answered (context):");
        for p in &st.prior {
            let name = p.get("name").map(text_of).unwrap_or_default();
            let answer = p.get("answer").map(text_of).unwrap_or_default();
            let answer = cut(&answer, MAX_PRIOR_CONTEXT_BYTES).unwrap_or(answer);
            part.push_str(&format!("\n- {name}: {answer}"));
        }
        add(&part);
    }
    (!text.is_empty()).then(|| Message::system(text))
}

/// Adds `state.results` to the transcript (and steps), answering every call of the last
/// assistant message not answered yet. `true` when a transfer result changed `carried`.
fn consume_results(agent: &Agent, st: &mut State) -> bool {
    let Some(at) = st.messages.iter().rposition(|m| m.role == MessageRole::Assistant && !m.tool_calls.is_empty())
    else {
        return false;
    };
    let answered: HashSet<&str> = st.messages[at + 1..]
        .iter()
        .filter(|m| m.role == MessageRole::Tool)
        .filter_map(|m| m.tool_call_id.as_deref())
        .collect();
    let pending: Vec<ToolCall> =
        st.messages[at].tool_calls.iter().filter(|c| !answered.contains(c.id.as_str())).cloned().collect();
    let mut changed = false;
    for call in pending {
        let found = st.results.iter().find(|r| r.get("id").and_then(Value::as_str) == Some(call.id.as_str()));
        let args = found.and_then(|r| r.get("args").cloned()).unwrap_or_else(|| args_for_display(&call.arguments));
        let name = clip(&call.name, MAX_NAME_BYTES);
        let (content, step) = match found {
            None => {
                let message = "the tool call returned no result (it was not run)";
                (
                    error_text("Agent.NoResult", message),
                    json!({"tool": name, "args": args, "error": format!("Agent.NoResult: {message}")}),
                )
            }
            Some(r) if r.get("error").is_some_and(|e| !e.is_null()) => {
                let error = r.get("error").map(text_of).unwrap_or_default();
                let (error, message) = transcript::failure(&error, r.get("cause"));
                let step_error = if message.is_empty() { error.clone() } else { format!("{error}: {message}") };
                (error_text(&error, &message), json!({"tool": name, "args": args, "error": step_error}))
            }
            Some(r) => {
                let value = r.get("result").cloned().unwrap_or(Value::Null);
                let value = match agent.tool(&call.name).and_then(|t| t.transfer.as_deref()) {
                    Some(sub) => {
                        changed = true;
                        transfer_result(sub, value, st)
                    }
                    None => value,
                };
                let (content, kept) = transcript::result(value);
                (content, json!({"tool": name, "args": args, "result": kept}))
            }
        };
        st.messages.push(Message::tool(call.id.clone(), content));
        st.steps.push(step);
    }
    st.results.clear();
    changed
}

/// A sub-agent's output as a supervisor's tool result: its usage joins the supervisor's
/// `carried`, its `agents` the supervisor's list; the model sees its answer.
fn transfer_result(sub: &str, output: Value, st: &mut State) -> Value {
    let totals = Totals::read(&output, "result").unwrap_or_default();
    st.carried.add(&totals);
    let answer = output.get("answer").cloned().unwrap_or_else(|| output.clone());
    match output.get("agents") {
        Some(Value::Array(entries)) if !entries.is_empty() => {
            st.agents.extend(entries.iter().filter(|e| e.is_object()).cloned());
        }
        _ => {
            let mut entry =
                json!({"name": output.get("name").cloned().unwrap_or_else(|| json!(sub)), "answer": answer});
            if let Some(j) = output.get("json") {
                entry["json"] = j.clone();
            }
            entry["usage"] = totals.usage_json();
            entry["cost_usd"] = json!(totals.cost_usd);
            st.agents.push(entry);
        }
    }
    answer
}

/// The model's arguments for steps and events: the JSON if it parses, else the raw text (cut).
fn args_for_display(arguments: &str) -> Value {
    match serde_json::from_str::<Value>(arguments) {
        Ok(v) => v,
        Err(_) => Value::String(clip(arguments, 1024)),
    }
}

/// The checked calls of one reply.
struct Checked {
    /// The reply's calls as the transcript keeps them (ids made unique).
    assistant_calls: Vec<ToolCall>,
    /// Tool messages answering the calls that are not run.
    answers: Vec<Message>,
    steps: Vec<Value>,
    calls: Vec<Value>,
    event_calls: Vec<Value>,
}

fn check_calls(agent: &Agent, reply: &ChatResponse, turn: u64, left: Option<u64>) -> Checked {
    let mut out = Checked {
        assistant_calls: Vec::new(),
        answers: Vec::new(),
        steps: Vec::new(),
        calls: Vec::new(),
        event_calls: Vec::new(),
    };
    let mut ids = HashSet::new();
    for (i, call) in reply.tool_calls.iter().enumerate() {
        let id = if call.id.is_empty() || call.id.len() > MAX_CALL_ID_BYTES || ids.contains(&call.id) {
            format!("call_{turn}_{i}")
        } else {
            call.id.clone()
        };
        ids.insert(id.clone());
        out.assistant_calls.push(ToolCall {
            id: id.clone(),
            name: call.name.clone(),
            arguments: call.arguments.clone(),
        });
        let shown = clip(&call.name, MAX_NAME_BYTES);
        out.event_calls.push(json!({"name": shown, "args": args_for_display(&call.arguments)}));
        let refused = if i >= MAX_CALLS_PER_TURN {
            Err((
                "Agent.TooManyCalls",
                format!("at most {MAX_CALLS_PER_TURN} tool calls are run per turn; this one was not: call it again"),
            ))
        } else {
            match agent.tool(&call.name) {
                None => Err((error_names::AGENT_UNKNOWN_TOOL, unknown_tool(agent, &shown))),
                Some(tool) => match arguments(&call.arguments, tool) {
                    Err(problem) => Err((error_names::AGENT_INVALID_ARGUMENTS, problem)),
                    Ok(args) => Ok((tool, args)),
                },
            }
        };
        match refused {
            Ok((tool, args)) => {
                let mut c = json!({"id": id, "key": tool.name, "name": tool.name, "args": args});
                if tool.transfer.is_some() {
                    c["budget"] = json!(left);
                }
                out.calls.push(c);
            }
            Err((error, message)) => {
                out.answers.push(Message::tool(id, error_text(error, &message)));
                out.steps.push(
                    json!({"tool": shown, "args": args_for_display(&call.arguments), "error": format!("{error}: {message}")}),
                );
            }
        }
    }
    out
}

fn unknown_tool(agent: &Agent, name: &str) -> String {
    let declared: Vec<&str> = agent.tools.iter().map(|t| t.name.as_str()).collect();
    let declared = if declared.is_empty() { "none".to_owned() } else { declared.join(", ") };
    format!("the node declares no tool named {}; declared: {declared}", json!(name))
}

/// The model's arguments as a JSON object valid under the tool's parameters.
fn arguments(text: &str, tool: &config::ToolDecl) -> Result<Value, String> {
    let value = if text.trim().is_empty() {
        Value::Object(Map::new())
    } else {
        serde_json::from_str::<Value>(text)
            .map_err(|e| format!("the arguments of {} are not valid JSON: {e}", tool.name))?
    };
    if !value.is_object() {
        return Err(format!(
            "the arguments of {} must be a JSON object, got {}",
            tool.name,
            node_contract::kind_of(&value)
        ));
    }
    let problems = tool.schema.problems(&value);
    if !problems.is_empty() {
        return Err(format!("the arguments of {} do not match its parameters: {}", tool.name, problems.join("; ")));
    }
    Ok(value)
}

/// A summary for `agents` lists: `{"name", "answer", "json"?, "usage", "cost_usd"}`.
fn summary(v: &Value) -> Value {
    let mut s = json!({"name": v.get("name").cloned().unwrap_or(Value::Null), "answer": v.get("answer").cloned().unwrap_or(Value::Null)});
    if let Some(j) = v.get("json") {
        s["json"] = j.clone();
    }
    let t = Totals::read(v, "prior").unwrap_or_default();
    s["usage"] = t.usage_json();
    s["cost_usd"] = json!(t.cost_usd);
    s
}

/// The loop's output (status final); its `steps` are added by [`finish_state`].
fn output(agent: &Agent, st: &State, answer: String, json: Option<Value>, stopped: bool) -> Value {
    let own = st.spent;
    let total = st.carried.plus(&st.spent);
    let multi = agent.agent.is_some() || agent.role != Role::Agent;
    let agents = || {
        let mut all: Vec<Value> = st.prior.iter().chain(&st.agents).map(summary).collect();
        let mut me = json!({"name": agent.name(), "answer": answer});
        if let Some(j) = &json {
            me["json"] = j.clone();
        }
        me["usage"] = own.usage_json();
        me["cost_usd"] = json!(own.cost_usd);
        all.push(me);
        Value::Array(all)
    };
    let mut out = Map::new();
    if multi && !agent.last {
        out.insert("name".into(), json!(agent.name()));
    }
    out.insert("answer".into(), json!(answer));
    if let Some(j) = &json {
        out.insert("json".into(), j.clone());
    }
    if agent.last {
        out.insert("agents".into(), agents());
        out.insert("usage".into(), total.usage_json());
        out.insert("cost_usd".into(), json!(total.cost_usd));
    } else {
        out.insert("steps".into(), Value::Null);
        out.insert("usage".into(), own.usage_json());
        out.insert("cost_usd".into(), json!(own.cost_usd));
        if multi {
            out.insert("agents".into(), agents());
            out.insert("total".into(), json!({"usage": total.usage_json(), "cost_usd": total.cost_usd}));
        }
    }
    if stopped {
        out.insert("stopped".into(), json!("max_steps"));
    }
    Value::Object(out)
}

/// The returned working state, fitted into [`transcript::MAX_STATE_BYTES`].
fn finish_state(
    agent: &Agent,
    mut st: State,
    status: &str,
    calls: Vec<Value>,
    event: Value,
    mut output: Option<Value>,
    carried_changed: bool,
) -> Result<Value, NodeError> {
    let mut out = std::mem::take(&mut st.raw);
    for field in
        ["turn", "status", "messages", "calls", "results", "steps", "usage", "cost_usd", "event", "output", "agents"]
    {
        out.remove(field);
    }
    out.insert("turn".into(), json!(st.turn));
    out.insert("status".into(), json!(status));
    if carried_changed {
        out.insert("carried".into(), json!({"usage": st.carried.usage_json(), "cost_usd": st.carried.cost_usd}));
    }
    if !st.agents.is_empty() || agent.role == Role::Supervisor {
        out.insert("agents".into(), Value::Array(std::mem::take(&mut st.agents)));
    }
    if status == "tools" {
        out.insert("calls".into(), Value::Array(calls));
    }
    out.insert("usage".into(), st.spent.usage_json());
    out.insert("cost_usd".into(), json!(st.spent.cost_usd));
    out.insert("event".into(), event);
    let steps_in_output = output.as_ref().is_some_and(|o| o.get("steps").is_some());
    if let Some(o) = output.take() {
        out.insert("output".into(), o);
    }
    let base = json_len(&out);
    let size = |messages: &[Message], steps: &[Value]| {
        // `"messages":` and `"steps":` with their commas, and the steps again in the output.
        let steps_len = json_len(&steps);
        base + 24 + json_len(&messages) + steps_len * (1 + usize::from(steps_in_output))
    };
    if !transcript::fit(&mut st.messages, &mut st.steps, &size) {
        return Err(NodeError::new(
            error_names::AGENT_TRANSCRIPT_TOO_LARGE,
            format!(
                "the agent's working state is {} KiB even with every tool result shortened to {} bytes, over the {} KiB the execution state allows it; give the agent fewer steps or tools with shorter results",
                size(&st.messages, &st.steps) / 1024,
                transcript::SHORTENED_TOOL_RESULT_BYTES,
                transcript::MAX_STATE_BYTES / 1024
            ),
        ));
    }
    let steps = Value::Array(std::mem::take(&mut st.steps));
    if let Some(Value::Object(o)) = out.get_mut("output")
        && let Some(slot) = o.get_mut("steps")
    {
        *slot = steps.clone();
    }
    let messages = serde_json::to_value(&st.messages).map_err(|e| {
        NodeError::new(fn_llm::error_names::LLM_BAD_RESPONSE, format!("the transcript cannot be written as JSON: {e}"))
    })?;
    out.insert("messages".into(), messages);
    out.insert("steps".into(), steps);
    Ok(Value::Object(out))
}

/// The length of `v` as JSON.
fn json_len<T: serde::Serialize + ?Sized>(v: &T) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Count(0);
    let _ = serde_json::to_writer(&mut c, v);
    c.0
}
