//! Where the streamed text goes while the model writes it: the [`TokenSink`] trait, its
//! implementations, and the pump that keeps a slow sink from stalling the model stream.
//!
//! **Policy.** Each call hands its text deltas to a per-call task through a bounded channel
//! ([`CHANNEL_CAPACITY`] items). The stream loop never waits on it: when the channel is full the
//! deltas are *coalesced* (appended to one pending piece, sent as soon as there is room), so the
//! sink sees fewer, larger tokens but the same text in the same order. When the reply is complete
//! the rest is handed over within the flush grace (`Settings::sink_flush_grace`, default 2 s,
//! never past the node's deadline); what a sink has not taken by then is dropped (the node's
//! output has the whole text regardless) and the task is stopped. A sink's own failures are
//! logged and never fail the call.
//!
//! **Secrets.** When the prompt contains resolved secrets, text is held back (a window longer
//! than any form of those values) and scrubbed before it is sunk, so a value the model echoes is
//! never sunk, even split across deltas (see [`Holdback`]).

use std::collections::VecDeque;
use std::sync::Arc;
#[cfg(feature = "redis")]
use std::time::Duration;

use tenant_secrets::Scrubber;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Items (text pieces) in flight between a call and its sink.
pub const CHANNEL_CAPACITY: usize = 64;

/// One piece of streamed text.
#[derive(Debug, Clone, Copy)]
pub struct Token<'a> {
    /// The execution ARN (`$$.Execution.Id`).
    pub execution_arn: &'a str,
    pub node_id: &'a str,
    /// The agent of a `multi_agent` node that wrote the text (its `config.agent`); `None` for
    /// `llm` and `agent` nodes.
    pub agent: Option<&'a str>,
    /// 0, 1, 2... within one call (one node attempt).
    pub seq: u64,
    /// 0 for the reply, 1 for the reply to a structured-output repair request (the text a viewer
    /// showed for reply 0 is superseded).
    pub reply: u32,
    pub text: &'a str,
}

/// Receives the text of a reply as the model writes it. Called from one task per call, in order;
/// a slow implementation only makes tokens coarser (see the module docs), never the call slower
/// than the flush grace.
#[async_trait::async_trait]
pub trait TokenSink: Send + Sync + 'static {
    async fn token(&self, token: Token<'_>);

    /// `false`: tokens are not wanted, so no task is started per call.
    fn enabled(&self) -> bool {
        true
    }
}

/// Drops every token (Lambda without Redis, benchmarks).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSink;

#[async_trait::async_trait]
impl TokenSink for NoSink {
    async fn token(&self, _token: Token<'_>) {}
    fn enabled(&self) -> bool {
        false
    }
}

/// Prints the text live on stderr (`weft run`): a line break and `[node] ` before a call's first
/// token, then the text as it comes (a structured-output repair's reply follows directly).
#[derive(Debug, Clone, Copy, Default)]
pub struct StderrSink;

#[async_trait::async_trait]
impl TokenSink for StderrSink {
    async fn token(&self, t: Token<'_>) {
        use std::io::Write as _;
        let mut err = std::io::stderr().lock();
        let _ = match (t.seq, t.agent) {
            (0, None) => write!(err, "\n[{}] {}", t.node_id, t.text),
            (0, Some(agent)) => write!(err, "\n[{}.{agent}] {}", t.node_id, t.text),
            _ => write!(err, "{}", t.text),
        };
        let _ = err.flush();
    }
}

/// Holds back streamed text long enough to scrub secret values out of it.
///
/// With no values it is transparent. Otherwise the last `window` bytes (more than the longest
/// form of any value) stay unsent; a prefix is released only when scrubbing it alone gives the
/// start of scrubbing everything held, i.e. no value straddles the cut. A value split across
/// deltas is therefore always complete in the held text before any part of it could be released.
pub struct Holdback {
    scrubber: Scrubber,
    window: usize,
    raw: String,
}

impl Holdback {
    /// `longest` is the byte length of the longest value to scrub (0: none).
    pub fn new(scrubber: Scrubber, longest: usize) -> Self {
        // The scrubber's forms of a value (percent-encoded, JSON-escaped twice...) are at most
        // about 6 times as long as the value.
        let window = if scrubber.is_empty() { 0 } else { longest.saturating_mul(6).saturating_add(64) };
        Self { scrubber, window, raw: String::new() }
    }

    /// The text that may be sunk now.
    pub fn push(&mut self, text: &str) -> Option<String> {
        if self.window == 0 {
            return Some(text.to_owned());
        }
        self.raw.push_str(text);
        if self.raw.len() <= self.window {
            return None;
        }
        let mut cut = self.raw.len() - self.window;
        while !self.raw.is_char_boundary(cut) {
            cut -= 1;
        }
        let head = self.scrubber.text(&self.raw[..cut]);
        if !self.scrubber.text(&self.raw).starts_with(&head) {
            return None;
        }
        self.raw.drain(..cut);
        Some(head)
    }

