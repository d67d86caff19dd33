//! `EmailFunction::run` against a real SMTP server on 127.0.0.1 (aiosmtpd, `smtp_server.py`):
//! what the server receives, errors by their stable names, the address guard, header injection,
//! and the SMTP password never showing.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::{SmtpServer, decode_words, event, header, headers};
use fn_email::EmailFunction;
use net_guard::{Guard, parse_allow};
use serde_json::{Value, json};
use tenant_secrets::StaticSecrets;

fn loopback_allowed() -> Guard {
    Guard { allow: parse_allow("127.0.0.1").unwrap() }
}

fn function(guard: Guard, url: &str) -> EmailFunction {
    let secrets = StaticSecrets::new([("SMTP".to_owned(), url.to_owned())].into());
    EmailFunction::new(guard).with_secrets(Arc::new(secrets))
}

fn basic(extra: Value) -> Value {
    let mut config = json!({"from": "Weft <noreply@weft.example>", "to": "ann@example.com",
                            "subject": "Hello", "body": "plain text"});
    for (k, v) in extra.as_object().unwrap() {
        config[k] = v.clone();
    }
    config
}

#[tokio::test]
async fn delivers_headers_bodies_and_envelope() {
    let server = SmtpServer::start("store");
    let f = function(loopback_allowed(), &server.url());
    let out = f
        .run(event(json!({
            "from": "Weft Bot <bot@weft.example>",
            "to": ["Ann <ann@example.com>", "bob@example.com"],
            "cc": "carol@example.com",
            "bcc": ["dave@example.com"],
            "reply_to": "support@weft.example",
            "subject": "Report ready: 3 items, naïve café",
            "body": "The report is ready.",
            "html": "<p>The report is <b>ready</b>.</p>",
        })))
        .await
        .unwrap();

    let message_id = out["message_id"].as_str().unwrap();
    assert!(message_id.starts_with('<') && message_id.ends_with("@weft.example>"), "{out}");
    assert_eq!(out["accepted"], json!(["ann@example.com", "bob@example.com", "carol@example.com", "dave@example.com"]));

    let messages = server.messages();
    assert_eq!(messages.len(), 1, "{messages:?}");
    let m = &messages[0];
    assert_eq!(m["mail_from"], "bot@weft.example");
    assert_eq!(m["rcpt_tos"], json!(["ann@example.com", "bob@example.com", "carol@example.com", "dave@example.com"]));
    let raw = m["data"].as_str().unwrap();
    let h = headers(raw);
    assert_eq!(header(&h, "from"), Some("\"Weft Bot\" <bot@weft.example>"));
    assert_eq!(header(&h, "to"), Some("Ann <ann@example.com>, bob@example.com"));
    assert_eq!(header(&h, "cc"), Some("carol@example.com"));
    assert_eq!(header(&h, "reply-to"), Some("support@weft.example"));
    assert_eq!(header(&h, "message-id"), Some(message_id));
    assert_eq!(header(&h, "bcc"), None, "no Bcc header: {raw}");
    assert!(!raw.contains("dave@example.com"), "the bcc recipient is only in the envelope: {raw}");
    // Non-ASCII words are RFC 2047 encoded.
    assert_eq!(decode_words(header(&h, "subject").unwrap()), "Report ready: 3 items, naïve café");
    assert!(header(&h, "content-type").unwrap().starts_with("multipart/alternative"), "{raw}");
    assert!(raw.contains("Content-Type: text/plain") && raw.contains("Content-Type: text/html"), "{raw}");
    assert!(raw.contains("The report is ready."), "{raw}");
    assert!(raw.contains("<p>The report is <b>ready</b>.</p>"), "{raw}");
}

#[tokio::test]
async fn text_only_and_html_only_are_single_part() {
    let server = SmtpServer::start("store");
    let f = function(loopback_allowed(), &server.url());
    f.run(event(basic(json!({})))).await.unwrap();
    f.run(event(json!({"from": "a@weft.example", "to": "b@example.com", "html": "<i>hi</i>"}))).await.unwrap();
    let messages = server.messages();
    assert_eq!(messages.len(), 2);
    let text = messages[0]["data"].as_str().unwrap();
    let h = headers(text);
    assert!(header(&h, "content-type").unwrap().starts_with("text/plain"), "{text}");
    assert_eq!(header(&h, "subject"), Some("Hello"));
    assert!(text.contains("plain text"));
    let html = messages[1]["data"].as_str().unwrap();
    assert!(header(&headers(html), "content-type").unwrap().starts_with("text/html"), "{html}");
    assert!(html.contains("<i>hi</i>"));
    // Both sends went through one cached transport (one pool).
    assert_eq!(f.cached_transports(), 1);

    // Only a bcc recipient: delivered to it, and no recipient header names it.
    let out = f.run(event(json!({"from": "a@weft.example", "bcc": "hidden@example.com", "body": "x"}))).await.unwrap();
    assert_eq!(out["accepted"], json!(["hidden@example.com"]));
    let m = &server.messages()[2];
    assert_eq!(m["rcpt_tos"], json!(["hidden@example.com"]));
    assert!(!m["data"].as_str().unwrap().contains("hidden@example.com"), "{m}");
}

