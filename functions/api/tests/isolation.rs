//! Tenant isolation, one table over every route of the API: another tenant's ids, names, filters,
//! cursors and webhooks answer exactly like ones that do not exist (same status, same content
//! type, byte-identical body), and nothing another tenant sends changes the owner's rows.
//!
//! The table must cover every operation of the OpenAPI document (or name it in [`EXEMPT`] with
//! the reason), and the OpenAPI document must hold every route the router registers, so a route
//! added without an entry here fails this test.

mod common;
mod trig_support;

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::*;
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;
use trig_support::*;

/// The owner of every object the attackers aim at.
const OWNER: &str = "acme";
/// An attacker with a workflow (and webhook secret) of its own.
const ATTACKER: &str = "globex";
/// An attacker with nothing, for listings (compared with a tenant created for the comparison).
const EMPTY_ATTACKER: &str = "initech";

/// Operations that address no stored object of a tenant, and why.
const EXEMPT: &[(&str, &str, &str)] = &[
    ("get", "/healthz", "no tenant: a database ping"),
    ("post", "/v1/compile", "stores and reads nothing"),
    ("post", "/v1/workflows", "creates the caller's own workflow"),
    ("post", "/v1/secrets", "creates the caller's own secret; another tenant's name is checked below"),
    ("post", "/v1/api-keys", "creates the caller's own key"),
    ("post", "/v1/events", "starts only the caller's workflows (tests/events.rs: another tenant's never starts)"),
    ("get", "/v1/admin/dead-letters", "lists only the caller's messages (tests/events.rs, on LocalStack's SQS)"),
    ("post", "/v1/admin/dead-letters/redrive", "redrives only the caller's messages (tests/events.rs)"),
];

/// What the table's requests are built from: the owner's objects, or random ones.
#[derive(Clone)]
struct Ids {
    workflow: String,
    version: i32,
    waiting: String,
    failed: String,
    approval: String,
    secret: String,
    api_key: String,
    workflow_name: String,
    workflow_cursor: String,
    execution_cursor: String,
    idempotency_key: String,
    /// The attacker's own webhook secret (the same in both sets).
    hook_secret: String,
}

