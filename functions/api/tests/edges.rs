//! The API's edges: client mistakes answer 4xx (never 5xx), and the smaller defects of issue 9:
//! forged cursors, `last_used_at` of API keys, deciding an approval after a stop, and
//! `last_fired_at` of webhook triggers.

mod common;
mod trig_support;

use axum::http::StatusCode;
use common::*;
use serde_json::{Value, json};
use trig_support::*;
use triggers::signature::sign;

/// Forged cursors whose timestamps chrono accepts but Postgres cannot hold (year -100000, year
/// 200000), and ones beyond chrono's range, in the store's (`.`) and the executions' (`|`) format.
fn forged_cursors() -> Vec<String> {
    let id = uuid::Uuid::new_v4();
    let mut out = Vec::new();
    for micros in [-3_217_000_000_000_000_000_i64, 6_249_000_000_000_000_000, i64::MAX, i64::MIN] {
        out.push(b64(&format!("{micros}.{id}")));
        out.push(b64(&format!("{micros}|{id}")));
    }
    out
}

#[tokio::test]
async fn out_of_range_cursors_are_400_on_every_listing() {
    let Some(app) = setup().await else { return };
    let t = token("acme", "viewer");
    let wf = app.create("acme", graph("listed")).await;
    // Every listing that takes a cursor.
    let listings = ["/v1/workflows".to_owned(), "/v1/executions".to_owned(), format!("/v1/workflows/{wf}/versions")];
    let mut cursors = forged_cursors();
    cursors.extend(["99999999999".to_owned(), "-99999999999".to_owned()]);
    for listing in &listings {
        for cursor in &cursors {
            let r = app.call("GET", &format!("{listing}?cursor={cursor}"), Some(&t), None).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{listing} cursor {cursor}: {}", r.body);
            let message = r.body["error"]["message"].as_str().unwrap_or_default();
            assert!(message.contains("cursor"), "{listing}: {}", r.body);
        }
    }
}

