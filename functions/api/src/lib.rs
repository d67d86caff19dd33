//! The api function: Weft's HTTP API as an axum [`Router`].
//!
//! [`app`] is served by `lambda_http::run` in Lambda (see `main.rs`) and by a plain axum server in
//! `weft serve`; tests drive it with `oneshot`. Clients (database pool, Redis connection, JWKS
//! cache, Step Functions client) are built once in [`AppState::connect`] and shared.
//!
//! Architecture invariants:
//! - every `/v1` route runs behind [`authenticate`], and every store call takes the caller's
//!   tenant, so another tenant's ids answer exactly like ids that do not exist (status and body;
//!   `tests/isolation.rs` checks every route);
//! - request bodies are bounded (`WEFT_MAX_BODY_BYTES`), parsed strictly (unknown fields are
//!   refused), and validated before anything is written;
//! - errors are `{"error": {"code", "message"}}` and never carry SQL or internal detail;
//! - a write's domain events are recorded in its transaction (by `store` and `executions`), never
//!   published by the handler itself: with an event sink ([`AppState::set_event_sink`]; the
//!   Lambda's `WEFT_EVENT_BUS_NAME`), [`publish_events`] drains the outbox after each successful
//!   write, best effort, so a publishing failure never fails the request.

pub mod approval_routes;
pub mod dto;
pub mod error;
pub mod event_routes;
pub mod exec_routes;
pub mod extract;
pub mod openapi;
pub mod publish;
mod routes;
mod subworkflows;
pub mod trigger_routes;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};

use crate::error::ApiError;
use crate::publish::{Publisher, SfnPublisher, StoreOnly};

/// The execution role given to state machines on a local endpoint, which does not check it.
pub const LOCAL_ROLE_ARN: &str = "arn:aws:iam::000000000000:role/weft-local";

/// Everything a request handler needs. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    store: store::Store,
    cache: cache::Cache,
    limiter: cache::RateLimiter,
    jwt: auth::JwtVerifier,
    secrets: secrets::SecretsKey,
    publisher: Arc<dyn Publisher>,
    compile_options: compiler::CompileOptions,
    max_body_bytes: usize,
    waits: Waits,
    /// The execution domain on the same pool (its Step Functions client and Redis connection
    /// are set by [`AppState::connect`], or by [`AppState::set_sfn_client`] / [`AppState::set_redis`]).
    executions: executions::Executions,
    /// Where SSE handlers open their own connection to wait on token streams (`XREAD BLOCK`
    /// would stall the shared connection); unset, they poll through the shared one.
    token_streams: std::sync::OnceLock<redis::Client>,
    /// Where the domain event outbox is drained after each successful write (unset: never;
    /// `weft serve` runs a relay of its own).
    domain_events: std::sync::OnceLock<Arc<dyn domain_events::Sink>>,
    /// Where `POST /v1/events` sends events (default: in-process delivery).
    event_queue: std::sync::OnceLock<Arc<dyn event_routes::EventQueue>>,
}

/// The parts of an [`AppState`], for callers (tests, `weft serve`) that build their own.
pub struct Parts {
    pub store: store::Store,
    pub cache: cache::Cache,
    pub limiter: cache::RateLimiter,
    pub jwt: auth::JwtVerifier,
    pub secrets: secrets::SecretsKey,
    pub publisher: Arc<dyn Publisher>,
    pub compile_options: compiler::CompileOptions,
    pub max_body_bytes: usize,
    pub waits: Waits,
}

/// How long requests that wait for an execution may take (`WEFT_SYNC_WAIT_MS`, `WEFT_SSE_WAIT_MS`).
#[derive(Debug, Clone, Copy)]
pub struct Waits {
    /// `?wait=true` waits at most this long for the outcome.
    pub sync: Duration,
    /// One SSE response waits at most this long for new events.
    pub sse: Duration,
}

impl Default for Waits {
    fn default() -> Self {
        Self { sync: Duration::from_secs(30), sse: Duration::from_secs(20) }
    }
}

/// Why the API could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot connect to Postgres at {url}: {source}")]
    Database { url: String, source: store::StoreError },
    #[error("cannot apply database migrations: {0}")]
    Migrate(store::StoreError),
    #[error("cannot connect to Redis at {url}: {source}")]
    Redis { url: String, source: cache::CacheError },
}

