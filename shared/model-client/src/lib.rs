//! A small client for OpenAI-compatible model APIs: chat completions (whole or streamed, with
//! tools and structured output) and embeddings; plus a price table and a token estimate.
//!
//! **Why our own types over reqwest** (and not `async-openai`): the servers Weft talks to are
//! OpenAI itself and many "compatible" ones (vLLM, llama.cpp, Ollama, LiteLLM, OpenRouter...), which
//! differ in small ways a strictly typed client rejects: `finish_reason: ""` or unknown values,
//! `content: null` or an array of parts, tool-call chunks repeating `id`/`name`, arguments as an
//! object, numbers as strings, no usage chunk, no `[DONE]`. Every response field here is optional
//! and lenient (`src/wire.rs`); only what we cannot do without (a choice with a message) is an
//! error. It is also a much smaller build: serde types and a hand-written SSE parser.
//!
//! **Use.** [`Client::new`] takes a [`Provider`] (base URL, optional API key, limits; see
//! [`Provider::from_env`] for the OpenAI SDK variables `OPENAI_BASE_URL` and `OPENAI_API_KEY`) and
//! the caller's `reqwest::Client`, so node functions pass one built with the address guard.
//! [`Client::chat`] returns a [`ChatResponse`]; [`Client::chat_stream`] a [`ChatStream`] of
//! [`Delta`]s ending with the same [`ChatResponse`]; [`Client::embed`] an [`Embeddings`] in input
//! order.
//!
//! **Errors** ([`ModelError`], names `Llm.*` from [`ModelError::name`]): 429 → `Llm.RateLimited`
//! (with `Retry-After`), 400 "context length" → `Llm.ContextTooLong`, 401/403 → `Llm.Auth`,
//! other 4xx → `Llm.BadRequest`, 5xx → `Llm.Provider`, unusable 2xx → `Llm.BadResponse`, no
//! answer in time → `Llm.Timeout`, transport failures → `Llm.Connect`.
//! [`ModelError::is_retryable`] says which a retry may cure.
//!
//! **Untrusted peer.** The provider (a URL a graph may choose) and the model output are untrusted:
//! responses are bounded ([`Provider::max_response_bytes`], SSE lines of 1 MiB, 256 tool calls),
//! nothing recurses on response data beyond serde_json's own depth limit, error messages are
//! truncated and have the API key scrubbed out, and no `Debug` output shows the key.
//!
//! **Testing.** The `test-util` feature adds [`testing::ScriptedServer`], an OpenAI-compatible
//! server on 127.0.0.1 with scripted replies and faults.

mod error;
mod prices;
mod provider;
pub mod sse;
mod stream;
mod types;
mod wire;

#[cfg(feature = "test-util")]
pub mod testing;

use std::fmt;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};

pub use error::ModelError;
pub use prices::{DEFAULT_PRICES, Price, Prices, PricesError, estimate_tokens};
pub use provider::{DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_TIMEOUT, OPENAI_BASE_URL, Provider, ProviderError};
pub use stream::{ChatStream, Delta};
pub use types::{
    ChatRequest, ChatResponse, FinishReason, Message, ResponseFormat, Role, Tool, ToolCall, ToolChoice, Usage,
};

use error::{Scrub, from_status, transport};
use types::WireRequest;

/// The most bytes of an error response read (its message is all we keep).
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;

/// Embedding vectors, one per input, in input order.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Embeddings {
    pub vectors: Vec<Vec<f32>>,
    /// `output_tokens` is 0; `None` when the provider did not report usage.
    pub usage: Option<Usage>,
    pub model: String,
}

/// An OpenAI-compatible API client. Cheap to clone (the connection pool is shared); build one
/// per process and reuse it.
#[derive(Clone)]
pub struct Client {
    provider: Provider,
    http: reqwest::Client,
    chat_url: reqwest::Url,
    embeddings_url: reqwest::Url,
    auth: Option<HeaderValue>,
    scrub: Scrub,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client").field("provider", &self.provider).finish_non_exhaustive()
    }
}