#[tokio::test]
async fn client_mistakes_are_4xx() {
    let Some(app) = setup().await else { return };
    let t = token("acme", "admin");
    let wf = app.create("acme", graph("mistakes")).await;
    let cases: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", "/v1/workflows/not-a-uuid".into(), None),
        ("GET", "/v1/workflows/%FF%FE".into(), None),
        ("GET", format!("/v1/workflows/{wf}/versions/99999999999"), None),
        ("GET", format!("/v1/workflows/{wf}/versions/x"), None),
        ("GET", "/v1/workflows?limit=4294967296".into(), None),
        ("GET", "/v1/workflows?limit=100000".into(), None),
        ("GET", "/v1/workflows?name=%00".into(), None),
        ("GET", "/v1/workflows?cursor=%00".into(), None),
        ("GET", "/v1/executions?limit=99999".into(), None),
        ("GET", "/v1/executions?limit=-1".into(), None),
        ("GET", "/v1/executions?started_after=yesterday".into(), None),
        ("GET", "/v1/executions?started_before=%2B275760-09-13T00:00:00Z".into(), None),
        ("GET", "/v1/executions?workflow_id=%00".into(), None),
        ("GET", "/v1/executions?status=%00".into(), None),
        ("GET", "/v1/executions?cursor=%00".into(), None),
        ("GET", "/v1/approvals?limit=0".into(), None),
        ("GET", "/v1/approvals?limit=18446744073709551616".into(), None),
        ("GET", format!("/v1/executions/{}/events?after=-1", uuid::Uuid::new_v4()), None),
        ("GET", format!("/v1/executions/{}/events?after=99999999999999999999", uuid::Uuid::new_v4()), None),
        ("GET", format!("/v1/executions/{}/events?timeout_ms=-5", uuid::Uuid::new_v4()), None),
        ("DELETE", "/v1/secrets/a%00b".into(), None),
        ("DELETE", format!("/v1/secrets/{}", "x".repeat(5000)), None),
        ("DELETE", "/v1/api-keys/nope".into(), None),
        ("PUT", format!("/v1/workflows/{wf}/alias"), Some(json!({"version": 99_999_999_999_i64}))),
        ("POST", "/v1/workflows".into(), Some(json!({"graph": graph("nul\u{0}")}))),
        ("POST", "/v1/secrets".into(), Some(json!({"name": "S", "value": "a\u{0}b"}))),
        ("POST", "/v1/api-keys".into(), Some(json!({"name": "k\u{0}", "role": "viewer"}))),
        ("POST", format!("/v1/executions/{}/stop", uuid::Uuid::new_v4()), Some(json!({"error": "a\u{0}"}))),
    ];
    for (method, path, body) in cases {
        let r = app.call(method, &path, Some(&t), body).await;
        assert!(r.status.is_client_error(), "{method} {path}: {} {}", r.status, r.body);
        assert!(r.body["error"]["code"].is_string(), "{method} {path}: {}", r.body);
    }
    // Year 0 is a time Postgres can compare with: the filter works and finds nothing.
    let r = app.call("GET", "/v1/executions?started_before=0000-01-01T00:00:00Z", Some(&t), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

#[tokio::test]
async fn api_keys_record_when_they_were_last_used() {
    let Some(app) = setup().await else { return };
    let admin = token("acme", "admin");
    let created = app.call("POST", "/v1/api-keys", Some(&admin), Some(json!({"name": "ci", "role": "viewer"}))).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let key = created.body["secret"].as_str().expect("secret").to_owned();
    let id = created.body["id"].as_str().expect("id").to_owned();
    let last_used = || async {
        let r = app.call("GET", "/v1/api-keys", Some(&admin), None).await;
        let k = r.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|k| k["id"] == id.as_str())
            .cloned()
            .expect("key listed");
        k["last_used_at"].as_str().map(|s| s.parse::<chrono::DateTime<chrono::Utc>>().expect("time"))
    };
    assert_eq!(last_used().await, None, "never used yet");

    let r = app.call("GET", "/v1/workflows", Some(&key), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let first = last_used().await.expect("set by the first use");

    // Within a minute, further uses do not write again.
    let r = app.call("GET", "/v1/workflows", Some(&key), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(last_used().await, Some(first), "not rewritten within the minute");

    // A minute later (the row is moved back instead of waiting), the next use updates it.
    sqlx::query("UPDATE api_keys SET last_used_at = last_used_at - interval '2 minutes'")
        .execute(app.state.store().pool())
        .await
        .expect("backdate");
    let backdated = last_used().await.expect("still set");
    let r = app.call("GET", "/v1/workflows", Some(&key), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(last_used().await.expect("set") > backdated, "updated after the minute");

    // A failed authentication (wrong secret for the prefix) does not count as a use.
    sqlx::query("UPDATE api_keys SET last_used_at = NULL").execute(app.state.store().pool()).await.expect("reset");
    // `weft_` + 12 hex characters + `_`, then the secret.
    let wrong = format!("{}{}", &key[..18], "A".repeat(43));
    let r = app.call("GET", "/v1/workflows", Some(&wrong), None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    assert_eq!(last_used().await, None);
}

#[tokio::test]
async fn approving_after_a_stop_says_the_execution_is_over() {
    let Some(env) = env().await else { return };
    let wf = env.publish("acme", approval_graph(600)).await;
    let exec = env.start("acme", &wf, json!({"item": "the green box"})).await;
    let approval = env.pending_approval("acme", &exec).await;
    let id = approval["id"].as_str().expect("id").to_owned();

    let r = env.app.call("POST", &format!("/v1/executions/{exec}/stop"), Some(&token("acme", "editor")), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "ABORTED", "{}", r.body);

    for decision in ["approve", "reject"] {
        let r = env
            .app
            .call(
                "POST",
                &format!("/v1/approvals/{id}"),
                Some(&token("acme", "editor")),
                Some(json!({"decision": decision})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{decision}: {}", r.body);
        assert_eq!(r.body["error"]["code"], "execution_over", "{}", r.body);
        let message = r.body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("ABORTED"), "{message}");
        assert!(!message.contains("timed out"), "{message}");
    }
    let r = env.app.call("GET", &format!("/v1/approvals/{id}"), Some(&token("acme", "viewer")), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.get("decided_by").is_none(), "nobody decided it: {}", r.body);
}

#[tokio::test]
async fn decisions_and_stops_that_step_functions_would_refuse_are_4xx() {
    let Some(env) = env_with(Options { max_body_bytes: 1 << 20, ..Options::default() }).await else { return };
    let wf = env.publish("acme", approval_graph(600)).await;
    let exec = env.start("acme", &wf, json!({"item": "a box"})).await;
    let approval = env.pending_approval("acme", &exec).await;
    let id = approval["id"].as_str().expect("id").to_owned();
    let editor = token("acme", "editor");

    // Step Functions takes at most 256 KiB of output, input, and 256 characters of error name.
    let big = "x".repeat(300 * 1024);
    let r = env
        .app
        .call(
            "POST",
            &format!("/v1/approvals/{id}"),
            Some(&editor),
            Some(json!({"decision": "approve", "output": big})),
        )
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.body);
    let r = env
        .app
        .call("POST", &format!("/v1/workflows/{wf}/executions"), Some(&editor), Some(json!({"input": {"item": big}})))
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.body);
    let r = env
        .app
        .call("POST", &format!("/v1/executions/{exec}/stop"), Some(&editor), Some(json!({"error": "e".repeat(257)})))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let r = env
        .app
        .call("POST", &format!("/v1/executions/{exec}/stop"), Some(&editor), Some(json!({"cause": "c".repeat(32_769)})))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);

    // Nothing of that changed the execution or the approval.
    let r = env.app.call("GET", &format!("/v1/executions/{exec}"), Some(&editor), None).await;
    assert_eq!(r.body["status"], "RUNNING", "{}", r.body);
    let again = env.pending_approval("acme", &exec).await;
    assert_eq!(again["status"], "pending");
    let r = env
        .app
        .call(
            "POST",
            &format!("/v1/approvals/{id}"),
            Some(&editor),
            Some(json!({"decision": "approve", "output": {"ok": true}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(env.finish("acme", &exec).await["output"], json!({"ok": true}));
}

fn hook_graph() -> Value {
    let mut g = graph("hooked");
    g["triggers"] = json!([{"type": "webhook"}, {"type": "schedule", "cron": "0 0 1 1 *"}]);
    g
}

async fn triggers_of(env: &Env, wf: &str) -> Vec<Value> {
    let r = env.app.call("GET", &format!("/v1/workflows/{wf}/triggers"), Some(&token("acme", "editor")), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["items"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn triggers_report_last_fired_at_only_once_fired() {
    let Some(env) = env().await else { return };
    let wf = env.publish("acme", hook_graph()).await;
    let listed = triggers_of(&env, &wf).await;
    assert_eq!(listed.len(), 2, "{listed:?}");
    for t in &listed {
        assert!(t.get("last_fired_at").is_none(), "published, not fired: {t}");
    }
    let hook = listed.iter().find(|t| t["kind"] == "webhook").expect("webhook");
    let secret = hook["webhook"]["secret"].as_str().expect("secret").to_owned();

    // A refused delivery does not fire it either.
    let now = chrono::Utc::now().timestamp();
    let r = env.app.raw(delivery(&wf, now, &sign(b"wrong", now, b"{}"), "{}")).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    let hook_now = |items: Vec<Value>| items.into_iter().find(|t| t["kind"] == "webhook").expect("webhook");
    assert!(hook_now(triggers_of(&env, &wf).await).get("last_fired_at").is_none());

    let before = chrono::Utc::now() - chrono::Duration::seconds(1);
    let body = r#"{"name": "fired"}"#;
    let r = env.app.raw(delivery(&wf, now, &sign(secret.as_bytes(), now, body.as_bytes()), body)).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let after = triggers_of(&env, &wf).await;
    let fired: chrono::DateTime<chrono::Utc> =
        hook_now(after.clone())["last_fired_at"].as_str().expect("set when fired").parse().expect("time");
    assert!(fired >= before, "{fired} >= {before}");
    let schedule = after.iter().find(|t| t["kind"] == "schedule").expect("schedule");
    assert!(schedule.get("last_fired_at").is_none(), "the schedule did not fire: {schedule}");

    // Republishing keeps the fire time of the webhook.
    let r = env.app.call("POST", &format!("/v1/workflows/{wf}/versions"), Some(&token("acme", "editor")), None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(hook_now(triggers_of(&env, &wf).await)["last_fired_at"], hook_now(after)["last_fired_at"]);
}

#[tokio::test]
async fn webhook_bodies_the_database_cannot_hold_are_400() {
    let Some(env) = env_with(Options { max_body_bytes: 1 << 20, ..Options::default() }).await else { return };
    let wf = env.publish("acme", hook_graph()).await;
    let listed = triggers_of(&env, &wf).await;
    let hook = listed.iter().find(|t| t["kind"] == "webhook").expect("webhook");
    let secret = hook["webhook"]["secret"].as_str().expect("secret").to_owned();
    let now = chrono::Utc::now().timestamp();
    for body in [r#"{"name": "a\u0000b"}"#, r#"{"name": "\ud800"}"#, "not json"] {
        let r = env.app.raw(delivery(&wf, now, &sign(secret.as_bytes(), now, body.as_bytes()), body)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.body);
    }
    // More input than Step Functions takes (256 KiB), within the body limit.
    let big = format!(r#"{{"name": "{}"}}"#, "x".repeat(300 * 1024));
    let r = env.app.raw(delivery(&wf, now, &sign(secret.as_bytes(), now, big.as_bytes()), &big)).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.body);
    // The refused deliveries can be sent again once fixed: none was recorded.
    let body = r#"{"name": "ok"}"#;
    let r = env.app.raw(delivery(&wf, now, &sign(secret.as_bytes(), now, body.as_bytes()), body)).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
}