impl AppState {
    pub fn new(parts: Parts) -> Self {
        Self {
            inner: Arc::new(Inner {
                executions: executions::Executions::new(parts.store.clone(), None, None),
                store: parts.store,
                cache: parts.cache,
                limiter: parts.limiter,
                jwt: parts.jwt,
                secrets: parts.secrets,
                publisher: parts.publisher,
                compile_options: parts.compile_options,
                max_body_bytes: parts.max_body_bytes,
                waits: parts.waits,
                token_streams: std::sync::OnceLock::new(),
                domain_events: std::sync::OnceLock::new(),
                event_queue: std::sync::OnceLock::new(),
            }),
        }
    }

    /// Connects to Postgres and Redis and builds the verifier and publisher from `config`.
    /// With `migrate`, pending migrations are applied first. With `WEFT_EVENT_BUS_NAME`, domain
    /// events go to that EventBridge bus after each write (the api Lambda's set-up).
    pub async fn connect(config: &config::Config, migrate: bool) -> Result<Self, StartError> {
        let state = Self::connect_with(config, migrate, None).await?;
        if let Some(bus) = &config.event_bus_name {
            state.set_event_sink(Arc::new(domain_events::EventBridgeSink::connect(bus.clone()).await));
        }
        Ok(state)
    }

    /// Like [`AppState::connect`], but publishes and runs executions through `sfn` (a client for
    /// `weft serve`'s own endpoint, say) with the role `WEFT_SFN_ROLE_ARN` or a local placeholder,
    /// whatever `config.sfn` says, and sets no event sink (`weft serve` relays the outbox itself).
    pub async fn connect_with(
        config: &config::Config,
        migrate: bool,
        sfn: Option<aws_sdk_sfn::Client>,
    ) -> Result<Self, StartError> {
        let store = store::Store::connect(&config.database.url, config.database.max_connections)
            .await
            .map_err(|source| StartError::Database { url: config::redact_url(&config.database.url), source })?;
        if migrate {
            store.migrate().await.map_err(StartError::Migrate)?;
        }
        let redis = cache::connect(&config.redis.url)
            .await
            .map_err(|source| StartError::Redis { url: config::redact_url(&config.redis.url), source })?;
        let redis_for_streams = redis.clone();
        let cache = cache::Cache::new(
            redis.clone(),
            "weft",
            config.api.cache_l1_capacity,
            Duration::from_millis(config.api.cache_l1_ttl_ms),
            config.api.cache_l2_ttl_seconds,
        );
        let limiter = cache::RateLimiter::new(
            redis,
            "weft",
            config.api.rate_limit.requests,
            config.api.rate_limit.window_seconds,
        );
        let jwt = auth::JwtVerifier::new(auth::JwtSettings {
            hs256_secret: config.jwt.hs256_secret.clone(),
            jwks: config.jwt.jwks_url.as_deref().map(auth::JwksClient::new),
            issuer: config.jwt.issuer.clone(),
            audience: config.jwt.audience.clone(),
            leeway_seconds: config.jwt.leeway_seconds,
        });
        let mut sfn_client = None;
        let publisher: Arc<dyn Publisher> = match (&config.sfn, sfn) {
            (config::SfnConfig::On { role_arn, .. }, Some(client)) => {
                sfn_client = Some(client.clone());
                Arc::new(SfnPublisher::new(client, role_arn.clone()))
            }
            (config::SfnConfig::Off, Some(client)) => {
                sfn_client = Some(client.clone());
                Arc::new(SfnPublisher::new(client, LOCAL_ROLE_ARN.to_owned()))
            }
            (config::SfnConfig::Off, None) => Arc::new(StoreOnly),
            (config::SfnConfig::On { endpoint, role_arn, region }, None) => {
                let p = SfnPublisher::from_config(endpoint.as_deref(), region.as_deref(), role_arn.clone()).await;
                sfn_client = Some(p.client().clone());
                Arc::new(p)
            }
        };
        let state = Self::new(Parts {
            store,
            cache,
            limiter,
            jwt,
            secrets: secrets::SecretsKey::new(&config.secrets_key),
            publisher,
            compile_options: compile_options(&config.api.function_arns),
            max_body_bytes: config.api.max_body_bytes,
            waits: Waits {
                sync: Duration::from_millis(config.api.sync_wait_ms),
                sse: Duration::from_millis(config.api.sse_wait_ms),
            },
        });
        if let Some(client) = sfn_client {
            state.set_sfn_client(client);
        }
        state.set_redis(redis_for_streams);
        if let Ok(client) = redis::Client::open(config.redis.url.as_str()) {
            state.set_token_streams(client);
        }
        Ok(state)
    }