struct Req {
    method: &'static str,
    path: String,
    body: Option<String>,
    headers: Vec<(&'static str, String)>,
    /// Bearer token; `None` for webhooks.
    bearer: bool,
}

fn req(method: &'static str, path: String) -> Req {
    Req { method, path, body: None, headers: Vec::new(), bearer: true }
}

fn with_json(mut r: Req, body: Value) -> Req {
    r.body = Some(body.to_string());
    r.headers.push(("content-type", "application/json".into()));
    r
}

fn hook(workflow: &str, secret: &str, timestamp: i64, body: &str) -> Req {
    Req {
        method: "POST",
        path: format!("/v1/hooks/{workflow}"),
        body: Some(body.to_owned()),
        headers: vec![
            ("content-type", "application/json".into()),
            ("x-weft-timestamp", timestamp.to_string()),
            ("x-weft-signature", triggers::signature::sign(secret.as_bytes(), timestamp, body.as_bytes())),
        ],
        bearer: false,
    }
}

enum Kind {
    /// The attacker with the owner's ids vs the attacker with random ids.
    Ids(fn(&Ids) -> Req),
    /// A listing without ids: the empty attacker vs a tenant made for the comparison.
    Listing(&'static str),
}

struct Case {
    /// The OpenAPI operation this case covers.
    method: &'static str,
    template: &'static str,
    what: &'static str,
    kind: Kind,
}

fn table() -> Vec<Case> {
    use Kind::{Ids as I, Listing as L};
    vec![
        Case {
            method: "get",
            template: "/v1/workflows",
            what: "name filter",
            kind: I(|i| req("GET", format!("/v1/workflows?name={}", i.workflow_name))),
        },
        Case {
            method: "get",
            template: "/v1/workflows",
            what: "cursor",
            kind: I(|i| req("GET", format!("/v1/workflows?limit=1&cursor={}", i.workflow_cursor))),
        },
        Case { method: "get", template: "/v1/workflows", what: "listing", kind: L("/v1/workflows") },
        Case {
            method: "get",
            template: "/v1/workflows/{id}",
            what: "read",
            kind: I(|i| req("GET", format!("/v1/workflows/{}", i.workflow))),
        },
        Case {
            method: "put",
            template: "/v1/workflows/{id}",
            what: "replace the draft",
            kind: I(|i| {
                with_json(req("PUT", format!("/v1/workflows/{}", i.workflow)), json!({"graph": graph("taken over")}))
            }),
        },
        Case {
            method: "delete",
            template: "/v1/workflows/{id}",
            what: "delete",
            kind: I(|i| req("DELETE", format!("/v1/workflows/{}", i.workflow))),
        },
        Case {
            method: "post",
            template: "/v1/workflows/{id}/versions",
            what: "publish",
            kind: I(|i| req("POST", format!("/v1/workflows/{}/versions", i.workflow))),
        },
        Case {
            method: "get",
            template: "/v1/workflows/{id}/versions",
            what: "list versions",
            kind: I(|i| req("GET", format!("/v1/workflows/{}/versions", i.workflow))),
        },
        Case {
            method: "get",
            template: "/v1/workflows/{id}/versions",
            what: "list versions with a cursor",
            kind: I(|i| req("GET", format!("/v1/workflows/{}/versions?cursor=2&limit=1", i.workflow))),
        },
        Case {
            method: "get",
            template: "/v1/workflows/{id}/versions/{version}",
            what: "read a version",
            kind: I(|i| req("GET", format!("/v1/workflows/{}/versions/{}", i.workflow, i.version))),
        },
        Case {
            method: "put",
            template: "/v1/workflows/{id}/alias",
            what: "move the alias",
            kind: I(|i| {
                with_json(req("PUT", format!("/v1/workflows/{}/alias", i.workflow)), json!({"version": i.version}))
            }),
        },
        Case { method: "get", template: "/v1/secrets", what: "listing", kind: L("/v1/secrets") },
        Case {
            method: "delete",
            template: "/v1/secrets/{name}",
            what: "delete a secret",
            kind: I(|i| req("DELETE", format!("/v1/secrets/{}", i.secret))),
        },
        Case { method: "get", template: "/v1/api-keys", what: "listing", kind: L("/v1/api-keys") },
        Case {
            method: "delete",
            template: "/v1/api-keys/{id}",
            what: "revoke a key",
            kind: I(|i| req("DELETE", format!("/v1/api-keys/{}", i.api_key))),
        },
        Case {
            method: "post",
            template: "/v1/workflows/{id}/executions",
            what: "start",
            kind: I(|i| {
                with_json(
                    req("POST", format!("/v1/workflows/{}/executions", i.workflow)),
                    json!({"input": {"item": "x"}}),
                )
            }),
        },
        Case {
            method: "post",
            template: "/v1/workflows/{id}/executions",
            what: "start with the owner's idempotency key",
            kind: I(|i| {
                let mut r = with_json(
                    req("POST", format!("/v1/workflows/{}/executions", i.workflow)),
                    json!({"input": {"item": "waits"}}),
                );
                r.headers.push(("idempotency-key", i.idempotency_key.clone()));
                r
            }),
        },
        Case {
            method: "post",
            template: "/v1/workflows/{id}/executions",
            what: "start and wait",
            kind: I(|i| {
                with_json(
                    req("POST", format!("/v1/workflows/{}/executions?wait=true", i.workflow)),
                    json!({"input": {}}),
                )
            }),
        },
        Case {
            method: "get",
            template: "/v1/executions",
            what: "workflow filter",
            kind: I(|i| req("GET", format!("/v1/executions?workflow_id={}", i.workflow))),
        },
        Case {
            method: "get",
            template: "/v1/executions",
            what: "workflow and status filter",
            kind: I(|i| req("GET", format!("/v1/executions?workflow_id={}&status=RUNNING", i.workflow))),
        },
        Case {
            method: "get",
            template: "/v1/executions",
            what: "cursor",
            kind: I(|i| req("GET", format!("/v1/executions?limit=1&cursor={}", i.execution_cursor))),
        },
        Case { method: "get", template: "/v1/executions", what: "listing", kind: L("/v1/executions") },
        Case {
            method: "get",
            template: "/v1/executions/{id}",
            what: "read a running execution",
            kind: I(|i| req("GET", format!("/v1/executions/{}", i.waiting))),
        },
        Case {
            method: "get",
            template: "/v1/executions/{id}",
            what: "read a failed execution",
            kind: I(|i| req("GET", format!("/v1/executions/{}", i.failed))),
        },
        Case {
            method: "post",
            template: "/v1/executions/{id}/stop",
            what: "stop",
            kind: I(|i| req("POST", format!("/v1/executions/{}/stop", i.waiting))),
        },
        Case {
            method: "post",
            template: "/v1/executions/{id}/stop",
            what: "stop with a body",
            kind: I(|i| {
                with_json(
                    req("POST", format!("/v1/executions/{}/stop", i.waiting)),
                    json!({"error": "E", "cause": "c"}),
                )
            }),
        },
        Case {
            method: "post",
            template: "/v1/executions/{id}/redrive",
            what: "redrive",
            kind: I(|i| req("POST", format!("/v1/executions/{}/redrive", i.failed))),
        },
        Case {
            method: "get",
            template: "/v1/executions/{id}/events",
            what: "events (SSE)",
            kind: I(|i| req("GET", format!("/v1/executions/{}/events?timeout_ms=0", i.waiting))),
        },
        Case {
            method: "get",
            template: "/v1/executions/{id}/events",
            what: "events after an id",
            kind: I(|i| {
                let mut r = req("GET", format!("/v1/executions/{}/events?timeout_ms=0", i.failed));
                r.headers.push(("last-event-id", "1".into()));
                r
            }),
        },
        Case { method: "get", template: "/v1/approvals", what: "listing", kind: L("/v1/approvals") },
        Case {
            method: "get",
            template: "/v1/approvals/{id}",
            what: "read an approval",
            kind: I(|i| req("GET", format!("/v1/approvals/{}", i.approval))),
        },
        Case {
            method: "post",
            template: "/v1/approvals/{id}",
            what: "approve",
            kind: I(|i| {
                with_json(req("POST", format!("/v1/approvals/{}", i.approval)), json!({"decision": "approve"}))
            }),
        },
        Case {
            method: "post",
            template: "/v1/approvals/{id}",
            what: "reject",
            kind: I(|i| {
                with_json(
                    req("POST", format!("/v1/approvals/{}", i.approval)),
                    json!({"decision": "reject", "comment": "no"}),
                )
            }),
        },
        Case {
            method: "get",
            template: "/v1/workflows/{id}/triggers",
            what: "triggers with webhook secrets",
            kind: I(|i| req("GET", format!("/v1/workflows/{}/triggers", i.workflow))),
        },
        Case {
            method: "post",
            template: "/v1/hooks/{workflow_id}",
            what: "signed with the attacker's secret",
            kind: I(|i| hook(&i.workflow, &i.hook_secret, chrono::Utc::now().timestamp(), r#"{"item": "hook"}"#)),
        },
        Case {
            method: "post",
            template: "/v1/hooks/{workflow_id}",
            what: "signed too long ago",
            kind: I(|i| hook(&i.workflow, &i.hook_secret, chrono::Utc::now().timestamp() - 3600, "{}")),
        },
        Case {
            method: "post",
            template: "/v1/hooks/{workflow_id}",
            what: "without signature headers",
            kind: I(|i| Req {
                method: "POST",
                path: format!("/v1/hooks/{}", i.workflow),
                body: Some("{}".into()),
                headers: Vec::new(),
                bearer: false,
            }),
        },
    ]
}

struct Answer {
    status: StatusCode,
    content_type: Option<String>,
    body: Vec<u8>,
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {:?} {}", self.status, self.content_type, String::from_utf8_lossy(&self.body))
    }
}

async fn send_raw(router: &axum::Router, tenant: &str, r: Req) -> Answer {
    let mut b = Request::builder().method(r.method).uri(&r.path);
    if r.bearer {
        b = b.header(header::AUTHORIZATION, format!("Bearer {}", token(tenant, "admin")));
    }
    for (name, value) in &r.headers {
        b = b.header(*name, value);
    }
    let request = b.body(r.body.map(Body::from).unwrap_or_else(Body::empty)).expect("request");
    let response = router.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let content_type = response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body = response.into_body().collect().await.expect("body").to_bytes().to_vec();
    Answer { status, content_type, body: without_request_ids(body) }
}

/// Bodies are compared byte for byte, except for request ids (unique per request by design).
fn without_request_ids(body: Vec<u8>) -> Vec<u8> {
    fn strip(v: &mut Value) -> bool {
        match v {
            Value::Object(m) => {
                let mut found = m.remove("request_id").is_some();
                for x in m.values_mut() {
                    found |= strip(x);
                }
                found
            }
            Value::Array(a) => a.iter_mut().fold(false, |f, x| strip(x) | f),
            _ => false,
        }
    }
    match serde_json::from_slice::<Value>(&body) {
        Ok(mut v) => {
            if strip(&mut v) {
                serde_json::to_vec(&v).unwrap_or(body)
            } else {
                body
            }
        }
        Err(_) => body,
    }
}

/// Every row the owner has (and the Step Functions endpoint's tables, which have no tenant), as
/// JSON text, to compare before and after the attacks.
async fn snapshot(pool: &sqlx::PgPool) -> Vec<(String, String)> {
    let tenant_tables = [
        "tenants",
        "users",
        "workflows",
        "workflow_versions",
        "secrets",
        "api_keys",
        "executions",
        "execution_event_chunks",
        "approvals",
        "triggers",
    ];
    let mut out = Vec::new();
    for table in tenant_tables {
        let column = if table == "tenants" { "id" } else { "tenant_id" };
        let sql = format!(
            "SELECT coalesce(jsonb_agg(to_jsonb(t) ORDER BY to_jsonb(t)::text), '[]')::text FROM {table} t WHERE {column} = $1"
        );
        let rows: String = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(OWNER).fetch_one(pool).await.expect(table);
        out.push((table.to_owned(), rows));
    }
    for table in [
        "webhook_deliveries",
        "sfn_state_machines",
        "sfn_versions",
        "sfn_aliases",
        "sfn_executions",
        "sfn_history_chunks",
    ] {
        let sql =
            format!("SELECT coalesce(jsonb_agg(to_jsonb(t) ORDER BY to_jsonb(t)::text), '[]')::text FROM {table} t");
        let rows: String = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_one(pool).await.expect(table);
        out.push((table.to_owned(), rows));
    }
    out
}

/// The OpenAPI document's operations, as (lowercase method, path).
fn openapi_operations() -> BTreeSet<(String, String)> {
    use utoipa::OpenApi as _;
    let doc = serde_json::to_value(fn_api::openapi::ApiDoc::openapi()).expect("openapi");
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in ["get", "put", "post", "delete", "patch", "head", "options"] {
            if item.get(method).is_some() {
                out.insert((method.to_owned(), path.clone()));
            }
        }
    }
    out
}

/// The routes `fn_api::app` registers, read from its source: every `.route("<path>", ...)` with
/// the methods chained in it. Paths other than `/healthz` and `/openapi.json` are under `/v1`.
fn router_operations() -> BTreeSet<(String, String)> {
    let source = include_str!("../src/lib.rs");
    let mut out = BTreeSet::new();
    let mut rest = source;
    while let Some(at) = rest.find(".route(") {
        rest = &rest[at + ".route(".len()..];
        let open = rest.find('"').expect("a route path");
        let close = open + 1 + rest[open + 1..].find('"').expect("end of the path");
        let path = &rest[open + 1..close];
        // The methods: up to the parenthesis that closes `.route(`.
        let mut depth = 1;
        let mut end = close;
        for (i, c) in rest[close..].char_indices() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                _ => {}
            }
            if depth == 0 {
                end = close + i;
                break;
            }
        }
        let methods = &rest[close..end];
        let full = if path == "/healthz" || path == "/openapi.json" { path.to_owned() } else { format!("/v1{path}") };
        for method in ["get", "put", "post", "delete", "patch"] {
            let call = format!("{method}(");
            let found = methods.match_indices(&call).any(|(i, _)| {
                i == 0 || !methods.as_bytes()[i - 1].is_ascii_alphanumeric() && methods.as_bytes()[i - 1] != b'_'
            });
            if found {
                out.insert((method.to_owned(), full.clone()));
            }
        }
    }
    out
}

