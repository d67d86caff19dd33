//! The slack function against a fake Slack on 127.0.0.1 that answers in Slack's real shapes:
//! the Web API's `{"ok": …}` JSON (errors with HTTP 200), webhooks' plain-text `ok` /
//! `no_service` / `invalid_payload`, 429 with `Retry-After`, 5xx.

// Tests fail loudly on unexpected errors; that is what unwrap is for here.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use fn_slack::{Settings, SlackFunction};
use node_contract::{NodeError, NodeEvent};
use serde_json::{Value, json};
use tenant_secrets::StaticSecrets;

const GOOD_TOKEN: &str = "xoxb-1111-2222-goodTokenSecret9f2c";
const ECHO_TOKEN: &str = "xoxb-1111-2222-echoTokenSecret5b1d";
const BAD_TOKEN: &str = "xoxb-1111-2222-revokedTokenSecret77";
const HOOK_SECRET: &str = "okHookSecretAAAA1111";

/// One request the fake Slack received.
#[derive(Debug, Clone)]
struct Hit {
    path: String,
    authorization: Option<String>,
    content_type: Option<String>,
    body: Value,
}

#[derive(Default)]
struct Fake {
    hits: Mutex<Vec<Hit>>,
}

impl Fake {
    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    fn record(&self, path: String, headers: &HeaderMap, body: &[u8]) -> (Hit, usize) {
        let text = |h: header::HeaderName| headers.get(h).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let hit = Hit {
            path,
            authorization: text(header::AUTHORIZATION),
            content_type: text(header::CONTENT_TYPE),
            body: serde_json::from_slice(body).unwrap_or(Value::Null),
        };
        let mut hits = self.hits.lock().unwrap();
        hits.push(hit.clone());
        let same = hits.iter().filter(|h| h.path == hit.path && h.body.get("channel") == hit.body.get("channel"));
        let n = same.count();
        (hit, n)
    }
}

fn rate_limited(seconds: u32, body: &'static str) -> Response {
    (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, seconds.to_string())], body).into_response()
}