    /// The same api over another connection pool (say, one sized for background recording, so
    /// that it and the request handlers cannot starve each other). Clients and caches are shared.
    pub fn with_store(&self, store: store::Store) -> Self {
        let i = &self.inner;
        let state = Self::new(Parts {
            store,
            cache: i.cache.clone(),
            limiter: i.limiter.clone(),
            jwt: i.jwt.clone(),
            secrets: i.secrets.clone(),
            publisher: Arc::clone(&i.publisher),
            compile_options: i.compile_options.clone(),
            max_body_bytes: i.max_body_bytes,
            waits: i.waits,
        });
        if let Some(client) = self.sfn_client() {
            state.set_sfn_client(client.clone());
        }
        if let Some(redis) = self.redis() {
            state.set_redis(redis);
        }
        if let Some(client) = self.inner.token_streams.get() {
            state.set_token_streams(client.clone());
        }
        if let Some(sink) = self.inner.domain_events.get() {
            state.set_event_sink(Arc::clone(sink));
        }
        state
    }

    /// The Redis server SSE handlers wait on token streams from, each on a connection of its own
    /// (first call wins). Without it they poll the shared connection every 20 ms.
    pub fn set_token_streams(&self, client: redis::Client) {
        let _ = self.inner.token_streams.set(client);
    }

    pub(crate) fn token_streams(&self) -> Option<&redis::Client> {
        self.inner.token_streams.get()
    }

    /// Where `POST /v1/events` sends events, e.g. [`event_routes::SqsQueue`] (first call wins;
    /// without one, events are delivered in-process).
    pub fn set_event_queue(&self, queue: Arc<dyn event_routes::EventQueue>) {
        let _ = self.inner.event_queue.set(queue);
    }

    pub(crate) fn event_queue(&self) -> &Arc<dyn event_routes::EventQueue> {
        self.inner.event_queue.get_or_init(|| {
            Arc::new(event_routes::InProcess::new(trigger_routes::registry(self), Arc::new(self.executions().clone())))
        })
    }

    /// Where the domain event outbox is drained after each successful write (first call wins).
    pub fn set_event_sink(&self, sink: Arc<dyn domain_events::Sink>) {
        let _ = self.inner.domain_events.set(sink);
    }

    /// The Step Functions client executions use (first call wins).
    pub fn set_sfn_client(&self, client: aws_sdk_sfn::Client) {
        self.inner.executions.set_sfn_client(client);
    }

    /// The Redis connection execution event streams use (first call wins).
    pub fn set_redis(&self, redis: redis::aio::ConnectionManager) {
        self.inner.executions.set_redis(redis);
    }

    pub fn sfn_client(&self) -> Option<&aws_sdk_sfn::Client> {
        self.inner.executions.sfn_client()
    }

    pub fn redis(&self) -> Option<redis::aio::ConnectionManager> {
        self.inner.executions.redis()
    }

    /// The execution domain (starts, reads, stop/redrive, recording) over this state's pool.
    pub fn executions(&self) -> &executions::Executions {
        &self.inner.executions
    }

    pub fn store(&self) -> &store::Store {
        &self.inner.store
    }

    pub fn cache(&self) -> &cache::Cache {
        &self.inner.cache
    }

    pub fn waits(&self) -> Waits {
        self.inner.waits
    }
}

/// The whole API.
pub fn app(state: AppState) -> Router {
    let v1 = Router::new()
        .route("/compile", post(routes::compile))
        .route("/workflows", post(routes::create_workflow).get(routes::list_workflows))
        .route(
            "/workflows/{id}",
            get(routes::get_workflow).put(routes::update_workflow).delete(routes::delete_workflow),
        )
        .route("/workflows/{id}/versions", post(routes::publish_version).get(routes::list_versions))
        .route("/workflows/{id}/versions/{version}", get(routes::get_version))
        .route("/workflows/{id}/alias", put(routes::set_alias))
        .route("/secrets", post(routes::create_secret).get(routes::list_secrets))
        .route("/secrets/{name}", delete(routes::delete_secret))
        .route("/api-keys", post(routes::create_api_key).get(routes::list_api_keys))
        .route("/api-keys/{id}", delete(routes::revoke_api_key))
        .route("/workflows/{id}/executions", post(exec_routes::start_execution))
        .route("/executions", get(exec_routes::list_executions))
        .route("/executions/{id}", get(exec_routes::get_execution))
        .route("/executions/{id}/stop", post(exec_routes::stop_execution))
        .route("/executions/{id}/redrive", post(exec_routes::redrive_execution))
        .route("/executions/{id}/events", get(exec_routes::execution_events))
        .route("/approvals", get(approval_routes::list_approvals))
        .route("/approvals/{id}", get(approval_routes::get_approval).post(approval_routes::decide_approval))
        .route("/workflows/{id}/triggers", get(trigger_routes::list_triggers))
        .route("/events", post(event_routes::send_event))
        .route("/admin/dead-letters", get(event_routes::list_dead_letters))
        .route("/admin/dead-letters/redrive", post(event_routes::redrive_dead_letters))
        .route_layer(middleware::from_fn_with_state(state.clone(), authenticate));
    // Webhook senders have no bearer token: the HMAC signature authenticates them.
    let hooks = Router::new().route("/hooks/{workflow_id}", post(trigger_routes::receive_webhook));
    Router::new()
        .nest("/v1", v1.merge(hooks))
        .route("/healthz", get(routes::healthz))
        .route("/openapi.json", get(openapi::serve))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), publish_events))
        .layer(DefaultBodyLimit::max(state.inner.max_body_bytes))
        .with_state(state)
}

