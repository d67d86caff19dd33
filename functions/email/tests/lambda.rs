//! The real `fn-email` bootstrap under a Lambda Runtime API server on 127.0.0.1, sending to a
//! real SMTP server on 127.0.0.1, with the connection secret sealed in a real Postgres: it is
//! resolved for the tenant owning the execution ARN, and its password never shows.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::SmtpServer;
use lambda_glue::runtime_api::{Outcome, RuntimeApi};
use secrets::SecretsKey;
use serde_json::{Value, json};

const BOOTSTRAP: &str = env!("CARGO_BIN_EXE_fn-email");
const KEY_B64: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
/// Never connected: the secret store is opened lazily.
const UNUSED_DATABASE: &str = "postgres://weft@127.0.0.1:9/weft";
const PASSWORD: &str = "tenant-smtp-pw-7c41";
/// Generous: what comes back is the assertion, not how fast, on a loaded machine.
const WAIT: Duration = Duration::from_secs(60);

fn key() -> SecretsKey {
    let mut k = [0u8; 32];
    for (i, b) in k.iter_mut().enumerate() {
        *b = i as u8;
    }
    SecretsKey::new(&k)
}

fn send(arn: &str, connection: &str) -> Value {
    json!({"node": {"id": "notify", "type": "email"}, "execution": {"id": arn},
           "config": {"connection": connection, "from": "noreply@acme.example", "to": "ops@example.com",
                      "subject": "Deploy finished", "body": "All green."}})
}

#[tokio::test]
async fn the_lambda_sends_with_the_executions_tenant_secret() {
    let Some(admin) = store::testing::service_url("WEFT_TEST_DATABASE_URL") else { return };
    let (store, db) = store::testing::fresh_store(&admin).await.unwrap();
    let server = SmtpServer::start_with("auth", &["mailer", PASSWORD]);
    let wf_a = store::testing::published_workflow(&store, "acme").await.unwrap().id;
    let wf_b = store::testing::published_workflow(&store, "evil").await.unwrap().id;
    let good = format!("smtp://mailer:{PASSWORD}@127.0.0.1:{}", server.port);
    let wrong = format!("smtp://mailer:{PASSWORD}-not@127.0.0.1:{}", server.port);
    tenant_secrets::testing::store_secrets(store.pool(), &key(), "acme", &[("SMTP", &good), ("SMTP_OLD", &wrong)])
        .await
        .unwrap();
    let (_, arn_a) = store::testing::execution(&store, "acme", wf_a, false).await.unwrap();
    let (_, arn_b) = store::testing::execution(&store, "evil", wf_b, true).await.unwrap();

    let api = RuntimeApi::start().await.unwrap();
    let env = [("WEFT_DATABASE_URL", db.as_str()), ("WEFT_SECRETS_KEY", KEY_B64), ("WEFT_HTTP_ALLOW", "127.0.0.1")];
    let bootstrap = api.spawn(BOOTSTRAP, "email", &env).unwrap();

    // Tenant A: delivered with A's credentials.
    let a = api.invoke(send(&arn_a, "SMTP"), WAIT).await;
    let Some(Outcome::Response(out)) = &a else { panic!("expected a response, got {a:?}") };
    assert_eq!(out["accepted"], json!(["ops@example.com"]), "{out}");
    let messages = server.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["rcpt_tos"], json!(["ops@example.com"]));
    assert!(messages[0]["data"].as_str().unwrap().contains(out["message_id"].as_str().unwrap()));

    // A's other secret has a wrong password: Email.Auth, and the password is nowhere.
    let old = api.invoke(send(&arn_a, "SMTP_OLD"), WAIT).await;
    match &old {
        Some(Outcome::Error { error_type, error_message }) => {
            assert_eq!(error_type, "Email.Auth", "{error_message}");
            assert!(error_message.contains("535"), "{error_message}");
        }
        other => panic!("expected Email.Auth, got {other:?}"),
    }

    // Tenant B, same config: B has no SMTP secret.
    let b = api.invoke(send(&arn_b, "SMTP"), WAIT).await;
    match &b {
        Some(Outcome::Error { error_type, error_message }) => {
            assert_eq!(error_type, "Secret.NotFound");
            assert!(error_message.contains("SMTP"), "{error_message}");
        }
        other => panic!("expected Secret.NotFound, got {other:?}"),
    }
    // An ARN Weft never started has no tenant at all.
    let forged = format!("arn:aws:states:us-east-1:123456789012:execution:weft-{wf_a}:{}", uuid::Uuid::new_v4());
    let c = api.invoke(send(&forged, "SMTP"), WAIT).await;
    assert!(matches!(&c, Some(Outcome::Error { error_type, .. }) if error_type == "Secret.NotFound"), "{c:?}");
    assert_eq!(server.messages().len(), 1, "only tenant A's message was delivered");

    let exited = bootstrap.stop().await.unwrap();
    let logs = format!("{}{}", exited.stdout, exited.stderr);
    for shown in [format!("{a:?}"), format!("{old:?}"), format!("{b:?}"), format!("{c:?}"), logs] {
        assert!(!shown.contains(PASSWORD), "{shown}");
    }
}

#[tokio::test]
async fn the_bootstrap_fails_by_name_and_refuses_bad_settings() {
    let api = RuntimeApi::start().await.unwrap();
    let env = [("WEFT_DATABASE_URL", UNUSED_DATABASE), ("WEFT_SECRETS_KEY", KEY_B64)];
    let bootstrap = api.spawn(BOOTSTRAP, "email", &env).unwrap();
    // No connection named: Config.Invalid before any secret lookup.
    let missing = json!({"node": {"id": "notify", "type": "email"}, "execution": {"id": "arn:x"},
                         "config": {"from": "a@example.com", "to": "b@example.com", "body": "x"}});
    match api.invoke(missing, WAIT).await {
        Some(Outcome::Error { error_type, error_message }) => {
            assert_eq!(error_type, "Config.Invalid");
            assert!(error_message.contains("config.connection"), "{error_message}");
        }
        other => panic!("expected Config.Invalid, got {other:?}"),
    }
    assert_eq!(api.init_error(), None);
    bootstrap.stop().await.unwrap();

    let bad = [("WEFT_DATABASE_URL", UNUSED_DATABASE), ("WEFT_SECRETS_KEY", KEY_B64), ("WEFT_HTTP_ALLOW", "nope")];
    let stderr = api.init_failure(BOOTSTRAP, "email", &bad, WAIT).await.unwrap();
    assert!(stderr.contains("WEFT_HTTP_ALLOW: "), "{stderr}");
}
