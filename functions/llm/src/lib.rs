//! The `llm` node function: one chat completion from an OpenAI-compatible model API, streamed to
//! a [`TokenSink`] as the model writes it, with optional structured (JSON / JSON Schema) output,
//! token usage and cost.
//!
//! Config (`data` of an `llm` node, templates already resolved except `{{ secrets.NAME }}`):
//! - `model` (required): the provider's model name, e.g. `gpt-4o-mini`.
//! - `prompt`: the user message; or `messages`: a whole chat history, an array of
//!   `{"role": "system"|"user"|"assistant"|"tool", "content": "..."}` (at most 1000). One of the
//!   two is required, not both.
//! - `system`: a system message, sent first (before `messages` too).
//! - `temperature` (0 to 2), `max_tokens` (a positive whole number): passed on.
//! - `response_format`: `"text"` (default); `"json"` (JSON mode, the reply parsed into `json`);
//!   or a JSON Schema object, sent as structured output (`json_schema`, not `strict`, since
//!   OpenAI's strict mode refuses most ordinary schemas) and checked here with the `jsonschema`
//!   crate (no remote or file `$ref`; `pattern`s in the linear-time `regex` engine). A reply
//!   that is not valid JSON (Markdown code fences are tolerated), or not valid under the schema,
//!   gets ONE repair request (the conversation, the invalid reply, the problems, "reply with only
//!   the corrected JSON"); if that reply is invalid too, `Llm.BadResponse`. Usage and cost then
//!   add up both calls.
//! - `provider`: a tenant-chosen OpenAI-compatible endpoint,
//!   `{"base_url": "https://host/v1", "api_key": "{{ secrets.NAME }}"}` (`api_key` optional, and
//!   only ever a secret template, resolved for the execution's tenant: a literal key is
//!   `Config.Invalid`, it would sit in the graph and in execution state). Without it, the
//!   operator's provider: `OPENAI_BASE_URL` (default `https://api.openai.com/v1`) and
//!   `OPENAI_API_KEY`.
//! - `timeout_seconds` (default 120, at most 900): the whole call, repair and rate-limit wait
//!   included.
//!
//! Output: `{"text", "json"?, "usage": {"input_tokens", "output_tokens", "estimated"},
//! "cost_usd", "model", "finish_reason"}`. `json` only with a JSON `response_format`; `model` is
//! the model that answered as the provider names it; `finish_reason` is OpenAI's spelling
//! (`stop`, `length`, ... or `""` when the provider sent none). `estimated` is true when the
//! provider reported no usage: the counts are then `model_client::estimate_tokens` of the
//! messages and the reply. `cost_usd` comes from `model_client::Prices`: the built-in list
//! prices, overridden and extended by `WEFT_MODEL_PRICES` (JSON `{"model": {"input": USD per 1M,
//! "output": USD per 1M}}`); an unknown model costs 0.
//!
//! Errors (stable names; [`error_names`] plus `model_client::ModelError::name`):
//! - `Llm.RateLimited` (retryable): HTTP 429. A `Retry-After` of at most
//!   `WEFT_LLM_MAX_RETRY_AFTER_SECONDS` (default 20) is waited out first, never past the node's
//!   deadline, so the default Retry that follows starts after the provider's window.
//! - `Llm.Timeout` (retryable): no complete answer within `timeout_seconds`.
//! - `Llm.Provider` (retryable): HTTP 5xx or an error inside the stream.
//! - `Llm.Connect` (retryable): the connection failed or broke.
//! - `Llm.ContextTooLong`: the prompt does not fit the model; shorten it.
//! - `Llm.Auth`: HTTP 401/403 (the key is scrubbed from the message).
//! - `Llm.BadRequest`: any other 4xx (unknown model, bad parameter).
//! - `Llm.BadResponse`: an unusable answer, or structured output invalid after the repair.
//! - `Llm.ForbiddenAddress`: a `provider.base_url` whose host is a loopback, private,
//!   link-local or metadata address not allow-listed in `WEFT_HTTP_ALLOW`.
//! - `Config.Invalid` naming the field; `Secret.NotFound` / `Secret.Unavailable`.
//!
//! **Address guard.** A tenant's `provider.base_url` is reached through `net-guard` (the guarded
//! resolver, IP literals checked before connecting, no proxy, no redirects). The operator's
//! `OPENAI_BASE_URL` is deployment configuration, not graph input, so it is not guarded (it may
//! well be a model server on a private address).
//!
//! **Streaming.** The function always streams from the provider and hands every text delta to
//! the [`TokenSink`] as it arrives; a slow sink never stalls the model stream (bounded channel,
//! coalescing, a flush grace: see [`sink`]). The bootstrap sinks into Redis ([`RedisSink`]) when
//! `WEFT_REDIS_URL` is set; `weft run` prints to stderr ([`StderrSink`]).
//!
//! **Secrets.** Resolved values are scrubbed (`***`) from the output and every error. Text sunk
//! while streaming is scrubbed too, with a hold-back window so a value split across deltas is
//! never sunk in part; a provider's `api_key` is not part of the prompt, so it causes no
//! hold-back.