    /// Everything still held, scrubbed.
    pub fn flush(&mut self) -> Option<String> {
        let rest = std::mem::take(&mut self.raw);
        (!rest.is_empty()).then(|| self.scrubber.text(&rest))
    }
}

/// The per-call hand-over to a sink (see the module docs).
pub struct Pump {
    tx: Option<mpsc::Sender<(u32, String)>>,
    task: Option<tokio::task::JoinHandle<()>>,
    pending: VecDeque<(u32, String)>,
    holdback: Holdback,
    reply: u32,
}

impl Pump {
    /// A pump for one call; with a disabled sink nothing is started and every push is free.
    pub fn start(sink: &Arc<dyn TokenSink>, execution_arn: &str, node_id: &str, holdback: Holdback) -> Self {
        Self::start_with_agent(sink, execution_arn, node_id, None, holdback)
    }

    /// [`Self::start`] for the text of one agent of a `multi_agent` node (its tokens carry the
    /// agent's name).
    pub fn start_with_agent(
        sink: &Arc<dyn TokenSink>,
        execution_arn: &str,
        node_id: &str,
        agent: Option<&str>,
        holdback: Holdback,
    ) -> Self {
        if !sink.enabled() {
            return Self { tx: None, task: None, pending: VecDeque::new(), holdback, reply: 0 };
        }
        let (tx, mut rx) = mpsc::channel::<(u32, String)>(CHANNEL_CAPACITY);
        let sink = sink.clone();
        let (arn, node, agent) = (execution_arn.to_owned(), node_id.to_owned(), agent.map(str::to_owned));
        let task = tokio::spawn(async move {
            let mut seq = 0;
            let mut carry = None;
            while let Some((reply, mut text)) = match carry.take() {
                Some(item) => Some(item),
                None => rx.recv().await,
            } {
                // Whatever queued up while the sink was busy goes out as one token (one Redis
                // round trip rather than one per delta).
                while let Ok((next_reply, next)) = rx.try_recv() {
                    if next_reply != reply {
                        carry = Some((next_reply, next));
                        break;
                    }
                    text.push_str(&next);
                }
                let agent = agent.as_deref();
                sink.token(Token { execution_arn: &arn, node_id: &node, agent, seq, reply, text: &text }).await;
                seq += 1;
            }
        });
        Self { tx: Some(tx), task: Some(task), pending: VecDeque::new(), holdback, reply: 0 }
    }

    /// Hands a text delta over, or coalesces it with the pending text if the sink is behind.
    pub fn push(&mut self, text: &str) {
        if self.tx.is_none() {
            return;
        }
        if let Some(safe) = self.holdback.push(text) {
            self.queue(safe);
        }
        self.try_flush();
    }

    /// The coming text belongs to the next reply (a repair): releases what is held of this one.
    pub fn next_reply(&mut self) {
        if self.tx.is_none() {
            return;
        }
        if let Some(rest) = self.holdback.flush() {
            self.queue(rest);
        }
        self.reply += 1;
        self.try_flush();
    }

    fn queue(&mut self, text: String) {
        if text.is_empty() {
            return;
        }
        match self.pending.back_mut() {
            Some((reply, pending)) if *reply == self.reply => pending.push_str(&text),
            _ => self.pending.push_back((self.reply, text)),
        }
    }

    fn try_flush(&mut self) {
        let Some(tx) = &self.tx else { return };
        while let Some(item) = self.pending.pop_front() {
            match tx.try_send(item) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(item)) => {
                    self.pending.push_front(item);
                    return;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    // The sink task is gone (it panicked): nothing more can be sunk.
                    self.pending.clear();
                    self.tx = None;
                    return;
                }
            }
        }
    }

    /// Hands over the rest and waits for the sink to take it, until `until` at the latest; then
    /// stops the task (whatever it had not taken is dropped).
    pub async fn finish(mut self, until: Instant) {
        if let Some(rest) = self.holdback.flush() {
            self.queue(rest);
        }
        if let Some(tx) = self.tx.take() {
            while let Some(item) = self.pending.pop_front() {
                match tokio::time::timeout_at(until, tx.send(item)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) | Err(_) => {
                        tracing::warn!("the token sink fell behind; the rest of the streamed text was not sunk");
                        break;
                    }
                }
            }
        }
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout_at(until, &mut task).await.is_err()
        {
            tracing::warn!("the token sink did not finish in time; stopped it");
            task.abort();
        }
    }
}