/// `chat.postMessage` as Slack answers it.
async fn post_message(State(fake): State<Arc<Fake>>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let (hit, n) = fake.record("/api/chat.postMessage".into(), &headers, &body);
    let auth = hit.authorization.clone().unwrap_or_default();
    if auth == format!("Bearer {ECHO_TOKEN}") {
        // A server quoting the credential back in an error: it must not reach the error message.
        let messages = [format!("[ERROR] token {auth} is not allowed in this workspace")];
        return axum::Json(json!({"ok": false, "error": "invalid_auth", "response_metadata": {"messages": messages}}))
            .into_response();
    }
    if auth != format!("Bearer {GOOD_TOKEN}") {
        return axum::Json(json!({"ok": false, "error": "invalid_auth"})).into_response();
    }
    let channel = hit.body["channel"].as_str().unwrap_or_default().to_owned();
    match channel.as_str() {
        "#nope" => axum::Json(json!({"ok": false, "error": "channel_not_found"})).into_response(),
        "#limited" if n == 1 => rate_limited(1, r#"{"ok":false,"error":"ratelimited"}"#),
        "#always-limited" => rate_limited(60, r#"{"ok":false,"error":"ratelimited"}"#),
        "#boom" => (StatusCode::INTERNAL_SERVER_ERROR, "upstream exploded").into_response(),
        "#slow" => {
            tokio::time::sleep(Duration::from_secs(20)).await;
            axum::Json(json!({"ok": true})).into_response()
        }
        _ => axum::Json(json!({
            "ok": true, "channel": "C0123ABCD", "ts": "1700000000.000100",
            "message": {"type": "message", "text": hit.body["text"], "bot_id": "B01"},
            "warning": "missing_charset", "response_metadata": {"warnings": ["missing_charset"]},
        }))
        .into_response(),
    }
}

/// An incoming webhook as Slack answers it: plain text.
async fn webhook(
    State(fake): State<Arc<Fake>>,
    Path((team, bot, secret)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let path = format!("/services/{team}/{bot}/{secret}");
    let (hit, n) = fake.record(path.clone(), &headers, &body);
    if secret.starts_with("gone") {
        (StatusCode::NOT_FOUND, "no_service").into_response()
    } else if secret.starts_with("bad") || hit.body.is_null() {
        (StatusCode::BAD_REQUEST, "invalid_payload").into_response()
    } else if secret.starts_with("echo") {
        (StatusCode::FORBIDDEN, format!("invalid_token: {path} ({secret})")).into_response()
    } else if secret.starts_with("limited") && n == 1 {
        rate_limited(1, "rate_limited")
    } else {
        "ok".into_response()
    }
}

/// The fake Slack; its base URL (`http://127.0.0.1:port`) and what it received.
async fn fake_slack() -> (String, Arc<Fake>) {
    let fake = Arc::new(Fake::default());
    let app = Router::new()
        .route("/api/chat.postMessage", post(post_message))
        .route("/services/{team}/{bot}/{secret}", post(webhook))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), fake)
}

/// A port nothing listens on (bound, then closed).
async fn dead_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

fn slack(settings: Settings, connection: &str) -> SlackFunction {
    let secrets = StaticSecrets::new([("SLACK".to_owned(), connection.to_owned())].into());
    SlackFunction::new(settings).unwrap().with_secrets(Arc::new(secrets))
}

fn local(base: &str) -> Settings {
    Settings::allowing(&["127.0.0.1"], &format!("{base}/api")).unwrap()
}

fn event(config: Value) -> NodeEvent {
    NodeEvent::from_value(json!({
        "node": {"id": "notify", "type": "slack"},
        "execution": {"id": "arn:aws:states:us-east-1:123456789012:execution:weft-wf:run-1"},
        "config": config,
    }))
    .unwrap()
}

async fn send(f: &SlackFunction, config: Value) -> Result<Value, NodeError> {
    f.run(event(config)).await
}

fn failed(outcome: Result<Value, NodeError>, name: &str) -> String {
    match outcome {
        Err(e) if e.name == name => e.message,
        other => panic!("expected {name}, got {other:?}"),
    }
}

#[tokio::test]
async fn token_mode_posts_the_message_with_the_bearer_token() {
    let (base, fake) = fake_slack().await;
    let f = slack(local(&base), GOOD_TOKEN);
    let blocks = json!([{"type": "section", "text": {"type": "mrkdwn", "text": "*Deploy* done"}}]);
    let out = send(
        &f,
        json!({"connection": "SLACK", "channel": "#deploys", "text": "Deploy done", "blocks": blocks,
               "thread_ts": "1699999999.000200"}),
    )
    .await
    .unwrap();
    assert_eq!(out, json!({"ok": true, "channel": "C0123ABCD", "ts": "1700000000.000100"}));

    let hits = fake.hits();
    assert_eq!(hits.len(), 1);
    let hit = &hits[0];
    assert_eq!(hit.path, "/api/chat.postMessage");
    assert_eq!(hit.authorization.as_deref(), Some(format!("Bearer {GOOD_TOKEN}").as_str()));
    assert_eq!(hit.content_type.as_deref(), Some("application/json; charset=utf-8"));
    assert_eq!(
        hit.body,
        json!({"channel": "#deploys", "text": "Deploy done", "blocks": blocks, "thread_ts": "1699999999.000200"})
    );

    // Blocks alone are a message too; no thread_ts means none is sent.
    send(&f, json!({"connection": "SLACK", "channel": "C1", "blocks": blocks})).await.unwrap();
    assert_eq!(fake.hits()[1].body, json!({"channel": "C1", "blocks": blocks}));
}

#[tokio::test]
async fn web_api_refusals_are_slack_api_with_slacks_error() {
    let (base, _) = fake_slack().await;
    let message = failed(
        send(&slack(local(&base), GOOD_TOKEN), json!({"connection": "SLACK", "channel": "#nope", "text": "x"})).await,
        "Slack.Api",
    );
    assert_eq!(message, "chat.postMessage failed: channel_not_found");
    let message = failed(
        send(&slack(local(&base), BAD_TOKEN), json!({"connection": "SLACK", "channel": "#c", "text": "x"})).await,
        "Slack.Api",
    );
    assert!(message.contains("invalid_auth") && !message.contains(BAD_TOKEN), "{message}");
}

#[tokio::test]
async fn webhook_mode_posts_and_surfaces_slacks_plain_text_refusals() {
    let (base, fake) = fake_slack().await;
    let hook = |secret: &str| format!("{base}/services/T0001/B0002/{secret}");
    let config = json!({"connection": "SLACK", "text": "hello", "thread_ts": "1.2"});

    let out = send(&slack(local(&base), &hook(HOOK_SECRET)), config.clone()).await.unwrap();
    assert_eq!(out, json!({"ok": true}));
    let hits = fake.hits();
    assert_eq!(hits[0].path, format!("/services/T0001/B0002/{HOOK_SECRET}"));
    assert_eq!(hits[0].body, json!({"text": "hello", "thread_ts": "1.2"}));
    assert_eq!(hits[0].authorization, None, "a webhook carries no bearer");

    let gone = failed(send(&slack(local(&base), &hook("goneHookSecret2222")), config.clone()).await, "Slack.Api");
    assert!(gone.contains("no_service") && gone.contains("404"), "{gone}");
    let bad = failed(send(&slack(local(&base), &hook("badHookSecret3333")), config).await, "Slack.Api");
    assert!(bad.contains("invalid_payload") && bad.contains("400"), "{bad}");
    for m in [&gone, &bad] {
        assert!(!m.contains("HookSecret") && !m.contains("/services/"), "{m}");
    }
}

#[tokio::test]
async fn rate_limits_are_waited_out_before_failing_and_the_retry_succeeds() {
    let (base, fake) = fake_slack().await;
    let f = slack(local(&base), GOOD_TOKEN);
    let config = json!({"connection": "SLACK", "channel": "#limited", "text": "x"});
    let started = Instant::now();
    let message = failed(send(&f, config.clone()).await, "Slack.RateLimited");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(950), "returned after {waited:?}, before Retry-After: 1");
    assert!(message.contains("Retry-After 1 s") && message.contains("waited 1 s"), "{message}");
    // The retry the compiler adds, after the window: the server's second request succeeds.
    assert_eq!(send(&f, config).await.unwrap()["ok"], true);
    assert_eq!(fake.hits().len(), 2);

    // Webhooks are rate-limited the same way.
    let hook = format!("{base}/services/T0001/B0002/limitedHookSecret4444");
    let f = slack(local(&base), &hook);
    let started = Instant::now();
    let message = failed(send(&f, json!({"connection": "SLACK", "text": "x"})).await, "Slack.RateLimited");
    assert!(started.elapsed() >= Duration::from_millis(950), "{message}");
    assert!(!message.contains("limitedHookSecret4444"), "{message}");
    assert_eq!(send(&f, json!({"connection": "SLACK", "text": "x"})).await.unwrap(), json!({"ok": true}));
}