pub mod config;
pub mod sink;
pub mod structured;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use model_client::{ChatRequest, ChatResponse, Client, Delta, ModelError, Prices, Provider, Usage, estimate_tokens};
use net_guard::Guard;
use node_contract::{NodeError, NodeEvent, NodeFunction, error_names as contract_names};
use serde_json::{Value, json};
use tenant_secrets::{NoSecrets, Scrubber, SecretResolver};
use tokio::time::Instant;

pub use config::{Call, CustomProvider, DEFAULT_TIMEOUT, Format, MAX_MESSAGES, MAX_TIMEOUT};
#[cfg(feature = "redis")]
pub use sink::RedisSink;
pub use sink::{CHANNEL_CAPACITY, Holdback, NoSink, Pump, StderrSink, Token, TokenSink, token_stream_key};

/// The error names of this function (those `model_client` names apart).
pub mod error_names {
    pub const LLM_RATE_LIMITED: &str = "Llm.RateLimited";
    pub const LLM_CONTEXT_TOO_LONG: &str = "Llm.ContextTooLong";
    pub const LLM_BAD_RESPONSE: &str = "Llm.BadResponse";
    pub const LLM_TIMEOUT: &str = "Llm.Timeout";
    pub const LLM_AUTH: &str = "Llm.Auth";
    pub const LLM_PROVIDER: &str = "Llm.Provider";
    pub const LLM_BAD_REQUEST: &str = "Llm.BadRequest";
    pub const LLM_CONNECT: &str = "Llm.Connect";
    /// A tenant's `provider.base_url` is a forbidden address (never retried).
    pub const LLM_FORBIDDEN_ADDRESS: &str = "Llm.ForbiddenAddress";
    /// What a later attempt may cure: the default Retry of `llm` nodes.
    pub const TRANSIENT: &[&str] = &[LLM_RATE_LIMITED, LLM_TIMEOUT, LLM_PROVIDER, LLM_CONNECT];
}

/// Process-wide settings, read once at start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// For tenant-chosen provider URLs (`WEFT_HTTP_ALLOW`).
    pub guard: Guard,
    /// The operator's provider (`OPENAI_BASE_URL`, `OPENAI_API_KEY`); its own timeout is unused
    /// (each call has its node's deadline).
    pub provider: Provider,
    /// `WEFT_MODEL_PRICES` over the defaults.
    pub prices: Prices,
    /// The longest `Retry-After` waited out (`WEFT_LLM_MAX_RETRY_AFTER_SECONDS`, default 20 s).
    pub max_retry_after: Duration,
    /// How long a finished call waits for its sink to take the last text (default 2 s).
    pub sink_flush_grace: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            guard: Guard::default(),
            provider: Provider::default(),
            prices: Prices::default(),
            max_retry_after: Duration::from_secs(20),
            sink_flush_grace: Duration::from_secs(2),
        }
    }
}

/// A setting has a bad value.
#[derive(Debug, thiserror::Error)]
#[error("{name}: {problem}")]
pub struct SettingsError {
    pub name: &'static str,
    pub problem: String,
}

