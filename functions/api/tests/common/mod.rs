//! Test harness: the real router on a fresh Postgres database and a real Redis (namespaced per
//! test), driven with `oneshot`, plus a real JWKS server on 127.0.0.1 for RS256 tokens.
//!
//! Needs `WEFT_TEST_DATABASE_URL` and `WEFT_TEST_REDIS_URL` (e.g. from `scripts/dev-services`);
//! without them each test prints a note and passes, unless `WEFT_TEST_STRICT=1`.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine as _;
use http_body_util::BodyExt as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tower::ServiceExt as _;

pub const SECRET: &[u8] = b"test-secret-0123456789abcdef-0123456789";
pub const ISSUER: &str = "https://issuer.weft.test";
pub const AUDIENCE: &str = "weft-api";
pub const RSA_PRIVATE: &[u8] = include_bytes!("../data/rsa_private.pem");
pub const RSA_PUBLIC: &[u8] = include_bytes!("../data/rsa_public.pem");
pub const OTHER_PRIVATE: &[u8] = include_bytes!("../data/other_private.pem");
pub const JWKS: &str = include_str!("../data/jwks.json");

pub struct TestApp {
    pub router: axum::Router,
    pub state: fn_api::AppState,
    pub db_url: String,
    pub redis_url: String,
    pub namespace: String,
}

pub struct Options {
    pub rate_limit: u64,
    pub max_body_bytes: usize,
    pub jwks_url: Option<String>,
    pub publisher: Arc<dyn fn_api::publish::Publisher>,
    /// A Redis of the test's own (one it may stop) instead of `WEFT_TEST_REDIS_URL`.
    pub redis_url: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            rate_limit: 0,
            max_body_bytes: 256 * 1024,
            jwks_url: None,
            publisher: Arc::new(fn_api::publish::StoreOnly),
            redis_url: None,
        }
    }
}

/// `None` (after a printed note) when the services are not configured.
pub async fn setup() -> Option<TestApp> {
    setup_with(Options::default()).await
}

pub async fn setup_with(options: Options) -> Option<TestApp> {
    let db_admin = store::testing::service_url("WEFT_TEST_DATABASE_URL")?;
    let redis_url = match &options.redis_url {
        Some(url) => url.clone(),
        None => store::testing::service_url("WEFT_TEST_REDIS_URL")?,
    };
    let (store, db_url) = store::testing::fresh_store(&db_admin).await.expect("fresh database");
    let namespace = format!("test-{}", uuid::Uuid::new_v4().simple());
    let state = build_state(store, &redis_url, &namespace, &options).await;
    Some(TestApp { router: fn_api::app(state.clone()), state, db_url, redis_url, namespace })
}

/// A second "process" on the same database and Redis namespace, with its own L1 cache.
pub async fn second_instance(app: &TestApp) -> axum::Router {
    let store = store::Store::connect(&app.db_url, 5).await.expect("connect");
    let state = build_state(store, &app.redis_url, &app.namespace, &Options::default()).await;
    fn_api::app(state)
}

async fn build_state(store: store::Store, redis_url: &str, namespace: &str, options: &Options) -> fn_api::AppState {
    let redis = cache::connect(redis_url).await.expect("redis");
    fn_api::AppState::new(fn_api::Parts {
        store,
        cache: cache::Cache::new(redis.clone(), namespace, 1000, Duration::from_millis(200), 60),
        limiter: cache::RateLimiter::new(redis, namespace, options.rate_limit, 60),
        jwt: auth::JwtVerifier::new(auth::JwtSettings {
            hs256_secret: Some(SECRET.to_vec()),
            jwks: options.jwks_url.as_deref().map(auth::JwksClient::new),
            issuer: ISSUER.into(),
            audience: AUDIENCE.into(),
            leeway_seconds: 5,
        }),
        secrets: secrets::SecretsKey::new(&[42u8; 32]),
        publisher: options.publisher.clone(),
        compile_options: compiler::CompileOptions::default(),
        max_body_bytes: options.max_body_bytes,
        waits: fn_api::Waits::default(),
    })
}

pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