#[tokio::test]
async fn the_wait_is_capped_by_the_setting_and_by_the_nodes_timeout() {
    let (base, _) = fake_slack().await;
    let config = json!({"connection": "SLACK", "channel": "#always-limited", "text": "x"});
    // Generous upper bounds: Retry-After says 60 s, and waiting that long would be the bug.
    let mut settings = local(&base);
    settings.max_retry_after = Duration::from_secs(1);
    let started = Instant::now();
    let message = failed(send(&slack(settings, GOOD_TOKEN), config.clone()).await, "Slack.RateLimited");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(950) && waited < Duration::from_secs(30), "{waited:?}");
    assert!(message.contains("waited 1 s (capped by WEFT_SLACK_MAX_RETRY_AFTER_SECONDS)"), "{message}");

    let mut config = config;
    config["timeout_seconds"] = json!(2);
    let started = Instant::now();
    let message = failed(send(&slack(local(&base), GOOD_TOKEN), config).await, "Slack.RateLimited");
    assert!(started.elapsed() < Duration::from_secs(30), "{:?}", started.elapsed());
    assert!(message.contains("capped by the node's timeout") && message.contains("Retry-After 60 s"), "{message}");
}

#[tokio::test]
async fn server_errors_timeouts_and_nothing_listening_are_connect() {
    let (base, _) = fake_slack().await;
    let f = slack(local(&base), GOOD_TOKEN);
    let message =
        failed(send(&f, json!({"connection": "SLACK", "channel": "#boom", "text": "x"})).await, "Slack.Connect");
    assert!(message.contains("500") && message.contains("upstream exploded"), "{message}");
    let slow = json!({"connection": "SLACK", "channel": "#slow", "text": "x", "timeout_seconds": 0.5});
    let message = failed(send(&f, slow).await, "Slack.Connect");
    assert!(message.contains("no answer within 0.5 s"), "{message}");

    let port = dead_port().await;
    let api = slack(local(&format!("http://127.0.0.1:{port}")), GOOD_TOKEN);
    failed(send(&api, json!({"connection": "SLACK", "channel": "#c", "text": "x"})).await, "Slack.Connect");
    let hook = format!("http://127.0.0.1:{port}/services/T0001/B0002/deadHookSecret5555");
    let message =
        failed(send(&slack(local(&base), &hook), json!({"connection": "SLACK", "text": "x"})).await, "Slack.Connect");
    assert!(message.contains("127.0.0.1") && !message.contains("deadHookSecret5555"), "{message}");
}

