//! Schedules: the scheduler fires each due time of a published workflow's `cron` trigger exactly
//! once, on a virtual clock, across ticks, concurrent schedulers and a restart (a new api state on
//! the same database).

mod common;
mod trig_support;

use axum::http::StatusCode;
use chrono::{DateTime, Duration, Utc};
use common::*;
use serde_json::{Value, json};
use trig_support::*;
use triggers::cron::Cron;

const CRON: &str = "*/5 * * * *";

fn scheduled_graph() -> Value {
    let mut g = graph("scheduled");
    g["triggers"] = json!([{"type": "schedule", "cron": CRON}]);
    g["nodes"][1]["data"]["output"] = json!("{{ input.scheduled_time }}");
    g
}

async fn executions(env: &Env, workflow: &str) -> Vec<Value> {
    let r = env
        .app
        .call("GET", &format!("/v1/executions?workflow_id={workflow}"), Some(&token("acme", "viewer")), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["items"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn each_due_time_fires_once() {
    let Some(env) = env().await else { return };
    let wf = env.publish("acme", scheduled_graph()).await;
    let listed =
        env.app.call("GET", &format!("/v1/workflows/{wf}/triggers"), Some(&token("acme", "editor")), None).await;
    let registered = &listed.body["items"][0];
    assert_eq!(registered["kind"], "schedule");
    assert_eq!(registered["cron"], CRON);
    // A new schedule counts from when it was registered (armed): nothing before then fires.
    assert!(registered.get("last_fired_at").is_none(), "not fired yet: {registered}");
    let since: DateTime<Utc> = sqlx::query_scalar("SELECT armed_at FROM triggers WHERE kind = 'schedule'")
        .fetch_one(env.app.state.store().pool())
        .await
        .expect("armed_at");
    let due = Cron::parse(CRON).expect("cron").next_after(since).expect("next");
    let starter = env.app.state.executions().clone();
    let tick = |now: DateTime<Utc>| {
        let state = env.app.state.clone();
        let starter = starter.clone();
        async move {
            executions::schedules::tick(&fn_api::trigger_routes::registry(&state), &starter, now).await.expect("tick")
        }
    };

    assert_eq!(tick(due - Duration::seconds(1)).await, 0, "not due yet");
    assert_eq!(tick(due).await, 1, "due");
    let listed =
        env.app.call("GET", &format!("/v1/workflows/{wf}/triggers"), Some(&token("acme", "editor")), None).await;
    assert_eq!(
        listed.body["items"][0]["last_fired_at"].as_str().map(|s| s.parse::<DateTime<Utc>>().expect("time")),
        Some(due)
    );
    assert_eq!(tick(due + Duration::seconds(30)).await, 0, "the same due time does not fire again");

    // A restarted server (a new api state on the same database) does not fire it again either.
    let restarted = second_state(&env).await;
    let restarted_starter = restarted.executions().clone();
    assert_eq!(
        executions::schedules::tick(
            &fn_api::trigger_routes::registry(&restarted),
            &restarted_starter,
            due + Duration::seconds(45)
        )
        .await
        .expect("tick"),
        0
    );

    // Two schedulers at the next due time: one of them fires it.
    let next = due + Duration::minutes(5);
    let restarted_registry = fn_api::trigger_routes::registry(&restarted);
    let (a, b) = tokio::join!(tick(next), executions::schedules::tick(&restarted_registry, &restarted_starter, next));
    assert_eq!(a + b.expect("tick"), 1, "one fire between two schedulers");

    // After a long stop, only the latest missed due time fires.
    assert_eq!(tick(next + Duration::minutes(32)).await, 1);

    let runs = executions(&env, &wf).await;
    assert_eq!(runs.len(), 3, "{runs:?}");
    let mut outputs = Vec::new();
    for run in &runs {
        assert!(run["started_by"].as_str().is_some_and(|s| s.starts_with("schedule:")), "{run}");
        let done = env.finish("acme", run["id"].as_str().expect("id")).await;
        assert_eq!(done["status"], "SUCCEEDED", "{done}");
        outputs.push(done["output"].as_str().expect("output").to_owned());
    }
    outputs.sort();
    let expected = [due, next, next + Duration::minutes(30)].map(|t| t.to_rfc3339());
    assert_eq!(outputs, expected, "each execution got its scheduled time");
}

/// Another api state on the same database: what a restarted `weft serve` has.
async fn second_state(env: &Env) -> fn_api::AppState {
    let store = store::Store::connect(&env.app.db_url, 5).await.expect("connect");
    let redis = cache::connect(&env.app.redis_url).await.expect("redis");
    let state = fn_api::AppState::new(fn_api::Parts {
        store,
        cache: cache::Cache::new(redis.clone(), &env.app.namespace, 100, std::time::Duration::from_millis(200), 60),
        limiter: cache::RateLimiter::new(redis, &env.app.namespace, 0, 60),
        jwt: auth::JwtVerifier::new(auth::JwtSettings {
            hs256_secret: Some(SECRET.to_vec()),
            jwks: None,
            issuer: ISSUER.into(),
            audience: AUDIENCE.into(),
            leeway_seconds: 5,
        }),
        secrets: secrets::SecretsKey::new(&[42u8; 32]),
        publisher: std::sync::Arc::new(fn_api::publish::StoreOnly),
        compile_options: compiler::CompileOptions::default(),
        max_body_bytes: 1 << 20,
        waits: fn_api::Waits::default(),
    });
    state.set_sfn_client(sfn_server::sdk::local_client(&env.sfn_url, &env.sfn_credentials));
    state
}