impl Settings {
    /// `WEFT_HTTP_ALLOW`, `OPENAI_BASE_URL`, `OPENAI_API_KEY`, `WEFT_MODEL_PRICES` and
    /// `WEFT_LLM_MAX_RETRY_AFTER_SECONDS` over the defaults.
    pub fn from_env() -> Result<Self, SettingsError> {
        let guard = Guard::from_env().map_err(|problem| SettingsError { name: Guard::ENV, problem })?;
        let mut s = Self { guard, provider: Provider::from_env(), ..Self::default() };
        if let Ok(json) = std::env::var("WEFT_MODEL_PRICES")
            && !json.trim().is_empty()
        {
            s.prices = Prices::from_json(&json)
                .map_err(|e| SettingsError { name: "WEFT_MODEL_PRICES", problem: e.to_string() })?;
        }
        if let Ok(n) = std::env::var("WEFT_LLM_MAX_RETRY_AFTER_SECONDS") {
            s.max_retry_after =
                n.trim().parse::<f64>().ok().and_then(|v| Duration::try_from_secs_f64(v).ok()).ok_or_else(|| {
                    SettingsError {
                        name: "WEFT_LLM_MAX_RETRY_AFTER_SECONDS",
                        problem: format!("`{n}` is not a number of seconds"),
                    }
                })?;
        }
        Ok(s)
    }

    /// The operator provider at `base_url` (no key) and `allow` allow-listed for tenant URLs
    /// (tests: `["127.0.0.1"]`).
    pub fn allowing(allow: &[&str], base_url: &str) -> Result<Self, SettingsError> {
        let allow =
            net_guard::parse_allow(&allow.join(",")).map_err(|problem| SettingsError { name: "allow", problem })?;
        Ok(Self { guard: Guard { allow }, provider: Provider::new(base_url), ..Self::default() })
    }
}

/// The `llm` function's handler: one pooled HTTP client for the operator's provider, one guarded
/// one for tenants' providers, shared by all invocations.
#[derive(Clone)]
pub struct LlmFunction {
    default: Client,
    guarded: reqwest::Client,
    settings: Arc<Settings>,
    secrets: Arc<dyn SecretResolver>,
    sink: Arc<dyn TokenSink>,
}

impl std::fmt::Debug for LlmFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmFunction").field("settings", &self.settings).finish_non_exhaustive()
    }
}

const USER_AGENT: &str = concat!("weft-llm/", env!("CARGO_PKG_VERSION"));

impl LlmFunction {
    pub fn new(settings: Settings) -> Result<Self, SettingsError> {
        let client_error = |e: reqwest::Error| SettingsError { name: "client", problem: e.to_string() };
        let plain = reqwest::Client::builder().user_agent(USER_AGENT).build().map_err(client_error)?;
        let guarded = net_guard::client_builder(Arc::new(settings.guard.clone()))
            .user_agent(USER_AGENT)
            .build()
            .map_err(client_error)?;
        let provider = settings.provider.clone().with_timeout(None);
        let default = Client::new(provider, plain).map_err(|e| SettingsError {
            name: if e.field == "api_key" { "OPENAI_API_KEY" } else { "OPENAI_BASE_URL" },
            problem: e.problem,
        })?;
        Ok(Self {
            default,
            guarded,
            settings: Arc::new(settings),
            secrets: Arc::new(NoSecrets),
            sink: Arc::new(NoSink),
        })
    }