/// How long [`publish_events`] may hold a response.
const PUBLISH_WAIT: Duration = Duration::from_secs(5);

/// After a write that succeeded, publishes the outbox's domain events (the write's, and any left
/// over) to the event sink, if one is set. Before the response goes out, since Lambda may freeze
/// the process right after it; best effort: a failure or a slow sink is logged and the response
/// is sent all the same. Rows left over go out with the next write, or the trigger function's
/// minute tick.
pub async fn publish_events(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let write = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let response = next.run(req).await;
    if let Some(sink) = state.inner.domain_events.get().filter(|_| write && response.status().is_success()) {
        domain_events::drain_best_effort(state.store().pool(), sink.as_ref(), PUBLISH_WAIT).await;
    }
    response
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route; see /openapi.json")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "this route does not accept that method")
}

/// Resolves the caller (JWT or API key), applies the tenant's rate limit, and puts the
/// [`auth::Principal`] in the request for handlers.
pub async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let principal = match resolve_caller(&state, req.headers()).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let decision = state.inner.limiter.check(&principal.tenant).await;
    if let cache::Decision::Limited { retry_after_seconds } = decision {
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("too many requests for this tenant; retry after {retry_after_seconds} s"),
        );
        e.retry_after = Some(retry_after_seconds);
        return e.into_response();
    }
    req.extensions_mut().insert(principal);
    let mut response = next.run(req).await;
    if let cache::Decision::Allowed { remaining } = decision
        && remaining != u64::MAX
        && let Ok(v) = HeaderValue::from_str(&remaining.to_string())
    {
        response.headers_mut().insert("x-ratelimit-remaining", v);
    }
    response
}

async fn resolve_caller(state: &AppState, headers: &axum::http::HeaderMap) -> Result<auth::Principal, ApiError> {
    let authorization = headers.get(header::AUTHORIZATION).map(|v| v.to_str().map_err(|_| auth::AuthError::BadScheme));
    let authorization = authorization.transpose()?;
    let x_api_key = headers.get("x-api-key").map(|v| v.to_str().map_err(|_| auth::AuthError::BadApiKey));
    let x_api_key = x_api_key.transpose()?;
    match auth::credential(authorization, x_api_key)? {
        auth::Credential::Jwt(token) => Ok(state.inner.jwt.verify(token).await?),
        auth::Credential::ApiKey(key) => {
            let row = state
                .inner
                .store
                .find_api_key(&key.prefix)
                .await
                .map_err(ApiError::unavailable)?
                .ok_or(auth::AuthError::BadApiKey)?;
            if !auth::verify_secret(&key.secret, &row.secret_hash) {
                return Err(auth::AuthError::BadApiKey.into());
            }
            let role = auth::Role::parse(&row.role).ok_or(auth::AuthError::BadApiKey)?;
            // `last_used_at` is shown to admins; it needs minute precision, not a write per request.
            let stale = row.last_used_at.is_none_or(|at| chrono::Utc::now() - at >= chrono::Duration::minutes(1));
            if stale && let Err(e) = state.inner.store.touch_api_key(row.id).await {
                tracing::warn!(error = %e, key = %row.id, "cannot record an API key's last use");
            }
            Ok(auth::Principal {
                tenant: row.tenant_id,
                subject: format!("api-key:{}", row.id),
                role,
                method: auth::Method::ApiKey { id: row.id.to_string() },
            })
        }
    }
}

/// What publishing compiles with: the default function map (SAM placeholders, understood by
/// `weft serve`'s local functions) overridden by `WEFT_FUNCTION_ARNS`, so state machines
/// published to AWS invoke the deployed Lambdas.
fn compile_options(function_arns: &std::collections::BTreeMap<String, String>) -> compiler::CompileOptions {
    let mut options = compiler::CompileOptions::default();
    for (node_type, function) in function_arns {
        options.functions.insert(node_type.clone(), function.clone());
    }
    options
}