pub fn claims(tenant: &str, role: &str) -> Value {
    json!({"sub": format!("user-of-{tenant}"), "tenant": tenant, "role": role, "iss": ISSUER, "aud": AUDIENCE,
           "exp": now() + 600, "nbf": now() - 10})
}

pub fn sign_hs(claims: &Value, secret: &[u8]) -> String {
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(secret).expect("key"))
        .expect("sign")
}

pub fn sign_rs(claims: &Value, pem: &[u8], kid: &str) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_rsa_pem(pem).expect("pem")).expect("sign")
}

pub fn token(tenant: &str, role: &str) -> String {
    sign_hs(&claims(tenant, role), SECRET)
}

/// A JWKS server on 127.0.0.1; returns its URL.
pub async fn jwks_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = axum::Router::new().route(
        "/.well-known/jwks.json",
        axum::routing::get(|| async { ([(header::CONTENT_TYPE, "application/json")], JWKS) }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}/.well-known/jwks.json")
}

pub fn b64(s: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Value,
}

impl TestApp {
    pub async fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> Reply {
        call(&self.router, method, path, token, body).await
    }

    pub async fn raw(&self, req: Request<Body>) -> Reply {
        send(&self.router, req).await
    }

    /// Creates a workflow as an editor of `tenant` and returns its id.
    pub async fn create(&self, tenant: &str, graph: Value) -> String {
        let r = self.call("POST", "/v1/workflows", Some(&token(tenant, "editor")), Some(json!({"graph": graph}))).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body["id"].as_str().expect("id").to_owned()
    }

    pub async fn count_rows(&self, table: &str) -> i64 {
        let pool = self.state.store().pool();
        let sql = match table {
            "workflows" => "SELECT count(*) FROM workflows",
            "workflow_versions" => "SELECT count(*) FROM workflow_versions",
            "secrets" => "SELECT count(*) FROM secrets",
            "tenants" => "SELECT count(*) FROM tenants",
            _ => panic!("unknown table {table}"),
        };
        sqlx::query_scalar::<_, i64>(sql).fetch_one(pool).await.expect("count")
    }
}

pub async fn call(router: &axum::Router, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> Reply {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let req = match body {
        Some(b) => req.header(header::CONTENT_TYPE, "application/json").body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    }
    .expect("request");
    send(router, req).await
}

pub async fn send(router: &axum::Router, req: Request<Body>) -> Reply {
    let response = router.clone().oneshot(req).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.expect("body").to_bytes();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| panic!("non-JSON body ({status}): {}", String::from_utf8_lossy(&bytes)))
    };
    Reply { status, headers, body }
}

/// A small valid graph.
pub fn graph(name: &str) -> Value {
    json!({"format": "weft/v1", "id": "g", "name": name,
           "nodes": [{"id": "start", "type": "start", "data": {}},
                     {"id": "done", "type": "end", "data": {"output": "{{ input.name }}"}}],
           "edges": [{"id": "e1", "source": "start", "target": "done"}]})
}

/// A graph that parses but does not validate (the end node is unreachable).
pub fn invalid_graph() -> Value {
    json!({"format": "weft/v1", "id": "bad", "name": "bad",
           "nodes": [{"id": "start", "type": "start", "data": {}},
                     {"id": "lost", "type": "end", "data": {}}],
           "edges": []})
}

/// A chain of `n` nodes: start, n-2 `code` nodes, end.
pub fn chain_graph(n: usize) -> Value {
    let mut nodes = vec![json!({"id": "start", "type": "start", "data": {}})];
    let mut edges = Vec::new();
    let mut prev = "start".to_owned();
    for i in 0..n.saturating_sub(2) {
        let id = format!("step_{i}");
        nodes.push(json!({"id": id, "type": "code", "data": {"expression": "input.x + 1"}}));
        edges.push(json!({"id": format!("e{i}"), "source": prev, "target": id}));
        prev = id;
    }
    nodes.push(json!({"id": "done", "type": "end", "data": {}}));
    edges.push(json!({"id": "e_end", "source": prev, "target": "done"}));
    json!({"format": "weft/v1", "id": "chain", "name": format!("chain of {n}"), "nodes": nodes, "edges": edges})
}
