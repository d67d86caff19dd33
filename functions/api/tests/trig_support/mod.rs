//! Support for the approvals, hooks and schedules tests: the api (test harness in `common`) and
//! `sfn-server` on the same fresh Postgres database, with the in-process node functions including
//! the approval function, exactly as `weft serve` wires them; the api talks to the endpoint
//! through `aws-sdk-sfn` over HTTP on 127.0.0.1, signing with the endpoint's credentials.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::common::*;

const ROLE: &str = "arn:aws:iam::123456789012:role/weft";
/// How long the polls below wait for an execution or approval (engine runs take well under a
/// second; the room is for a loaded machine, and a hang still fails the test).
pub const POLL_LIMIT: Duration = Duration::from_secs(60);

pub struct Env {
    pub app: TestApp,
    pub sfn_url: String,
    /// The SigV4 credentials the endpoint accepts (and the api signs with).
    pub sfn_credentials: sfn_server::Credentials,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Env {
    fn drop(&mut self) {
        self.server.abort();
    }
}

pub async fn env() -> Option<Env> {
    env_with(Options::default()).await
}

/// [`env`] with other harness options (the publisher is always the endpoint's).
pub async fn env_with(options: Options) -> Option<Env> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let sfn_url = format!("http://{}", listener.local_addr().expect("addr"));
    let sfn_credentials = sfn_server::Credentials::generate();
    let client = sfn_server::sdk::local_client(&sfn_url, &sfn_credentials);
    let publisher = fn_api::publish::SfnPublisher::new(client.clone(), ROLE.to_owned());
    let app = setup_with(Options { publisher: Arc::new(publisher), ..options }).await?;
    app.state.set_sfn_client(client);
    let pool = app.state.store().pool().clone();
    let functions = local_functions::LocalFunctions::from_env()
        .expect("functions")
        .with_approval(local_functions::fn_approval::ApprovalFunction::new(pool.clone()));
    let store = Arc::new(sfn_server::PgStore::from_pool(pool));
    let sfn =
        sfn_server::SfnState::open(store, engine::EngineConfig::new(Arc::new(functions))).await.expect("sfn state");
    let verifier = sfn_server::Verifier::new([sfn_credentials.clone()]);
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, sfn_server::router(sfn, verifier)).await;
    });
    Some(Env { app, sfn_url, sfn_credentials, server })
}

impl Env {
    /// Creates and publishes `graph` as an editor of `tenant`; returns the workflow id.
    pub async fn publish(&self, tenant: &str, graph: Value) -> String {
        let id = self.app.create(tenant, graph).await;
        let r =
            self.app.call("POST", &format!("/v1/workflows/{id}/versions"), Some(&token(tenant, "editor")), None).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        id
    }

    pub async fn start(&self, tenant: &str, workflow: &str, input: Value) -> String {
        let r = self
            .app
            .call(
                "POST",
                &format!("/v1/workflows/{workflow}/executions"),
                Some(&token(tenant, "editor")),
                Some(json!({"input": input})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body["id"].as_str().expect("id").to_owned()
    }

    /// Polls `GET /v1/executions/{id}` (which records new history first) until the status is
    /// neither PENDING nor RUNNING.
    pub async fn finish(&self, tenant: &str, id: &str) -> Value {
        let deadline = tokio::time::Instant::now() + POLL_LIMIT;
        while tokio::time::Instant::now() < deadline {
            let r = self.app.call("GET", &format!("/v1/executions/{id}"), Some(&token(tenant, "viewer")), None).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            let status = r.body["status"].as_str().unwrap_or_default();
            if status != "RUNNING" && status != "PENDING" {
                return r.body;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("execution {id} did not finish within {POLL_LIMIT:?}");
    }

    /// Waits until `tenant` has a pending approval for execution `execution`; returns it.
    pub async fn pending_approval(&self, tenant: &str, execution: &str) -> Value {
        let deadline = tokio::time::Instant::now() + POLL_LIMIT;
        while tokio::time::Instant::now() < deadline {
            let r = self.app.call("GET", "/v1/approvals", Some(&token(tenant, "viewer")), None).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            if let Some(a) = r.body["items"].as_array().into_iter().flatten().find(|a| a["execution_id"] == execution) {
                return a.clone();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no pending approval appeared for {execution} within {POLL_LIMIT:?}");
    }
}

/// start -> approval `review` -> end whose output is the approval's output.
pub fn approval_graph(timeout_seconds: u64) -> Value {
    json!({"format": "weft/v1", "id": "review", "name": "needs review",
           "nodes": [{"id": "start", "type": "start", "data": {}},
                     {"id": "review", "type": "approval", "data": {"message": "Ship {{ input.item }}?", "timeout_seconds": timeout_seconds}},
                     {"id": "done", "type": "end", "data": {"output": "{{ nodes.review }}"}}],
           "edges": [{"id": "e1", "source": "start", "target": "review"},
                     {"id": "e2", "source": "review", "target": "done"}]})
}

/// A webhook delivery of `body` to `workflow`, as a sender signs it.
pub fn delivery(workflow: &str, timestamp: i64, signature: &str, body: &str) -> axum::http::Request<axum::body::Body> {
    axum::http::Request::builder()
        .method("POST")
        .uri(format!("/v1/hooks/{workflow}"))
        .header("content-type", "application/json")
        .header("x-weft-timestamp", timestamp.to_string())
        .header("x-weft-signature", signature)
        .body(axum::body::Body::from(body.to_owned()))
        .expect("request")
}