#[test]
fn the_table_covers_every_route() {
    let documented = openapi_operations();
    let mut routed = router_operations();
    assert!(routed.remove(&("get".to_owned(), "/openapi.json".to_owned())), "the document itself is served");
    assert!(routed.len() > 20, "the route parser found {routed:?}");
    let undocumented: Vec<_> = routed.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routed).collect();
    assert!(
        undocumented.is_empty() && unrouted.is_empty(),
        "routes missing from the OpenAPI document: {undocumented:?}; documented but not routed (by `.route(` in src/lib.rs): {unrouted:?}"
    );
    let covered: BTreeSet<(String, String)> = table()
        .iter()
        .map(|c| (c.method.to_owned(), c.template.to_owned()))
        .chain(EXEMPT.iter().map(|(m, p, _)| ((*m).to_owned(), (*p).to_owned())))
        .collect();
    let missing: Vec<_> = documented.difference(&covered).collect();
    assert!(missing.is_empty(), "routes without an isolation case (add them to table() or EXEMPT): {missing:?}");
    let stale: Vec<_> = covered.difference(&documented).collect();
    assert!(stale.is_empty(), "cases for routes that do not exist: {stale:?}");
}

fn random_cursor(cursor: &str, separator: char) -> String {
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cursor).expect("base64 cursor");
    let raw = String::from_utf8(raw).expect("utf-8 cursor");
    let (micros, _) = raw.split_once(separator).expect("cursor shape");
    b64(&format!("{micros}{separator}{}", uuid::Uuid::new_v4()))
}