#[tokio::test]
async fn recipient_rejection_is_email_rejected_with_the_code() {
    let server = SmtpServer::start("reject-rcpt");
    let f = function(loopback_allowed(), &server.url());
    let e = f.run(event(basic(json!({})))).await.unwrap_err();
    assert_eq!(e.name, "Email.Rejected", "{e:?}");
    assert!(e.message.contains("550") && e.message.contains("no such user"), "{e:?}");
    assert!(e.message.contains(&format!("127.0.0.1:{}", server.port)), "{e:?}");
}

#[tokio::test]
async fn message_rejection_is_email_rejected_with_the_code() {
    let server = SmtpServer::start("reject-data");
    let f = function(loopback_allowed(), &server.url());
    let e = f.run(event(basic(json!({})))).await.unwrap_err();
    assert_eq!(e.name, "Email.Rejected", "{e:?}");
    assert!(e.message.contains("550") && e.message.contains("rejected as spam"), "{e:?}");
    // The connection that saw the rejection is not reused in a bad state: a second send works
    // the same way.
    let again = f.run(event(basic(json!({})))).await.unwrap_err();
    assert_eq!(again.name, "Email.Rejected", "{again:?}");
}

#[tokio::test]
async fn authentication_and_a_wrong_password_that_never_shows() {
    let server = SmtpServer::start_with("auth", &["mailer", "c0rrect-h0rse"]);
    let port = server.port;
    let good = function(loopback_allowed(), &format!("smtp://mailer:c0rrect-h0rse@127.0.0.1:{port}"));
    let out = good.run(event(basic(json!({})))).await.unwrap();
    assert_eq!(out["accepted"], json!(["ann@example.com"]));
    assert_eq!(server.messages().len(), 1);

    // A password with characters that must be percent-encoded in the URL, wrong.
    let wrong_password = "wr0ng/p@ss w0rd";
    let url = format!("smtp://mailer:wr0ng%2Fp%40ss%20w0rd@127.0.0.1:{port}");
    let bad = function(loopback_allowed(), &url);
    let e = bad.run(event(basic(json!({})))).await.unwrap_err();
    assert_eq!(e.name, "Email.Auth", "{e:?}");
    assert!(e.message.contains("535"), "{e:?}");
    let shown = format!("{e:?} {e}");
    for needle in [wrong_password, "wr0ng%2Fp%40ss%20w0rd", "wr0ng"] {
        assert!(!shown.contains(needle), "{needle} in {shown}");
    }
    assert_eq!(server.messages().len(), 1, "nothing more was delivered");

    // No credentials at all against a server that requires them.
    let none = function(loopback_allowed(), &server.url());
    let e = none.run(event(basic(json!({})))).await.unwrap_err();
    assert_eq!(e.name, "Email.Auth", "{e:?}");
    assert!(e.message.contains("530"), "{e:?}");
}

#[tokio::test]
async fn nothing_listening_is_email_connect() {
    // A port that was just free: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let f = function(loopback_allowed(), &format!("smtp://user:s3cret-pw@127.0.0.1:{port}"));
    let e = f.run(event(basic(json!({})))).await.unwrap_err();
    assert_eq!(e.name, "Email.Connect", "{e:?}");
    assert!(e.message.contains(&format!("127.0.0.1:{port}")), "{e:?}");
    assert!(!e.message.contains("s3cret-pw"), "{e:?}");
}

#[tokio::test]
async fn an_unresolvable_host_is_email_connect() {
    let f = function(loopback_allowed(), "smtp://no-such-host.invalid:25");
    let e = f.run(event(basic(json!({})))).await.unwrap_err();
    assert_eq!(e.name, "Email.Connect", "{e:?}");
    assert!(e.message.contains("no-such-host.invalid"), "{e:?}");
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_as_email_connect() {
    // Accepts TCP connections and never says a word (no SMTP greeting).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            open.push(s);
        }
    });
    let f = function(loopback_allowed(), &format!("smtp://127.0.0.1:{port}"));
    let e = f.run(event(basic(json!({"timeout_seconds": 0.5})))).await.unwrap_err();
    assert_eq!(e.name, "Email.Connect", "{e:?}");
    held.abort();
}