impl Drop for Pump {
    fn drop(&mut self) {
        // A call that failed (or was cancelled) before `finish`: the task ends with the channel,
        // but a sink stuck inside `token` would hold it, so stop it.
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// The longest the bootstrap's Redis sink waits to connect or for one command.
#[cfg(feature = "redis")]
const REDIS_TIMEOUT: Duration = Duration::from_secs(2);

/// Tokens into a Redis stream per execution, for the api's server-sent events:
/// `XADD weft:tokens:{id} MAXLEN ~ {maxlen} * node_id .. [agent ..] seq .. reply .. text ..`
/// (`agent` only for the agents of a `multi_agent` node) where `{id}` is
/// the execution ARN's last `:` segment (the execution's row id for executions Weft started), and
/// `EXPIRE` of `ttl` seconds, renewed every 64 tokens. The connection is made on first use and
/// reconnected on failure; a failure drops that token (logged without its text).
#[cfg(feature = "redis")]
pub struct RedisSink {
    client: redis::Client,
    conn: tokio::sync::OnceCell<redis::aio::ConnectionManager>,
    maxlen: u64,
    ttl_seconds: u64,
}

#[cfg(feature = "redis")]
impl std::fmt::Debug for RedisSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password.
        f.debug_struct("RedisSink").field("maxlen", &self.maxlen).field("ttl_seconds", &self.ttl_seconds).finish()
    }
}

/// The Redis stream a call's tokens go to.
pub fn token_stream_key(execution_arn: &str) -> String {
    node_contract::token_stream_key(execution_arn.rsplit(':').next().unwrap_or(execution_arn))
}

#[cfg(feature = "redis")]
impl RedisSink {
    /// Entries kept per stream (approximately), by default.
    pub const DEFAULT_MAXLEN: u64 = 10_000;
    /// How long a stream outlives its last token, by default.
    pub const DEFAULT_TTL_SECONDS: u64 = 3600;

    /// A sink for the Redis at `url` (`redis://...`); does not connect yet.
    pub fn new(url: &str) -> Result<Self, redis::RedisError> {
        Ok(Self {
            client: redis::Client::open(url)?,
            conn: tokio::sync::OnceCell::new(),
            maxlen: Self::DEFAULT_MAXLEN,
            ttl_seconds: Self::DEFAULT_TTL_SECONDS,
        })
    }

    pub fn with_limits(mut self, maxlen: u64, ttl_seconds: u64) -> Self {
        self.maxlen = maxlen.max(1);
        self.ttl_seconds = ttl_seconds.max(1);
        self
    }

    async fn connection(&self) -> redis::RedisResult<redis::aio::ConnectionManager> {
        self.conn
            .get_or_try_init(|| async {
                let config = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(REDIS_TIMEOUT))
                    .set_response_timeout(Some(REDIS_TIMEOUT))
                    .set_number_of_retries(1);
                redis::aio::ConnectionManager::new_with_config(self.client.clone(), config).await
            })
            .await
            .cloned()
    }
}

#[cfg(feature = "redis")]
#[async_trait::async_trait]
impl TokenSink for RedisSink {
    async fn token(&self, t: Token<'_>) {
        let mut conn = match self.connection().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "token sink: cannot connect to Redis");
                return;
            }
        };
        let key = token_stream_key(t.execution_arn);
        let mut pipe = redis::pipe();
        pipe.cmd("XADD").arg(&key).arg("MAXLEN").arg("~").arg(self.maxlen).arg("*").arg("node_id").arg(t.node_id);
        if let Some(agent) = t.agent {
            pipe.arg("agent").arg(agent);
        }
        pipe.arg("seq").arg(t.seq).arg("reply").arg(t.reply).arg("text").arg(t.text).ignore();
        if t.seq.is_multiple_of(64) {
            pipe.cmd("EXPIRE").arg(&key).arg(self.ttl_seconds).ignore();
        }
        if let Err(e) = pipe.query_async::<()>(&mut conn).await {
            tracing::warn!(error = %e, node_id = t.node_id, seq = t.seq, "token sink: XADD failed");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn holdback_never_releases_part_of_a_value() {
        let secret = "sk-live-0123456789abcdef";
        let tail = "and then a long tail of ordinary text. ".repeat(20);
        let text = format!("before {secret} middle {secret}{tail}{secret}{tail}end {secret}");
        for step in 1..6 {
            let mut h = Holdback::new(Scrubber::new([secret]), secret.len());
            let mut out = String::new();
            let chars: Vec<char> = text.chars().collect();
            for piece in chars.chunks(step) {
                let piece: String = piece.iter().collect();
                if let Some(s) = h.push(&piece) {
                    assert!(!s.contains("sk-live"), "{s}");
                    out.push_str(&s);
                }
            }
            out.push_str(&h.flush().unwrap_or_default());
            assert_eq!(out, text.replace(secret, "***"));
        }
        let mut open = Holdback::new(Scrubber::default(), 0);
        assert_eq!(open.push("abc").as_deref(), Some("abc"));
    }

    #[test]
    fn stream_key_is_the_arns_last_segment() {
        assert_eq!(
            token_stream_key("arn:aws:states:us-east-1:123456789012:execution:wf:0b5c-11"),
            "weft:tokens:0b5c-11"
        );
    }
}