impl Client {
    /// A client for `provider` over `http`. Fails if the base URL is not an `http(s)` URL (or
    /// holds credentials: use `api_key`) or if the key cannot be sent in a header.
    pub fn new(provider: Provider, http: reqwest::Client) -> Result<Self, ProviderError> {
        let base = provider.base_url.trim().trim_end_matches('/');
        let bad_url = |problem: &str| ProviderError { field: "base_url", problem: problem.to_owned() };
        let parsed = reqwest::Url::parse(base).map_err(|e| bad_url(&format!("is not a URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(bad_url("must be an http:// or https:// URL"));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(bad_url("must not contain credentials; pass the key as the API key"));
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(bad_url("must not have a query or fragment"));
        }
        let join = |path: &str| {
            reqwest::Url::parse(&format!("{base}/{path}")).map_err(|e| bad_url(&format!("is not a URL: {e}")))
        };
        let auth = match provider.api_key.as_deref().map(str::trim).filter(|k| !k.is_empty()) {
            None => None,
            Some(key) => {
                let mut v = HeaderValue::from_str(&format!("Bearer {key}")).map_err(|_| ProviderError {
                    field: "api_key",
                    problem: "contains characters that cannot be sent in an HTTP header".into(),
                })?;
                v.set_sensitive(true);
                Some(v)
            }
        };
        Ok(Self {
            chat_url: join("chat/completions")?,
            embeddings_url: join("embeddings")?,
            auth,
            scrub: Scrub::new(provider.api_key.as_deref().map(str::trim)),
            provider,
            http,
        })
    }

    pub fn provider(&self) -> &Provider {
        &self.provider
    }

    fn post(&self, url: &reqwest::Url, body: Vec<u8>) -> reqwest::RequestBuilder {
        let mut req =
            self.http.post(url.clone()).header(CONTENT_TYPE, HeaderValue::from_static("application/json")).body(body);
        if let Some(auth) = &self.auth {
            req = req.header(AUTHORIZATION, auth.clone());
        }
        req
    }

    /// Sends and waits for the headers; a non-2xx status becomes its error.
    async fn send(&self, url: &reqwest::Url, body: Vec<u8>) -> Result<reqwest::Response, ModelError> {
        let response = self.post(url, body).send().await.map_err(|e| transport(e, &self.scrub))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let headers = response.headers().clone();
        // The error body is only for its message: read a bounded prefix, and a broken one is no
        // reason to hide the status.
        let body = read_body(response, MAX_ERROR_BODY_BYTES, &self.scrub, true).await.unwrap_or_default();
        Err(from_status(status.as_u16(), &headers, &body, &self.scrub))
    }

    /// Runs `f` within the provider's timeout.
    async fn timed<T>(&self, f: impl Future<Output = Result<T, ModelError>>) -> Result<T, ModelError> {
        match self.provider.timeout {
            Some(t) => tokio::time::timeout(t, f).await.map_err(|_| ModelError::Timeout)?,
            None => f.await,
        }
    }

    /// One chat completion, not streamed.
    pub async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, ModelError> {
        let body = encode(&WireRequest { req: request, stream: false })?;
        self.timed(async {
            let response = self.send(&self.chat_url, body).await?;
            let bytes = read_body(response, self.provider.max_response_bytes, &self.scrub, false).await?;
            wire::parse_chat(&bytes, &self.scrub)
        })
        .await
    }

    /// One chat completion, streamed (`stream: true`, `stream_options.include_usage: true`).
    /// The provider timeout bounds the wait for the headers and each silence between chunks.
    pub async fn chat_stream(&self, request: &ChatRequest) -> Result<ChatStream, ModelError> {
        let body = encode(&WireRequest { req: request, stream: true })?;
        let response = self.timed(self.send(&self.chat_url, body)).await?;
        let is_json = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().starts_with("application/json"));
        if is_json {
            // The server ignored `stream: true` and answered in one piece.
            let bytes = self.timed(read_body(response, self.provider.max_response_bytes, &self.scrub, false)).await?;
            return Ok(ChatStream::from_response(wire::parse_chat(&bytes, &self.scrub)?));
        }
        Ok(ChatStream::from_body(
            response.bytes_stream(),
            self.provider.timeout,
            self.provider.max_response_bytes,
            self.scrub.clone(),
        ))
    }

    /// Embeds `inputs` with `model`. The vectors are in input order (placed by each item's
    /// `index`, whatever order the server lists them in). No inputs: no request.
    pub async fn embed(&self, model: &str, inputs: &[String]) -> Result<Embeddings, ModelError> {
        if inputs.is_empty() {
            return Ok(Embeddings { vectors: Vec::new(), usage: None, model: model.to_owned() });
        }
        let body = encode(&serde_json::json!({"model": model, "input": inputs}))?;
        let wire: wire::WireEmbeddings = self
            .timed(async {
                let response = self.send(&self.embeddings_url, body).await?;
                let bytes = read_body(response, self.provider.max_response_bytes, &self.scrub, false).await?;
                serde_json::from_slice(&bytes)
                    .map_err(|e| ModelError::BadResponse(format!("the embeddings are not the expected JSON: {e}")))
            })
            .await?;
        if wire.data.len() != inputs.len() {
            return Err(ModelError::BadResponse(format!("{} embeddings for {} inputs", wire.data.len(), inputs.len())));
        }
        let mut vectors: Vec<Option<Vec<f32>>> = vec![None; inputs.len()];
        for (position, item) in wire.data.into_iter().enumerate() {
            let index = item.index.map_or(Ok(position), usize::try_from).unwrap_or(usize::MAX);
            let slot = vectors
                .get_mut(index)
                .ok_or_else(|| ModelError::BadResponse(format!("an embedding has index {index} out of range")))?;
            if slot.replace(item.embedding).is_some() {
                return Err(ModelError::BadResponse(format!("two embeddings have index {index}")));
            }
        }
        Ok(Embeddings {
            vectors: vectors.into_iter().flatten().collect(),
            usage: wire.usage.as_ref().and_then(wire::WireUsage::usage),
            model: wire.model.unwrap_or_else(|| model.to_owned()),
        })
    }
}

fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, ModelError> {
    // Serialising our own types into JSON cannot fail unless a float is NaN (a temperature).
    serde_json::to_vec(value)
        .map_err(|e| ModelError::BadRequest { status: 0, message: format!("the request cannot be encoded: {e}") })
}

/// Reads a body up to `limit` bytes: beyond, `Llm.BadResponse`, or with `truncate` the prefix.
async fn read_body(
    mut response: reqwest::Response,
    limit: usize,
    scrub: &Scrub,
    truncate: bool,
) -> Result<Vec<u8>, ModelError> {
    let too_big = || ModelError::BadResponse(format!("the response is longer than {limit} bytes"));
    let expected = response.content_length().unwrap_or(0);
    if !truncate && expected > limit as u64 {
        return Err(too_big());
    }
    let mut body = Vec::with_capacity((expected as usize).min(limit));
    while let Some(chunk) = response.chunk().await.map_err(|e| transport(e, scrub))? {
        if body.len() + chunk.len() > limit {
            if truncate {
                body.extend_from_slice(&chunk[..limit - body.len()]);
                break;
            }
            return Err(too_big());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