#[tokio::test]
async fn the_guard_refuses_loopback_without_connecting() {
    let server = SmtpServer::start("store");
    for url in [server.url(), format!("smtp://localhost:{}", server.port), format!("smtp://[::1]:{}", server.port)] {
        let f = function(Guard::default(), &url);
        let e = f.run(event(basic(json!({})))).await.unwrap_err();
        assert_eq!(e.name, "Email.ForbiddenAddress", "{url}: {e:?}");
        assert!(e.message.contains("WEFT_HTTP_ALLOW"), "{e:?}");
    }
    // Metadata stays refused even with loopback allow-listed.
    let f = function(loopback_allowed(), "smtp://169.254.169.254:25");
    assert_eq!(f.run(event(basic(json!({})))).await.unwrap_err().name, "Email.ForbiddenAddress");
    assert_eq!(server.connections(), 0, "no connection was attempted");
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn header_injection_is_refused_before_connecting() {
    let server = SmtpServer::start("store");
    let f = function(loopback_allowed(), &server.url());
    let cases = [
        ("subject", json!({"subject": "Hi\r\nBcc: victim@example.com"})),
        ("subject", json!({"subject": "Hi\nX-Evil: 1"})),
        ("to", json!({"to": "ann@example.com\r\nBcc: victim@example.com"})),
        ("cc[1]", json!({"cc": ["ok@example.com", "x@example.com\nBcc: victim@example.com"]})),
        ("bcc", json!({"bcc": "a@example.com\r"})),
        ("reply_to", json!({"reply_to": "Evil\r\n <r@example.com>"})),
        ("from", json!({"from": "Weft\r\nBcc: victim@example.com <noreply@weft.example>"})),
    ];
    for (field, extra) in cases {
        let e = f.run(event(basic(extra.clone()))).await.unwrap_err();
        assert_eq!(e.name, "Config.Invalid", "{extra}: {e:?}");
        assert!(e.message.starts_with(&format!("config.{field}:")), "{extra}: {e:?}");
        assert!(e.message.contains("line break"), "{e:?}");
    }
    assert!(server.messages().is_empty());
    assert_eq!(server.connections(), 0, "nothing was sent, no connection opened");
}

#[tokio::test]
async fn bad_config_is_config_invalid_naming_the_field() {
    let server = SmtpServer::start("store");
    let f = function(loopback_allowed(), &server.url());
    let cases = [
        (json!({"to": "not-an-address"}), "config.to:", Some("not-an-address")),
        (json!({"to": ["ann@example.com", "bob@@example.com"]}), "config.to[1]:", Some("bob@@example.com")),
        (json!({"to": "ann@example.com, eve@example.com"}), "config.to:", Some("eve@example.com")),
        (json!({"cc": 7}), "config.cc:", None),
        (json!({"from": "nobody"}), "config.from:", Some("nobody")),
        (json!({"from": null}), "config.from:", None),
        (json!({"to": [], "cc": null}), "config.to:", Some("at least one recipient")),
        (json!({"body": null}), "config.body:", None),
        (json!({"subject": ["x"]}), "config.subject:", None),
        (json!({"timeout_seconds": 0}), "config.timeout_seconds:", None),
        (json!({"timeout_seconds": "10"}), "config.timeout_seconds:", None),
        (json!({"connection": "not a name"}), "config.connection:", None),
    ];
    for (extra, prefix, mentions) in cases {
        let e = f.run(event(basic(extra.clone()))).await.unwrap_err();
        assert_eq!(e.name, "Config.Invalid", "{extra}: {e:?}");
        assert!(e.message.starts_with(prefix), "{extra}: {e:?}");
        if let Some(m) = mentions {
            assert!(e.message.contains(m), "{extra}: {e:?}");
        }
    }
    let too_many: Vec<String> = (0..101).map(|i| format!("r{i}@example.com")).collect();
    let e = f.run(event(basic(json!({"to": too_many})))).await.unwrap_err();
    assert_eq!(e.name, "Config.Invalid", "{e:?}");
    assert!(server.messages().is_empty());
    assert_eq!(server.connections(), 0);
}

#[tokio::test]
async fn a_bad_connection_secret_is_config_invalid_without_its_value() {
    for url in
        ["http://u:hunter2-pw@mail.example.com", "smtp://u:hunter2-pw@mail.example.com?tls=sometimes", "hunter2-pw"]
    {
        let f = function(loopback_allowed(), url);
        let e = f.run(event(basic(json!({})))).await.unwrap_err();
        assert_eq!(e.name, "Config.Invalid", "{url}: {e:?}");
        assert!(e.message.starts_with("config.connection:"), "{e:?}");
        assert!(!e.message.contains("hunter2"), "{e:?}");
    }
}

#[tokio::test]
async fn a_missing_secret_is_secret_not_found() {
    let f = function(loopback_allowed(), "smtp://127.0.0.1:1");
    let e = f.run(event(basic(json!({"connection": "OTHER"})))).await.unwrap_err();
    assert_eq!(e.name, "Secret.NotFound", "{e:?}");
    assert!(e.message.contains("OTHER"), "{e:?}");
    let e = f
        .run(event(json!({"from": "a@weft.example", "to": "b@example.com", "body": "x", "connection": null})))
        .await
        .unwrap_err();
    assert_eq!(e.name, "Config.Invalid", "{e:?}");
}

#[tokio::test]
async fn concurrent_sends_share_the_pool() {
    let server = SmtpServer::start("store");
    let f = function(loopback_allowed(), &server.url());
    let sends = (0..20).map(|i| {
        let f = f.clone();
        async move { f.run(event(basic(json!({"subject": format!("n{i}")})))).await }
    });
    let outs = futures::future::join_all(sends).await;
    let ids: std::collections::BTreeSet<String> =
        outs.into_iter().map(|o| o.unwrap()["message_id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids.len(), 20, "every message has its own Message-ID");
    assert_eq!(server.messages().len(), 20);
    assert_eq!(f.cached_transports(), 1);
}

#[tokio::test]
async fn sequential_sends_reuse_pooled_connections() {
    let server = SmtpServer::start("store");
    let f = function(loopback_allowed(), &server.url());
    for _ in 0..10 {
        f.run(event(basic(json!({})))).await.unwrap();
    }
    assert_eq!(server.messages().len(), 10);
    // lettre parks a connection on a task of its own after each send, so an occasional second
    // one may open; ten would mean no reuse at all.
    assert!(server.connections() < 10, "{} connections for 10 sends", server.connections());
}

#[tokio::test]
async fn starttls_verifies_the_urls_host_name_on_the_pinned_address() {
    let server = SmtpServer::start("starttls");
    let port = server.port;
    // The certificate names `localhost` only. The transport connects to the address the guard
    // checked (127.0.0.1), and TLS still verifies against the URL's host name.
    let f = function(loopback_allowed(), &format!("smtp://localhost:{port}?tls=required"))
        .with_root_certificate(&server.ca_pem())
        .unwrap();
    let out = f.run(event(basic(json!({})))).await.unwrap();
    assert_eq!(out["accepted"], json!(["ann@example.com"]));
    assert_eq!(server.messages().len(), 1);

    // The same server by IP: the certificate does not name 127.0.0.1, so TLS fails.
    let by_ip = function(loopback_allowed(), &format!("smtp://127.0.0.1:{port}?tls=required"))
        .with_root_certificate(&server.ca_pem())
        .unwrap();
    let e = by_ip.run(event(basic(json!({})))).await.unwrap_err();
    assert_eq!(e.name, "Email.Connect", "{e:?}");
    // And a CA the function does not trust: refused too.
    let untrusted = function(loopback_allowed(), &format!("smtp://localhost:{port}?tls=required"));
    let e = untrusted.run(event(basic(json!({})))).await.unwrap_err();
    assert_eq!(e.name, "Email.Connect", "{e:?}");
    // Without TLS the server refuses the mail (it requires STARTTLS): its 530, not an Auth error.
    let plain = function(loopback_allowed(), &format!("smtp://localhost:{port}"));
    let e = plain.run(event(basic(json!({})))).await.unwrap_err();
    assert_eq!(e.name, "Email.Rejected", "{e:?}");
    assert!(e.message.contains("530") && e.message.contains("STARTTLS"), "{e:?}");
    assert_eq!(server.messages().len(), 1, "only the verified send was delivered");
}

#[tokio::test]
async fn implicit_tls_smtps() {
    let server = SmtpServer::start("smtps");
    let f = function(loopback_allowed(), &format!("smtps://localhost:{}", server.port))
        .with_root_certificate(&server.ca_pem())
        .unwrap();
    let out = f.run(event(basic(json!({"to": ["x@example.com"]})))).await.unwrap();
    assert_eq!(out["accepted"], json!(["x@example.com"]));
    let messages = server.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["rcpt_tos"], json!(["x@example.com"]));
}