fn hook_approval_graph() -> Value {
    let mut g = approval_graph(600);
    g["triggers"] = json!([{"type": "webhook"}]);
    g
}

#[tokio::test]
async fn other_tenants_ids_answer_like_ids_that_do_not_exist() {
    let Some(env) = env().await else { return };
    let app = &env.app;
    let owner = token(OWNER, "admin");

    // The owner's objects: a published workflow (approval node, webhook trigger) with a second
    // version, a draft, an execution waiting on its approval, a failed one, a secret, an API key.
    let name = format!("acme-private-{}", uuid::Uuid::new_v4().simple());
    let mut g = hook_approval_graph();
    g["name"] = json!(name);
    let workflow = env.publish(OWNER, g).await;
    let r = app.call("POST", &format!("/v1/workflows/{workflow}/versions"), Some(&owner), None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    app.create(OWNER, graph("acme draft")).await;
    let key = format!("acme-key-{}", uuid::Uuid::new_v4().simple());
    let r = app
        .raw(
            Request::builder()
                .method("POST")
                .uri(format!("/v1/workflows/{workflow}/executions"))
                .header(header::AUTHORIZATION, format!("Bearer {owner}"))
                .header("content-type", "application/json")
                .header("idempotency-key", &key)
                .body(Body::from(json!({"input": {"item": "waits"}}).to_string()))
                .expect("request"),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let waiting = r.body["id"].as_str().expect("id").to_owned();
    let approval = env.pending_approval(OWNER, &waiting).await["id"].as_str().expect("id").to_owned();
    let failed = env.start(OWNER, &workflow, json!({"item": "rejected"})).await;
    let second = env.pending_approval(OWNER, &failed).await["id"].as_str().expect("id").to_owned();
    let r =
        app.call("POST", &format!("/v1/approvals/{second}"), Some(&owner), Some(json!({"decision": "reject"}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(env.finish(OWNER, &failed).await["status"], "FAILED");
    let r = app
        .call("POST", "/v1/secrets", Some(&owner), Some(json!({"name": "ACME_SECRET", "value": "s3cret-value"})))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = app.call("POST", "/v1/api-keys", Some(&owner), Some(json!({"name": "acme-ci", "role": "viewer"}))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let api_key = r.body["id"].as_str().expect("id").to_owned();
    let workflow_cursor = app.call("GET", "/v1/workflows?limit=1", Some(&owner), None).await.body["next_cursor"]
        .as_str()
        .expect("the owner has two workflows")
        .to_owned();
    let execution_cursor = app.call("GET", "/v1/executions?limit=1", Some(&owner), None).await.body["next_cursor"]
        .as_str()
        .expect("the owner has two executions")
        .to_owned();

    // The attacker's own webhook workflow, whose secret it signs with.
    let mut hooked = graph("globex hook");
    hooked["triggers"] = json!([{"type": "webhook"}]);
    let own = env.publish(ATTACKER, hooked).await;
    let r = app.call("GET", &format!("/v1/workflows/{own}/triggers"), Some(&token(ATTACKER, "admin")), None).await;
    let hook_secret = r.body["items"][0]["webhook"]["secret"].as_str().expect("secret").to_owned();

    let owned = Ids {
        workflow: workflow.clone(),
        version: 1,
        waiting: waiting.clone(),
        failed: failed.clone(),
        approval: approval.clone(),
        secret: "ACME_SECRET".into(),
        api_key: api_key.clone(),
        workflow_name: name.clone(),
        workflow_cursor: workflow_cursor.clone(),
        execution_cursor: execution_cursor.clone(),
        idempotency_key: key.clone(),
        hook_secret: hook_secret.clone(),
    };
    let random = Ids {
        workflow: uuid::Uuid::new_v4().to_string(),
        version: 1,
        waiting: uuid::Uuid::new_v4().to_string(),
        failed: uuid::Uuid::new_v4().to_string(),
        approval: uuid::Uuid::new_v4().to_string(),
        secret: "NO_SUCH_SECRET".into(),
        api_key: uuid::Uuid::new_v4().to_string(),
        workflow_name: format!("acme-private-{}", uuid::Uuid::new_v4().simple()),
        workflow_cursor: random_cursor(&workflow_cursor, '.'),
        execution_cursor: random_cursor(&execution_cursor, '|'),
        idempotency_key: format!("acme-key-{}", uuid::Uuid::new_v4().simple()),
        hook_secret,
    };
    // What must never show up in another tenant's answers.
    let owner_marks = [
        &workflow,
        &waiting,
        &failed,
        &approval,
        &second,
        &api_key,
        &name,
        "ACME_SECRET",
        "acme draft",
        "s3cret-value",
    ];

    // The owner sees all of it (so the attacks below aim at real objects).
    for path in [
        format!("/v1/workflows/{workflow}"),
        format!("/v1/workflows/{workflow}/versions/1"),
        format!("/v1/workflows/{workflow}/triggers"),
        format!("/v1/executions/{waiting}"),
        format!("/v1/executions/{failed}"),
        format!("/v1/approvals/{approval}"),
    ] {
        let r = app.call("GET", &path, Some(&owner), None).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.body);
    }

    let before = snapshot(app.state.store().pool()).await;
    let mut failures = Vec::new();
    for case in table() {
        let label = format!("{} {} ({})", case.method.to_uppercase(), case.template, case.what);
        let (theirs, reference) = match &case.kind {
            Kind::Ids(build) => (
                send_raw(&app.router, ATTACKER, build(&owned)).await,
                send_raw(&app.router, ATTACKER, build(&random)).await,
            ),
            Kind::Listing(path) => {
                let fresh = format!("fresh-{}", uuid::Uuid::new_v4().simple());
                (
                    send_raw(&app.router, EMPTY_ATTACKER, req("GET", (*path).into())).await,
                    send_raw(&app.router, &fresh, req("GET", (*path).into())).await,
                )
            }
        };
        let text = String::from_utf8_lossy(&theirs.body).into_owned();
        if let Some(mark) = owner_marks.iter().find(|m| text.contains(**m)) {
            failures.push(format!("{label}: the answer shows the owner's {mark}: {theirs:?}"));
        }
        if theirs.status.is_server_error() {
            failures.push(format!("{label}: a server error: {theirs:?}"));
        }
        if (theirs.status, &theirs.content_type, &theirs.body)
            != (reference.status, &reference.content_type, &reference.body)
        {
            failures.push(format!("{label}:\n  the owner's ids: {theirs:?}\n  random ids:      {reference:?}"));
        }
    }
    // A secret named like the owner's is simply the attacker's own (no conflict, no hint).
    let r = app
        .call(
            "POST",
            "/v1/secrets",
            Some(&token(ATTACKER, "admin")),
            Some(json!({"name": "ACME_SECRET", "value": "x"})),
        )
        .await;
    if r.status != StatusCode::CREATED {
        failures.push(format!("POST /v1/secrets with the owner's name: {} {}", r.status, r.body));
    }
    let after = snapshot(app.state.store().pool()).await;
    for ((table, was), (_, now)) in before.iter().zip(&after) {
        if was != now {
            failures.push(format!("the owner's {table} rows changed:\n  before: {was}\n  after:  {now}"));
        }
    }
    assert!(failures.is_empty(), "{} isolation failure(s):\n{}", failures.len(), failures.join("\n"));

    // And the owner's objects still work for the owner.
    let r = app.call("GET", &format!("/v1/executions/{waiting}"), Some(&owner), None).await;
    assert_eq!(r.body["status"], "RUNNING", "{}", r.body);
    let r = app
        .call("POST", &format!("/v1/approvals/{approval}"), Some(&owner), Some(json!({"decision": "approve"})))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(env.finish(OWNER, &waiting).await["status"], "SUCCEEDED");
}
