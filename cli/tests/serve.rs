//! `weft serve` as a real process: configuration errors, migrations at start-up, and the API
//! over real HTTP on 127.0.0.1.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

const WEFT: &str = env!("CARGO_BIN_EXE_weft");

#[test]
fn bad_configuration_lists_every_problem_and_exits_2() {
    let out = Command::new(WEFT)
        .args(["serve", "--port", "0"])
        .env_clear()
        .env("WEFT_SECRETS_KEY", "dG9vIHNob3J0")
        .output()
        .expect("run weft");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "WEFT_DATABASE_URL is not set",
        "WEFT_REDIS_URL is not set",
        "WEFT_JWT_SECRET (HS256) or WEFT_JWKS_URL (RS256)",
        "WEFT_SECRETS_KEY must decode to exactly 32 bytes",
    ] {
        assert!(stderr.contains(needle), "missing `{needle}` in:\n{stderr}");
    }
}

/// Kills the server when the test ends, however it ends.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn serve_migrates_a_fresh_database_and_serves_the_api() {
    let Some(admin) = store::testing::service_url("WEFT_TEST_DATABASE_URL") else { return };
    let Some(redis) = store::testing::service_url("WEFT_TEST_REDIS_URL") else { return };
    let db = store::testing::create_database(&admin).await.expect("database");
    let secret = "serve-test-secret-0123456789abcdef-0123456789";

    let mut child = Command::new(WEFT)
        .args(["serve", "--port", "0"])
        .env("WEFT_DATABASE_URL", &db)
        .env("WEFT_REDIS_URL", &redis)
        .env("WEFT_JWT_SECRET", secret)
        .env("WEFT_JWT_ISSUER", "https://issuer.serve.test")
        .env("WEFT_JWT_AUDIENCE", "weft")
        .env("WEFT_SECRETS_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
        .env("WEFT_FUNCTION_ARNS", format!(r#"{{"code": "{CODE_ARN}"}}"#))
        .env("RUST_LOG", "warn")
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn weft serve");
    let stderr = child.stderr.take().expect("stderr");
    let _server = Server(child);
    // The first line names the bound address.
    let mut line = String::new();
    BufReader::new(stderr).read_line(&mut line).expect("read");
    let base = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in `{line}`"))
        .to_owned();

    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let claims = json!({"sub": "dev", "tenant": "local", "role": "editor", "iss": "https://issuer.serve.test",
                        "aud": "weft", "exp": now + 600});
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()).expect("key"),
    )
    .expect("sign");
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("client");

    let health: Value = http.get(format!("{base}/healthz")).send().await.expect("healthz").json().await.expect("json");
    assert_eq!(health["status"], "ok");

    let graph = json!({"format": "weft/v1", "id": "hello", "name": "Hello",
        "nodes": [{"id": "start", "type": "start", "data": {}},
                  {"id": "twice", "type": "code", "data": {"expression": "2 * 21"}},
                  {"id": "done", "type": "end", "data": {}}],
        "edges": [{"id": "e1", "source": "start", "target": "twice"},
                  {"id": "e2", "source": "twice", "target": "done"}]});
    let created = http
        .post(format!("{base}/v1/workflows"))
        .bearer_auth(&token)
        .json(&json!({"graph": graph}))
        .send()
        .await
        .expect("create");
    assert_eq!(created.status().as_u16(), 201);
    let created: Value = created.json().await.expect("json");
    let id = created["id"].as_str().expect("id");

    let got: Value = http
        .get(format!("{base}/v1/workflows/{id}"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(got["graph"], graph);
    let published =
        http.post(format!("{base}/v1/workflows/{id}/versions")).bearer_auth(&token).send().await.expect("publish");
    assert_eq!(published.status().as_u16(), 201);
    let published: Value = published.json().await.expect("json");
    assert_eq!(published["version"], 1);

    // Published state machines invoke the functions WEFT_FUNCTION_ARNS names.
    let version: Value = http
        .get(format!("{base}/v1/workflows/{id}/versions/1"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("get version")
        .json()
        .await
        .expect("json");
    let functions: Vec<&str> = version["asl"]["States"]
        .as_object()
        .expect("states")
        .values()
        .filter_map(|s| s["Parameters"]["FunctionName"].as_str())
        .collect();
    assert_eq!(functions, [CODE_ARN], "{version}");
}

const CODE_ARN: &str = "arn:aws:lambda:us-east-1:000000000000:function:weft-code";
