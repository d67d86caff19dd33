//! Sub-workflows (`workflow` nodes, `states:startExecution.sync:2`) end to end on a real
//! `weft serve` (Postgres, Redis, its Step Functions endpoint, the in-process node functions):
//!
//! - publishing refuses, through the API (422 + diagnostics naming the node), a child that is a
//!   random id (`unknown-workflow`), a workflow never published (`unpublished-workflow`), another
//!   tenant's workflow (`unknown-workflow`: tenants are isolated) and a circle (`workflow-cycle`,
//!   the path naming both workflows);
//! - a published parent starts its child through the child's `live` alias: the parent succeeds
//!   with the child's output, the child is an execution of its own (listed, with
//!   `parent_execution_id`), linked from the parent's events (`child_execution_started`) and node
//!   summary (`child_execution_ids`); rolling the child's alias back makes the next parent run
//!   use the older child version, without republishing the parent;
//! - a failing child fails the parent with the child's error name (`Code.Error`), or, with an
//!   error edge, hands the handler `{error, cause, execution_arn}` of the child;
//! - a child's `http` node gets its tenant's secret (the child row carries the parent's tenant),
//!   and a `database` node's connection URL: neither the secret nor the database password
//!   appears in any table of the database or in the server's log;
//! - the parent's events link a child that failed, and a child still running (both need the
//!   engine's `TaskSubmitted` for `.sync` Tasks, which it does not emit yet).

mod executions_common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::Request;
use executions_common::{Api, Serve, follow, services, token_as};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

const LIMIT: Duration = Duration::from_secs(120);

fn edge(id: &str, source: &str, target: &str) -> Value {
    json!({"id": id, "source": source, "target": target})
}

/// start → `work` (a code node running `source`) → done (output `nodes.work`).
fn code_graph(name: &str, source: &str) -> Value {
    json!({"format": "weft/v1", "id": name, "name": name,
        "nodes": [{"id": "start", "type": "start", "data": {}},
                  {"id": "work", "type": "code", "data": {"source": source}},
                  {"id": "done", "type": "end", "data": {"output": "{{ nodes.work }}"}}],
        "edges": [edge("e1", "start", "work"), edge("e2", "work", "done")]})
}

/// start → `call` (a workflow node starting `child` with `{x: input.x}`) → done (output
/// `nodes.call`).
fn parent_graph(name: &str, child: &str) -> Value {
    json!({"format": "weft/v1", "id": name, "name": name,
        "nodes": [{"id": "start", "type": "start", "data": {}},
                  {"id": "call", "type": "workflow", "data": {"workflow_id": child, "input": {"x": "{{ input.x }}"}}},
                  {"id": "done", "type": "end", "data": {"output": "{{ nodes.call }}"}}],
        "edges": [edge("e1", "start", "call"), edge("e2", "call", "done")]})
}

/// Creates a workflow (draft only); returns its id.
async fn create(api: &Api, graph: Value) -> String {
    let (status, created) = api.call(Method::POST, "/v1/workflows", Some(json!({"graph": graph}))).await;
    assert_eq!(status, 201, "{created}");
    created["id"].as_str().expect("id").to_owned()
}

/// Publishes the draft of `id`: the status and body.
async fn publish(api: &Api, id: &str) -> (u16, Value) {
    api.call(Method::POST, &format!("/v1/workflows/{id}/versions"), None).await
}

/// Asserts a refused publish: 422 with one error diagnostic of `code` at node `node`; returns
/// its message.
fn refused(what: &str, (status, body): (u16, Value), code: &str, node: &str) -> String {
    assert_eq!(status, 422, "{what}: {body}");
    assert_eq!(body["error"]["code"], "invalid_graph", "{what}: {body}");
    let diagnostics = body["diagnostics"].as_array().cloned().unwrap_or_default();
    let found = diagnostics.iter().find(|d| d["code"] == code);
    let Some(d) = found else { panic!("{what}: no `{code}` diagnostic in {body}") };
    assert_eq!(d["severity"], "error", "{what}: {d}");
    assert_eq!(d["node"], node, "{what}: {d}");
    d["message"].as_str().unwrap_or_default().to_owned()
}