#[tokio::test]
async fn the_address_guard_refuses_internal_addresses_before_connecting() {
    let (base, fake) = fake_slack().await;
    let port = base.rsplit(':').next().unwrap();
    let not_allowed = Settings::allowing(&[], &format!("{base}/api")).unwrap();
    let text = json!({"connection": "SLACK", "text": "x"});
    for hook in [
        format!("{base}/services/T0001/B0002/{HOOK_SECRET}"),
        format!("http://[::ffff:127.0.0.1]:{port}/services/T0001/B0002/{HOOK_SECRET}"),
        // A name resolving to loopback: refused by the client's resolver, before TLS.
        format!("https://localhost:{port}/services/T0001/B0002/{HOOK_SECRET}"),
    ] {
        let message = failed(send(&slack(not_allowed.clone(), &hook), text.clone()).await, "Slack.ForbiddenAddress");
        assert!(!message.contains(HOOK_SECRET), "{message}");
    }
    // The operator's API URL is guarded too: 127.0.0.1 is allow-listed, the metadata address is not.
    let metadata = Settings::allowing(&["127.0.0.1"], "http://169.254.169.254/api").unwrap();
    failed(
        send(&slack(metadata, GOOD_TOKEN), json!({"connection": "SLACK", "channel": "#c", "text": "x"})).await,
        "Slack.ForbiddenAddress",
    );
    // Plain http to a public host is refused before any lookup (the URL is a credential).
    let message = failed(
        send(&slack(local(&base), "http://hooks.slack.com/services/T0001/B0002/plainHookSecret6666"), text).await,
        "Config.Invalid",
    );
    assert!(message.starts_with("config.connection: ") && message.contains("https"), "{message}");
    assert!(fake.hits().is_empty(), "the server saw {:?}", fake.hits());
}

#[tokio::test]
async fn the_token_and_webhook_path_never_appear_in_outputs_or_errors() {
    let (base, _) = fake_slack().await;
    let echoed =
        send(&slack(local(&base), ECHO_TOKEN), json!({"connection": "SLACK", "channel": "#c", "text": "x"})).await;
    let message = failed(echoed.clone(), "Slack.Api");
    assert!(message.contains("invalid_auth") && message.contains("token Bearer ***"), "{message}");

    let secret = "echoHookSecretBBBB7777";
    let hook = format!("{base}/services/T0001/B0002/{secret}");
    let hook_echo = send(&slack(local(&base), &hook), json!({"connection": "SLACK", "text": "x"})).await;
    let message = failed(hook_echo.clone(), "Slack.Api");
    assert!(message.contains("invalid_token: *** (***)"), "{message}");

    for shown in [format!("{echoed:?}"), format!("{hook_echo:?}")] {
        for needle in [ECHO_TOKEN, secret, "/services/T0001/B0002/"] {
            assert!(!shown.contains(needle), "{needle} in {shown}");
        }
    }
}

#[tokio::test]
async fn bad_configs_are_config_invalid_naming_the_field() {
    let (base, fake) = fake_slack().await;
    let f = slack(local(&base), GOOD_TOKEN);
    let cases = [
        (json!({"channel": "#c", "text": "x"}), "config.connection: "),
        (json!({"connection": "SLACK", "text": "x"}), "config.channel: "),
        (json!({"connection": "SLACK", "channel": "#c"}), "config.text: "),
        (json!({"connection": "SLACK", "channel": "#c", "text": "x", "blocks": "no"}), "config.blocks: "),
        (
            json!({"connection": "SLACK", "channel": "#c", "text": "x", "timeout_seconds": 0}),
            "config.timeout_seconds: ",
        ),
    ];
    for (config, says) in cases {
        let message = failed(send(&f, config.clone()).await, "Config.Invalid");
        assert!(message.starts_with(says), "{config}: {message}");
    }
    let not_a_connection = "hunter2-not-slack";
    let message = failed(
        send(&slack(local(&base), not_a_connection), json!({"connection": "SLACK", "text": "x"})).await,
        "Config.Invalid",
    );
    assert!(message.starts_with("config.connection: ") && !message.contains(not_a_connection), "{message}");
    let message =
        failed(send(&f, json!({"connection": "OTHER", "channel": "#c", "text": "x"})).await, "Secret.NotFound");
    assert!(message.contains("OTHER"), "{message}");
    assert!(fake.hits().is_empty());
}
