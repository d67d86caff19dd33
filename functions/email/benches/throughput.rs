//! Messages per second through `EmailFunction::run` to a local aiosmtpd server that accepts and
//! discards (`tests/smtp_server.py sink`), sequentially and 8 at a time, next to a bare lettre
//! transport doing the same in the same run.
//!
//! `cargo bench -p fn-email --bench throughput` (env `EMAIL_BENCH_N`, default 500 per case).
//! What the figures measure is mostly the Python server (one process, one core): the comparison
//! is the point, not the absolute rate.

#![allow(clippy::unwrap_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use fn_email::EmailFunction;
use futures::StreamExt as _;
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor};
use serde_json::json;

fn report(name: &str, n: usize, took: Duration) {
    let per_s = n as f64 / took.as_secs_f64();
    let each = took.as_secs_f64() * 1e6 / n as f64;
    println!(
        "{name:<40} {n:>5} messages in {:>8.1} ms: {per_s:>8.0} msg/s ({each:>7.0} µs each)",
        took.as_secs_f64() * 1e3
    );
}

fn lettre_message(i: usize) -> Message {
    let from: Mailbox = "Weft <noreply@weft.example>".parse().unwrap();
    Message::builder()
        .from(from)
        .to("ann@example.com".parse().unwrap())
        .subject(format!("bench {i}"))
        .body(String::from("plain text body"))
        .unwrap()
}

fn main() {
    let n: usize = std::env::var("EMAIL_BENCH_N").ok().and_then(|v| v.parse().ok()).unwrap_or(500);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let server = common::SmtpServer::start("sink");
    let url = server.url();
    runtime.block_on(async move {
        let secrets = tenant_secrets::StaticSecrets::new([("SMTP".to_owned(), url.clone())].into());
        let guard = net_guard::Guard { allow: net_guard::parse_allow("127.0.0.1").unwrap() };
        let f = EmailFunction::new(guard).with_secrets(Arc::new(secrets));
        let event = |i: usize| {
            common::event(json!({"from": "Weft <noreply@weft.example>", "to": "ann@example.com",
                                 "subject": format!("bench {i}"), "body": "plain text body"}))
        };
        let bare: AsyncSmtpTransport<Tokio1Executor> =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1").port(server.port).build();
        // Warm both pools (connections opened, code paths paged in).
        for i in 0..20 {
            f.run(event(i)).await.unwrap();
            bare.send(lettre_message(i)).await.unwrap();
        }

        let start = Instant::now();
        for i in 0..n {
            f.run(event(i)).await.unwrap();
        }
        report("EmailFunction::run, sequential", n, start.elapsed());

        let start = Instant::now();
        for i in 0..n {
            bare.send(lettre_message(i)).await.unwrap();
        }
        report("bare lettre transport, sequential", n, start.elapsed());

        // The same, on one lettre connection over a socket with TCP_NODELAY: lettre writes the
        // message and its `.` terminator separately and does not set TCP_NODELAY, so Nagle's
        // algorithm holds the terminator until the server's delayed ACK (~40 ms on Linux).
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", server.port)).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let hello = lettre::transport::smtp::extension::ClientId::default();
        let mut conn =
            lettre::transport::smtp::client::AsyncSmtpConnection::connect_with_transport(Box::new(stream), &hello)
                .await
                .unwrap();
        let start = Instant::now();
        for i in 0..n {
            let m = lettre_message(i);
            conn.send(m.envelope(), &m.formatted()).await.unwrap();
        }
        report("lettre connection with TCP_NODELAY, seq.", n, start.elapsed());
        conn.quit().await.unwrap();

        let start = Instant::now();
        let ok = futures::stream::iter(0..n)
            .map(|i| {
                let f = f.clone();
                async move { f.run(event(i)).await }
            })
            .buffer_unordered(8)
            .filter(|r| std::future::ready(r.is_ok()))
            .count()
            .await;
        assert_eq!(ok, n);
        report("EmailFunction::run, concurrency 8", n, start.elapsed());

        let start = Instant::now();
        let ok = futures::stream::iter(0..n)
            .map(|i| {
                let bare = bare.clone();
                async move { bare.send(lettre_message(i)).await }
            })
            .buffer_unordered(8)
            .filter(|r| std::future::ready(r.is_ok()))
            .count()
            .await;
        assert_eq!(ok, n);
        report("bare lettre transport, concurrency 8", n, start.elapsed());
    });
    drop(server);
}