async fn finish(api: &Api, execution: &str) -> Value {
    api.wait_status(execution, LIMIT, executions::is_terminal).await
}

/// Starts `workflow` with `input` and waits for the outcome (STANDARD: asynchronous start).
async fn run_to_end(api: &Api, workflow: &str, input: Value) -> (String, Value) {
    let id = api.start(workflow, input).await;
    let done = finish(api, &id).await;
    (id, done)
}

/// The one child execution of node `call` of `parent`, from the parent's node summary.
fn child_of(parent: &Value) -> String {
    let nodes = parent["nodes"].as_array().cloned().unwrap_or_default();
    let call = nodes.iter().find(|n| n["node_id"] == "call").unwrap_or_else(|| panic!("no node `call`: {parent}"));
    let ids = call["child_execution_ids"].as_array().cloned().unwrap_or_default();
    assert_eq!(ids.len(), 1, "{parent}");
    ids[0].as_str().expect("child id").to_owned()
}

/// The child execution of workflow `child` that `parent` started, from the list.
async fn listed_child(api: &Api, child: &str, parent: &str) -> Value {
    let listed = api.get(&format!("/v1/executions?workflow_id={child}")).await;
    let items = listed["items"].as_array().cloned().unwrap_or_default();
    let mine: Vec<&Value> = items.iter().filter(|e| e["parent_execution_id"] == parent).collect();
    assert_eq!(mine.len(), 1, "one child of {parent} in {listed}");
    let id = mine[0]["id"].as_str().expect("id").to_owned();
    finish(api, &id).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_refuses_unknown_unpublished_foreign_and_circular_children() {
    let Some((db, redis)) = services().await else { return };
    let run = Uuid::new_v4().simple().to_string();
    let serve = Serve::start(&db, &redis, 0, &[]);
    let a = Api::new(&serve.base, &format!("sub-a-{run}"));
    let b = Api::new(&serve.base, &format!("sub-b-{run}"));

    // A random id: no such workflow.
    let random = Uuid::new_v4().to_string();
    let parent = create(&a, parent_graph("to-random", &random)).await;
    let message = refused("random id", publish(&a, &parent).await, "unknown-workflow", "call");
    assert!(message.contains(&random), "{message}");

    // Not a UUID at all.
    let parent = create(&a, parent_graph("to-garbage", "not-a-uuid")).await;
    refused("not a uuid", publish(&a, &parent).await, "unknown-workflow", "call");

    // A workflow that exists but was never published.
    let draft = create(&a, code_graph("draft-only", "return 1;")).await;
    let parent = create(&a, parent_graph("to-draft", &draft)).await;
    let message = refused("unpublished", publish(&a, &parent).await, "unpublished-workflow", "call");
    assert!(message.contains(&draft), "{message}");
    // Once the child is published, the very same parent publishes.
    let (status, body) = publish(&a, &draft).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = publish(&a, &parent).await;
    assert_eq!(status, 201, "{body}");

    // Another tenant's published workflow is unknown here, exactly like a random id.
    let foreign = b.publish(code_graph("b-child", "return 2;")).await;
    let parent = create(&a, parent_graph("to-foreign", &foreign)).await;
    let message = refused("other tenant", publish(&a, &parent).await, "unknown-workflow", "call");
    assert!(message.contains(&foreign), "{message}");
    assert!(!message.contains("b-child"), "the other tenant's workflow name leaks: {message}");
    // ... and B itself can call it.
    let own = b.publish(parent_graph("b-parent", &foreign)).await;
    assert!(!own.is_empty());

    // A workflow calling itself.
    let selfish = create(&a, code_graph("selfish", "return 3;")).await;
    let (status, body) = a
        .call(
            Method::PUT,
            &format!("/v1/workflows/{selfish}"),
            Some(json!({"graph": parent_graph("selfish", &selfish)})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let message = refused("self call", publish(&a, &selfish).await, "workflow-cycle", "call");
    assert!(message.contains(&selfish), "{message}");

    // A circle: B (no calls) published, A → B published, then B's draft calls A.
    let wf_b = a.publish(code_graph("cycle-b", "return 4;")).await;
    let wf_a = a.publish(parent_graph("cycle-a", &wf_b)).await;
    let (status, body) = a
        .call(Method::PUT, &format!("/v1/workflows/{wf_b}"), Some(json!({"graph": parent_graph("cycle-b", &wf_a)})))
        .await;
    assert_eq!(status, 200, "{body}");
    let message = refused("cycle", publish(&a, &wf_b).await, "workflow-cycle", "call");
    assert!(message.contains(&wf_a) && message.contains(&wf_b), "the path names both workflows: {message}");
    assert!(message.contains(&format!("{wf_b} → {wf_a} → {wf_b}")), "{message}");
    // B's live version is still the one without calls.
    let (_, w) = a.call(Method::GET, &format!("/v1/workflows/{wf_b}"), None).await;
    assert_eq!(w["live_version"], 1, "{w}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parent_runs_the_live_child_and_links_it() {
    let Some((db, redis)) = services().await else { return };
    let run = Uuid::new_v4().simple().to_string();
    let serve = Serve::start(&db, &redis, 0, &[]);
    let api = Api::new(&serve.base, &format!("sub-run-{run}"));

    let child = api.publish(code_graph("child", "return { doubled: input.x * 2, v: 1 };")).await;
    let parent = api.publish(parent_graph("parent", &child)).await;

    // The parent's compiled ASL starts the child's live alias.
    let child_wf = api.get(&format!("/v1/workflows/{child}")).await;
    let child_sm = child_wf["state_machine_arn"].as_str().expect("child state machine").to_owned();
    let version = api.get(&format!("/v1/workflows/{parent}/versions/1")).await;
    assert_eq!(version["workflow_type"], "STANDARD", "`.sync` makes the parent STANDARD: {version}");
    let call = &version["asl"]["States"]["call"];
    assert_eq!(call["Resource"], "arn:aws:states:::states:startExecution.sync:2", "{call}");
    assert_eq!(call["Parameters"]["StateMachineArn"], format!("{child_sm}:live"), "{call}");

    // A run: the parent's output is the child's.
    let (parent_run, done) = run_to_end(&api, &parent, json!({"x": 21})).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(done["output"], json!({"doubled": 42, "v": 1}), "{done}");
    assert!(done.get("parent_execution_id").is_none(), "{done}");

    // The child is an execution of its own, in the same tenant, linked to the parent.
    let child_run = child_of(&done);
    let child_done = finish(&api, &child_run).await;
    assert_eq!(child_done["status"], "SUCCEEDED", "{child_done}");
    assert_eq!(child_done["parent_execution_id"], parent_run.as_str(), "{child_done}");
    assert_eq!(child_done["workflow_id"], child.as_str(), "{child_done}");
    assert_eq!(child_done["version"], 1, "{child_done}");
    assert_eq!(child_done["input"], json!({"x": 21}), "{child_done}");
    assert_eq!(child_done["output"], json!({"doubled": 42, "v": 1}), "{child_done}");
    let listed = api.get(&format!("/v1/executions?workflow_id={child}")).await;
    let items = listed["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 1, "{listed}");
    assert_eq!(items[0]["id"], child_run.as_str(), "{listed}");
    assert_eq!(items[0]["parent_execution_id"], parent_run.as_str(), "{listed}");
    assert_eq!(items[0]["status"], "SUCCEEDED", "{listed}");
    // The whole list has both, the parent without a parent.
    let all = api.get("/v1/executions").await;
    let all = all["items"].as_array().cloned().unwrap_or_default();
    let top = all.iter().find(|e| e["id"] == parent_run.as_str()).expect("the parent is listed");
    assert!(top.get("parent_execution_id").is_none_or(Value::is_null), "{top}");
    assert!(all.iter().any(|e| e["id"] == child_run.as_str() && e["parent_execution_id"] == parent_run.as_str()));

    // The parent's events announce the child, on the workflow node.
    let (events, end) = follow(&api, &parent_run, LIMIT).await;
    assert_eq!(end["status"], "SUCCEEDED", "{end}");
    let started: Vec<&Value> = events.iter().filter(|e| e["type"] == "child_execution_started").collect();
    assert_eq!(started.len(), 1, "{events:?}");
    assert_eq!(started[0]["node_id"], "call", "{}", started[0]);
    assert_eq!(started[0]["payload"]["child_execution_id"], child_run.as_str(), "{}", started[0]);
    // The child's own events are its own: its code node, not the parent's workflow node.
    let (child_events, child_end) = follow(&api, &child_run, LIMIT).await;
    assert_eq!(child_end["status"], "SUCCEEDED", "{child_end}");
    let kinds = executions_common::kinds(&child_events);
    assert!(kinds.iter().any(|(_, node)| node == "work"), "{kinds:?}");
    assert!(!kinds.iter().any(|(_, node)| node == "call"), "{kinds:?}");

    // Version 2 of the child; the parent (not republished) runs it through the alias.
    let (status, body) = api
        .call(
            Method::PUT,
            &format!("/v1/workflows/{child}"),
            Some(json!({"graph": code_graph("child", "return { doubled: input.x * 2, v: 2 };")})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = publish(&api, &child).await;
    assert_eq!(status, 201, "{body}");
    let (second, done) = run_to_end(&api, &parent, json!({"x": 5})).await;
    assert_eq!(done["output"], json!({"doubled": 10, "v": 2}), "{done}");
    assert_eq!(done["version"], 1, "the parent was not republished: {done}");
    assert_eq!(finish(&api, &child_of(&done)).await["version"], 2);
    assert_ne!(second, parent_run);

    // Rolling the child's alias back to version 1: the next parent run uses it.
    let (status, body) =
        api.call(Method::PUT, &format!("/v1/workflows/{child}/alias"), Some(json!({"version": 1}))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["version"], 1, "{body}");
    assert_eq!(body["alias_arn"], format!("{child_sm}:live"), "{body}");
    let (_, done) = run_to_end(&api, &parent, json!({"x": 6})).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(done["output"], json!({"doubled": 12, "v": 1}), "the rolled-back child ran: {done}");
    let rolled = finish(&api, &child_of(&done)).await;
    assert_eq!(rolled["version"], 1, "{rolled}");
    let listed = api.get(&format!("/v1/executions?workflow_id={child}")).await;
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(3), "{listed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_child_fails_the_parent_with_its_error_or_reaches_the_handler() {
    let Some((db, redis)) = services().await else { return };
    let run_id = Uuid::new_v4().simple().to_string();
    let serve = Serve::start(&db, &redis, 0, &[]);
    let api = Api::new(&serve.base, &format!("sub-fail-{run_id}"));

    let child = api.publish(code_graph("thrower", "throw new Error('child boom ' + input.x);")).await;

    // No handler: the parent fails with the child's error and cause, not States.TaskFailed.
    let parent = api.publish(parent_graph("unhandled", &child)).await;
    let (parent_run, done) = run_to_end(&api, &parent, json!({"x": 7})).await;
    assert_eq!(done["status"], "FAILED", "{done}");
    assert_eq!(done["error"], "Code.Error", "{done}");
    assert!(done["cause"].as_str().unwrap_or_default().contains("child boom 7"), "{done}");
    let child_done = listed_child(&api, &child, &parent_run).await;
    assert_eq!(child_done["status"], "FAILED", "{child_done}");
    assert_eq!(child_done["error"], "Code.Error", "{child_done}");
    let call = done["nodes"].as_array().and_then(|n| n.iter().find(|n| n["node_id"] == "call")).cloned();
    assert_eq!(call.as_ref().map(|c| c["status"].clone()), Some(json!("FAILED")), "{done}");

    // An error edge: the handler sees the child's error, cause and execution ARN.
    let handled = json!({"format": "weft/v1", "id": "handled", "name": "handled",
        "nodes": [{"id": "start", "type": "start", "data": {}},
                  {"id": "call", "type": "workflow", "data": {"workflow_id": child, "input": {"x": "{{ input.x }}"}}},
                  {"id": "ok", "type": "end", "data": {"output": {"ok": "{{ nodes.call }}"}}},
                  {"id": "handler", "type": "code", "data": {"source":
                      "return { seen: nodes.call.error, cause: nodes.call.cause, arn: nodes.call.execution_arn };"}},
                  {"id": "failed", "type": "end", "data": {"output": "{{ nodes.handler }}"}}],
        "edges": [edge("e1", "start", "call"), edge("e2", "call", "ok"),
                  {"id": "e3", "source": "call", "sourceHandle": "error", "target": "handler"},
                  edge("e4", "handler", "failed")]});
    let parent = api.publish(handled).await;
    let (handled_run, done) = run_to_end(&api, &parent, json!({"x": 8})).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    let out = &done["output"];
    assert_eq!(out["seen"], "Code.Error", "{done}");
    assert!(out["cause"].as_str().unwrap_or_default().contains("child boom 8"), "{done}");
    let child_done = listed_child(&api, &child, &handled_run).await;
    assert_eq!(child_done["status"], "FAILED", "{child_done}");
    let child_run = child_done["id"].as_str().unwrap_or_default();
    assert!(out["arn"].as_str().unwrap_or_default().ends_with(&format!(":{child_run}")), "{done}");
}

/// Records the `x-token` header of every request and answers `{"ok": true}`.
async fn header_server(seen: Arc<Mutex<Vec<String>>>) -> String {
    let app = axum::Router::new().fallback(move |request: Request| {
        let seen = seen.clone();
        async move {
            if let Some(v) = request.headers().get("x-token").and_then(|v| v.to_str().ok()) {
                seen.lock().unwrap_or_else(|e| e.into_inner()).push(v.to_owned());
            }
            axum::Json(json!({"ok": true}))
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

/// `url` (`postgres://user@host/db`) with `password` added to its user.
fn with_password(url: &str, password: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("scheme");
    let (user, host) = rest.split_once('@').expect("the test database URL names its user");
    assert!(!user.contains(':'), "the test database URL has a password already");
    let sep = if host.contains('?') { '&' } else { '?' };
    format!("{scheme}://{user}:{password}@{host}{sep}sslmode=disable")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_childs_secrets_and_database_password_are_stored_nowhere() {
    const TOKEN: &str = "child-secret-token-51f0a7c3";
    const PASSWORD: &str = "child-db-password-9be24d71";
    let Some((db, redis)) = services().await else { return };
    let run_id = Uuid::new_v4().simple().to_string();
    let tenant = format!("sub-sec-{run_id}");
    let serve = Serve::start(&db, &redis, 0, &[("RUST_LOG", "debug")]);
    let api = Api::new(&serve.base, &tenant);
    let admin = Api { token: token_as(&tenant, "admin"), ..api.clone() };
    let seen = Arc::new(Mutex::new(Vec::new()));
    let server = header_server(seen.clone()).await;
    // The dev Postgres trusts 127.0.0.1, so the password is never checked, only carried.
    let connection = with_password(&db, PASSWORD);
    for (name, value) in [("TOKEN", TOKEN), ("reports_db", connection.as_str())] {
        let (status, body) = admin.call(Method::POST, "/v1/secrets", Some(json!({"name": name, "value": value}))).await;
        assert_eq!(status, 201, "{body}");
    }

    // The child: an http node sending the secret, then a database node on the connection.
    let child = json!({"format": "weft/v1", "id": "secret-child", "name": "secret-child",
        "nodes": [{"id": "start", "type": "start", "data": {}},
                  {"id": "call", "type": "http", "retry": {"max_attempts": 1}, "data": {"method": "GET",
                      "url": format!("{server}/hook"), "headers": {"X-Token": "{{ secrets.TOKEN }}"}}},
                  {"id": "query", "type": "database", "data": {"connection": "reports_db", "read_only": true,
                      "query": "SELECT $1::int8 * 2 AS doubled, current_database() AS db", "params": ["{{ input.x }}"]}},
                  {"id": "done", "type": "end", "data": {"output": {"http": "{{ nodes.call.body }}",
                      "rows": "{{ nodes.query.rows }}"}}}],
        "edges": [edge("e1", "start", "call"), edge("e2", "call", "query"), edge("e3", "query", "done")]});
    let child = api.publish(child).await;
    let parent = api.publish(parent_graph("secret-parent", &child)).await;
    let (parent_run, done) = run_to_end(&api, &parent, json!({"x": 4})).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    // The request arrived with the tenant's secret: the child ran as the parent's tenant.
    assert_eq!(seen.lock().unwrap_or_else(|e| e.into_inner()).as_slice(), [TOKEN.to_owned()]);
    let db_name = db.rsplit('/').next().unwrap_or_default().split('?').next().unwrap_or_default().to_owned();
    assert_eq!(done["output"], json!({"http": {"ok": true}, "rows": [{"doubled": 8, "db": db_name}]}), "{done}");
    let child_run = child_of(&done);
    let child_done = finish(&api, &child_run).await;
    assert_eq!(child_done["status"], "SUCCEEDED", "{child_done}");
    assert_eq!(child_done["parent_execution_id"], parent_run.as_str());

    // A child whose connection is refused: the failure's message names no password either.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr");
    let refused_url = format!("postgres://postgres:{PASSWORD}@{closed}/nowhere?sslmode=disable");
    let (status, body) =
        admin.call(Method::POST, "/v1/secrets", Some(json!({"name": "closed_db", "value": refused_url}))).await;
    assert_eq!(status, 201, "{body}");
    let failing = json!({"format": "weft/v1", "id": "closed-child", "name": "closed-child",
        "nodes": [{"id": "start", "type": "start", "data": {}},
                  {"id": "query", "type": "database", "retry": {"max_attempts": 1},
                      "data": {"connection": "closed_db", "query": "SELECT 1"}},
                  {"id": "done", "type": "end", "data": {"output": "{{ nodes.query }}"}}],
        "edges": [edge("e1", "start", "query"), edge("e2", "query", "done")]});
    let failing = api.publish(failing).await;
    let failing_parent = api.publish(parent_graph("closed-parent", &failing)).await;
    let (failed_run, failed) = run_to_end(&api, &failing_parent, json!({"x": 1})).await;
    assert_eq!(failed["status"], "FAILED", "{failed}");
    assert_eq!(failed["error"], "Database.Connect", "{failed}");
    assert!(!failed["cause"].as_str().unwrap_or_default().contains(PASSWORD), "{failed}");
    let failed_child = listed_child(&api, &failing, &failed_run).await;
    assert_eq!(failed_child["error"], "Database.Connect", "{failed_child}");

    // What the API shows, the database's tables and the server's log.
    let mut shown = String::new();
    for id in [&parent_run, &child_run] {
        shown.push_str(&api.get(&format!("/v1/executions/{id}")).await.to_string());
        let (events, end) = follow(&api, id, LIMIT).await;
        shown.push_str(&Value::Array(events).to_string());
        shown.push_str(&end.to_string());
    }
    shown.push_str(&api.get("/v1/executions").await.to_string());
    let pool = sqlx::PgPool::connect(&db).await.expect("connect");
    let tables: Vec<String> = sqlx::query_scalar("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'")
        .fetch_all(&pool)
        .await
        .expect("tables");
    for t in ["executions", "execution_event_chunks", "sfn_executions", "sfn_history_chunks", "secrets"] {
        assert!(tables.iter().any(|x| x == t), "no table {t} in {tables:?}");
    }
    let mut dumps = Vec::new();
    for table in &tables {
        let dump: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT coalesce(string_agg(t::text, E'\\n'), '') FROM \"{table}\" t"
        )))
        .fetch_one(&pool)
        .await
        .expect("dump");
        dumps.push((format!("table {table}"), dump));
    }
    // The runs are there (so the dumps cover them): the rows, and the child's history with the
    // templates and the connection's name.
    let history =
        dumps.iter().find(|(t, _)| t == "table sfn_history_chunks").map(|(_, d)| d.as_str()).unwrap_or_default();
    assert!(history.contains("secrets.TOKEN") && history.contains("reports_db"), "the history lacks the child's run");
    let children = dumps.iter().find(|(t, _)| t == "table executions").map(|(_, d)| d.clone()).unwrap_or_default();
    assert!(children.contains(&child_run) && children.contains(&parent_run), "{children}");
    dumps.push(("the API's executions and events".into(), shown));
    let log = serve.log.lock().unwrap_or_else(|e| e.into_inner()).clone();
    assert!(log.contains("DEBUG"), "the log is not at debug level");
    dumps.push(("the server log".into(), log));
    for (what, text) in &dumps {
        for value in [TOKEN, PASSWORD] {
            assert!(!text.contains(value), "{what} contains `{value}`:\n{text}");
        }
    }
}

/// The parent's events link the child when the child fails (its ARN is then only in the
/// failure's cause), as they do when it succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_parent_links_a_failed_child() {
    let Some((db, redis)) = services().await else { return };
    let run_id = Uuid::new_v4().simple().to_string();
    let serve = Serve::start(&db, &redis, 0, &[]);
    let api = Api::new(&serve.base, &format!("sub-link-{run_id}"));

    // A failed child.
    let thrower = api.publish(code_graph("thrower", "throw new Error('boom');")).await;
    let parent = api.publish(parent_graph("unhandled", &thrower)).await;
    let (parent_run, done) = run_to_end(&api, &parent, json!({"x": 1})).await;
    assert_eq!(done["status"], "FAILED", "{done}");
    let child = listed_child(&api, &thrower, &parent_run).await;
    let (events, _) = follow(&api, &parent_run, LIMIT).await;
    let linked: Vec<&Value> = events.iter().filter(|e| e["type"] == "child_execution_started").collect();
    assert_eq!(linked.len(), 1, "the failed child {} is not linked from the parent's events: {events:?}", child["id"]);
    assert_eq!(linked[0]["payload"]["child_execution_id"], child["id"], "{events:?}");
    assert_eq!(child_of(&done), child["id"].as_str().unwrap_or_default(), "{done}");
}

/// The parent's events name the child while it is still running (a `.sync` Task's
/// `TaskSubmitted`), not only once it has succeeded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_parent_links_a_child_while_it_runs() {
    let Some((db, redis)) = services().await else { return };
    let run_id = Uuid::new_v4().simple().to_string();
    let serve = Serve::start(&db, &redis, 0, &[]);
    let api = Api::new(&serve.base, &format!("sub-running-{run_id}"));
    // The child waits an hour: it is certainly still running while the parent is looked at.
    let slow = json!({"format": "weft/v1", "id": "slow", "name": "slow",
        "nodes": [{"id": "start", "type": "start", "data": {}},
                  {"id": "nap", "type": "delay", "data": {"seconds": 3600}},
                  {"id": "done", "type": "end", "data": {"output": {"x": "{{ input.x }}"}}}],
        "edges": [edge("e1", "start", "nap"), edge("e2", "nap", "done")]});
    let slow = api.publish(slow).await;
    let parent = api.publish(parent_graph("waits", &slow)).await;
    let parent_run = api.start(&parent, json!({"x": 2})).await;
    // The child's row exists from its start on.
    let deadline = std::time::Instant::now() + LIMIT;
    let child_run = loop {
        let listed = api.get(&format!("/v1/executions?workflow_id={slow}")).await;
        if let Some(id) = listed["items"].as_array().and_then(|i| i.first()).and_then(|e| e["id"].as_str()) {
            break id.to_owned();
        }
        assert!(std::time::Instant::now() < deadline, "no child row: {listed}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Generous: the recorder records a running execution's events within a few seconds.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let e = api.get(&format!("/v1/executions/{parent_run}")).await;
        assert_eq!(e["status"], "RUNNING", "{e}");
        let ids = e["nodes"]
            .as_array()
            .and_then(|n| n.iter().find(|n| n["node_id"] == "call"))
            .and_then(|c| c["child_execution_ids"].as_array().cloned())
            .unwrap_or_default();
        if !ids.is_empty() {
            assert_eq!(ids, [json!(child_run)], "{e}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the running child {child_run} is not linked from its running parent after 30 s: {e}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let events = recorded_events(&api, &parent_run).await;
    assert!(events.iter().any(|e| e["type"] == "child_execution_started"), "{events:?}");
    // Stopping the child fails the parent.
    let (status, body) = api.call(Method::POST, &format!("/v1/executions/{child_run}/stop"), None).await;
    assert_eq!(status, 200, "{body}");
    let done = finish(&api, &parent_run).await;
    assert_eq!(done["status"], "FAILED", "{done}");
}

/// The events of a running execution recorded so far (one SSE response, without waiting).
async fn recorded_events(api: &Api, execution: &str) -> Vec<Value> {
    let got =
        executions_common::read_sse(api, &format!("/v1/executions/{execution}/events?timeout_ms=0"), None, None).await;
    got.into_iter().filter(|e| e.id.is_some()).filter_map(|e| serde_json::from_str(&e.data).ok()).collect()
}
