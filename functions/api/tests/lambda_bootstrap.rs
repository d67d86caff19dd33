//! The api's real Lambda `bootstrap` (`src/main.rs`: `lambda_http::run(app)`) under a Lambda
//! Runtime API server on 127.0.0.1, on a real Postgres and Redis, with API Gateway HTTP API
//! events (`tests/data/apigw_v2_request.json`): answered requests, a refused one with its error
//! code, and the initialisation failing without its configuration. Kept minimal and on its own,
//! since `main.rs` and the configuration it reads are about to change.

mod common;

use std::time::Duration;

use lambda_glue::runtime_api::{Outcome, RuntimeApi};
use serde_json::{Value, json};

const BOOTSTRAP: &str = env!("CARGO_BIN_EXE_fn-api");
const REQUEST: &str = include_str!("data/apigw_v2_request.json");
/// Generous: what comes back is the assertion, not how fast, on a loaded machine.
const WAIT: Duration = Duration::from_secs(60);

/// An HTTP API request event for `GET path`, with a bearer token when given.
fn get(path: &str, token: Option<&str>) -> Value {
    let mut event: Value = serde_json::from_str(REQUEST).expect("fixture");
    event["rawPath"] = json!(path);
    event["requestContext"]["http"]["path"] = json!(path);
    if let Some(token) = token {
        event["headers"]["authorization"] = json!(format!("Bearer {token}"));
    }
    event
}

/// The status and JSON body of the API Gateway response the function posted.
fn http_response(outcome: Option<Outcome>) -> (u64, Value) {
    let Some(Outcome::Response(response)) = outcome else { panic!("expected a response, got {outcome:?}") };
    let body = response["body"].as_str().unwrap_or_else(|| panic!("no body: {response}"));
    (response["statusCode"].as_u64().unwrap_or(0), serde_json::from_str(body).expect("JSON body"))
}

fn config<'a>(db: &'a str, redis: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("WEFT_DATABASE_URL", db),
        ("WEFT_REDIS_URL", redis),
        ("WEFT_JWT_SECRET", std::str::from_utf8(common::SECRET).expect("ascii")),
        ("WEFT_JWT_ISSUER", common::ISSUER),
        ("WEFT_JWT_AUDIENCE", common::AUDIENCE),
        ("WEFT_SECRETS_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="),
    ]
}

#[tokio::test]
async fn the_api_bootstrap_serves_api_gateway_events() {
    let Some(admin) = store::testing::service_url("WEFT_TEST_DATABASE_URL") else { return };
    let Some(redis) = store::testing::service_url("WEFT_TEST_REDIS_URL") else { return };
    // Deployments migrate; the function does not.
    let (_, db) = store::testing::fresh_store(&admin).await.expect("database");
    let api = RuntimeApi::start().await.expect("runtime api");
    let bootstrap = api.spawn(BOOTSTRAP, "api", &config(&db, &redis)).expect("spawn the bootstrap");

    assert_eq!(http_response(api.invoke(get("/healthz", None), WAIT).await), (200, json!({"status": "ok"})));
    let (status, body) = http_response(api.invoke(get("/v1/workflows", None), WAIT).await);
    assert_eq!(status, 401, "{body}");
    assert!(body["error"]["code"].is_string() && body["error"]["message"].is_string(), "{body}");
    let token = common::token("acme", "viewer");
    let (status, body) = http_response(api.invoke(get("/v1/workflows", Some(&token)), WAIT).await);
    assert_eq!((status, &body["items"]), (200, &json!([])), "{body}");
    assert_eq!(api.init_error(), None);
    bootstrap.stop().await.expect("stop the bootstrap");
}

#[tokio::test]
async fn the_api_bootstrap_fails_its_initialisation_without_a_database() {
    let api = RuntimeApi::start().await.expect("runtime api");
    let env: Vec<(&str, &str)> =
        config("", "redis://127.0.0.1:9").into_iter().filter(|(k, _)| *k != "WEFT_DATABASE_URL").collect();
    let stderr = api.init_failure(BOOTSTRAP, "api", &env, WAIT).await.expect("an initialisation failure");
    assert!(stderr.contains("WEFT_DATABASE_URL"), "{stderr}");
}