    /// The settings from the environment, no secret store and no sink.
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::new(Settings::from_env()?)
    }

    pub fn with_secrets(mut self, resolver: Arc<dyn SecretResolver>) -> Self {
        self.secrets = resolver;
        self
    }

    pub fn with_sink(mut self, sink: Arc<dyn TokenSink>) -> Self {
        self.sink = sink;
        self
    }

    pub async fn run(&self, event: NodeEvent) -> Result<Value, NodeError> {
        let (config, scrubber, holdback) = self.resolve(&event).await?;
        let outcome = self.call(&event, &config, holdback).await;
        scrubber.result(outcome)
    }

    /// The config with its declared secrets resolved, the scrubber for all of them, and the
    /// hold-back for those that can reach the model (all but the provider's key).
    pub async fn resolve(&self, event: &NodeEvent) -> Result<(Value, Scrubber, Holdback), NodeError> {
        let names: BTreeSet<String> = event.secrets.values().flatten().cloned().collect();
        let mut config = event.config.clone();
        if names.is_empty() {
            return Ok((config, Scrubber::default(), Holdback::new(Scrubber::default(), 0)));
        }
        if event.execution.id.is_empty() {
            return Err(NodeError::new(
                contract_names::SECRET_NOT_FOUND,
                "execution.id is missing, so the execution's tenant (and its secrets) cannot be found",
            ));
        }
        let values = self.secrets.resolve(&event.execution.id, &names).await.map_err(|e| e.node_error())?;
        let scrubber = Scrubber::new(values.values().map(String::as_str));
        let in_prompt: Vec<&str> = event
            .secrets
            .iter()
            .filter(|(pointer, _)| !pointer.starts_with("/provider/"))
            .flat_map(|(_, names)| names.iter())
            .filter_map(|n| values.get(n).map(String::as_str))
            .collect();
        let longest = in_prompt.iter().map(|v| v.len()).max().unwrap_or(0);
        let holdback = Holdback::new(Scrubber::new(in_prompt), longest);
        node_contract::resolve_declared_secrets(&mut config, &event.secrets, &|n| values.get(n).cloned())
            .map_err(|e| scrubber.error(e))?;
        Ok((config, scrubber, holdback))
    }

    async fn call(&self, event: &NodeEvent, config: &Value, holdback: Holdback) -> Result<Value, NodeError> {
        let call = config::parse(config, &event.secrets)?;
        let deadline = Instant::now() + call.timeout;
        let client = self.client_for(call.provider.as_ref())?;
        let client = &*client;
        let mut pump = Pump::start(&self.sink, &event.execution.id, &event.node.id, holdback);
        let Call { request, format, timeout, .. } = call;
        let mut tally = Tally::default();
        let first = self.stream_once(client, &request, &mut pump, deadline, timeout).await?;
        tally.add(&request, &first);
        let (reply, parsed) = match &format {
            Format::Text => (first, None),
            Format::Json | Format::Schema(_) => {
                let schema = match &format {
                    Format::Schema(s) => Some(&**s),
                    _ => None,
                };
                match structured::check(&first.text, schema) {
                    Ok(v) => (first, Some(v)),
                    Err(problems) => {
                        pump.next_reply();
                        let mut repair = request.clone();
                        repair.messages = structured::repair_messages(
                            request.messages.clone(),
                            &first.text,
                            &problems,
                            schema.is_some(),
                        );
                        let second = self.stream_once(client, &repair, &mut pump, deadline, timeout).await?;
                        tally.add(&repair, &second);
                        match structured::check(&second.text, schema) {
                            Ok(v) => (second, Some(v)),
                            Err(problems) => {
                                return Err(NodeError::new(
                                    error_names::LLM_BAD_RESPONSE,
                                    format!(
                                        "the reply is not {} even after a repair request: {}",
                                        if schema.is_some() {
                                            "valid under response_format's schema"
                                        } else {
                                            "valid JSON"
                                        },
                                        problems.join("; ")
                                    ),
                                ));
                            }
                        }
                    }
                }
            }
        };
        pump.finish(deadline.min(Instant::now() + self.settings.sink_flush_grace)).await;
        let model = if reply.model.is_empty() { request.model.clone() } else { reply.model.clone() };
        // A dated or routed name the table does not know is priced as the requested model.
        let priced = if self.settings.prices.is_known(&model) { &model } else { &request.model };
        let cost = self.settings.prices.cost_usd(priced, &tally.usage);
        let mut out = json!({
            "text": reply.text,
            "usage": {"input_tokens": tally.usage.input_tokens, "output_tokens": tally.usage.output_tokens,
                      "estimated": tally.estimated},
            "cost_usd": cost,
            "model": model,
            "finish_reason": reply.finish_reason.as_str(),
        });
        if let Some(v) = parsed {
            out["json"] = v;
        }
        Ok(out)
    }

    /// The process-wide settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The token sink.
    pub fn sink(&self) -> &Arc<dyn TokenSink> {
        &self.sink
    }

    /// The client for a call: the operator's (shared), or one for a tenant's provider, built
    /// over the guarded HTTP client (its pool is shared too).
    pub fn client_for(&self, provider: Option<&CustomProvider>) -> Result<std::borrow::Cow<'_, Client>, NodeError> {
        Ok(match provider {
            None => std::borrow::Cow::Borrowed(&self.default),
            Some(p) => std::borrow::Cow::Owned(self.custom_client(p)?),
        })
    }

    fn custom_client(&self, p: &CustomProvider) -> Result<Client, NodeError> {
        let url = reqwest::Url::parse(&p.base_url)
            .map_err(|e| NodeError::config("provider.base_url", format!("is not a URL: {e}")))?;
        let host = url.host_str().unwrap_or_default();
        // IP literals never reach the guarded resolver.
        self.settings.guard.check_ip_host(host).map_err(|_| forbidden(host))?;
        let mut provider = Provider::new(p.base_url.clone()).with_timeout(None);
        provider.api_key = p.api_key.clone().filter(|k| !k.is_empty());
        Client::new(provider, self.guarded.clone())
            .map_err(|e| NodeError::config(&format!("provider.{}", e.field), e.problem))
    }

    /// One streamed completion; text deltas go to `pump` as they arrive (tool-call pieces are
    /// aggregated by `model_client` into the response's `tool_calls`). Errors are the node's
    /// (`Llm.*`, a `Retry-After` waited out as [`Self::model_error`] says).
    pub async fn stream_once(
        &self,
        client: &Client,
        request: &ChatRequest,
        pump: &mut Pump,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<ChatResponse, NodeError> {
        let streamed = async {
            let mut stream = client.chat_stream(request).await?;
            while let Some(delta) = stream.next().await {
                match delta? {
                    Delta::Text(t) => pump.push(&t),
                    Delta::Done(response) => return Ok(response),
                    Delta::ToolCall { .. } => {}
                }
            }
            Err(ModelError::BadResponse("the stream ended without a final chunk".into()))
        };
        match tokio::time::timeout_at(deadline, streamed).await {
            Err(_) => Err(timed_out(timeout)),
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) => Err(self.model_error(e, deadline, timeout).await),
        }
    }

    /// A model error as the node's error: its `Llm.*` name; a 429's `Retry-After` waited out
    /// first (capped by `max_retry_after` and the deadline); a refused tenant address as
    /// `Llm.ForbiddenAddress`.
    pub async fn model_error(&self, e: ModelError, deadline: Instant, timeout: Duration) -> NodeError {
        match &e {
            ModelError::Timeout => timed_out(timeout),
            ModelError::RateLimited { retry_after: Some(asked), .. } => {
                let left = deadline.saturating_duration_since(Instant::now());
                let cap = self.settings.max_retry_after;
                let (wait, why) = if *asked <= cap.min(left) {
                    (*asked, "")
                } else if cap <= left {
                    (cap, " (capped by WEFT_LLM_MAX_RETRY_AFTER_SECONDS)")
                } else {
                    (left, " (capped by the node's timeout)")
                };
                tokio::time::sleep(wait).await;
                NodeError::new(
                    error_names::LLM_RATE_LIMITED,
                    format!(
                        "{e}; waited {:.1} s{why} before failing, so a retry now respects the provider's window",
                        wait.as_secs_f64()
                    ),
                )
            }
            ModelError::Connect { source: Some(source), .. } if is_forbidden(source) => {
                NodeError::new(error_names::LLM_FORBIDDEN_ADDRESS, format!("provider.base_url: {e}"))
            }
            _ => NodeError::new(e.name(), e.to_string()),
        }
    }
}

/// `Llm.Timeout` for a call that did not finish within `timeout`.
pub fn timed_out(timeout: Duration) -> NodeError {
    NodeError::new(
        error_names::LLM_TIMEOUT,
        format!("the model provider did not answer within timeout_seconds ({:.1} s)", timeout.as_secs_f64()),
    )
}

fn forbidden(host: &str) -> NodeError {
    NodeError::new(
        error_names::LLM_FORBIDDEN_ADDRESS,
        format!(
            "provider.base_url: {host} is a loopback, private, link-local or metadata address; allow-list it with WEFT_HTTP_ALLOW if intended"
        ),
    )
}

fn is_forbidden(err: &reqwest::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(c) = cause {
        if net_guard::is_forbidden_host(c) {
            return true;
        }
        cause = c.source();
    }
    false
}

/// Usage over the calls of one invocation (the reply and a repair).
#[derive(Default)]
struct Tally {
    usage: Usage,
    estimated: bool,
}

impl Tally {
    fn add(&mut self, request: &ChatRequest, response: &ChatResponse) {
        let usage = response.usage.unwrap_or_else(|| {
            self.estimated = true;
            Usage {
                input_tokens: request.messages.iter().map(|m| estimate_tokens(&m.content)).sum(),
                output_tokens: estimate_tokens(&response.text),
            }
        });
        self.usage.input_tokens += usage.input_tokens;
        self.usage.output_tokens += usage.output_tokens;
    }
}

impl NodeFunction for LlmFunction {
    fn handle(&self, event: NodeEvent) -> impl Future<Output = Result<Value, NodeError>> + Send {
        self.run(event)
    }
}
