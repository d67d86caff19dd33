//! StartExecution → SUCCEEDED throughput through `aws-sdk-sfn` against an in-process endpoint on
//! 127.0.0.1: N executions (default 1,000) started concurrently, each client task then polling
//! DescribeExecution until its execution ends. Prints executions/s and start-latency percentiles,
//! and checks that ListExecutions sees every execution exactly once.
//!
//!   cargo run --release -p sfn-server --example throughput -- [N] [postgres URL]
//!
//! With a Postgres URL (an admin URL; a fresh database is created) executions and histories are
//! stored there, otherwise in memory.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use aws_sdk_sfn::types::ExecutionStatus;
use sfn_server::{MemoryStore, PgStore, SfnState, SfnStore};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map(|a| a.parse()).transpose().context("N must be a number")?.unwrap_or(1000);
    let store: Arc<dyn SfnStore> = match args.next() {
        Some(admin) => {
            let url = migrations::testing::create_database(&admin).await?;
            let pg = PgStore::connect(&url, 20).await?;
            pg.migrate().await?;
            Arc::new(pg)
        }
        None => Arc::new(MemoryStore::new()),
    };
    let invoker = Arc::new(engine::task::NoInvoker);
    let state = SfnState::open(store, engine::EngineConfig::new(invoker)).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let credentials = sfn_server::Credentials::generate();
    let app = sfn_server::router(state, sfn_server::Verifier::new([credentials.clone()]));
    tokio::spawn(async move { axum::serve(listener, app).await });

    let client = sfn_server::sdk::local_client(&url, &credentials);
    let def = r#"{"StartAt": "A", "States": {"A": {"Type": "Pass", "Result": {"ok": true}, "ResultPath": "$.a", "Next": "B"}, "B": {"Type": "Pass", "End": true}}}"#;
    let arn = client
        .create_state_machine()
        .name("bench")
        .definition(def)
        .role_arn("arn:aws:iam::123456789012:role/weft")
        .send()
        .await?
        .state_machine_arn;

    let t0 = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let client = client.clone();
        let arn = arn.clone();
        tasks.spawn(async move {
            let s = Instant::now();
            let started = client
                .start_execution()
                .state_machine_arn(&arn)
                .name(format!("e{i}"))
                .input(format!(r#"{{"i": {i}}}"#))
                .send()
                .await?;
            let start_latency = s.elapsed();
            loop {
                let d = client.describe_execution().execution_arn(&started.execution_arn).send().await?;
                if d.status != ExecutionStatus::Running {
                    return anyhow::Ok((start_latency, d.status));
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
    }
    let mut latencies = Vec::with_capacity(n);
    let mut succeeded = 0;
    while let Some(r) = tasks.join_next().await {
        let (lat, status) = r??;
        latencies.push(lat);
        if status == ExecutionStatus::Succeeded {
            succeeded += 1;
        }
    }
    let elapsed = t0.elapsed();
    latencies.sort();
    let pct =
        |p: f64| latencies[((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1).min(latencies.len() - 1)];

    let mut listed = std::collections::HashSet::new();
    let mut total = 0;
    let mut token = None;
    loop {
        let page =
            client.list_executions().state_machine_arn(&arn).max_results(1000).set_next_token(token).send().await?;
        total += page.executions.len();
        listed.extend(page.executions.into_iter().map(|e| e.execution_arn));
        token = page.next_token;
        if token.is_none() {
            break;
        }
    }
    println!("executions: {n}, succeeded: {succeeded}, listed: {total} ({} distinct)", listed.len());
    println!(
        "wall time: {:.3} s, throughput: {:.0} executions/s",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64()
    );
    println!(
        "StartExecution latency: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        pct(0.5).as_secs_f64() * 1e3,
        pct(0.9).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        pct(1.0).as_secs_f64() * 1e3
    );
    anyhow::ensure!(
        succeeded == n && total == n && listed.len() == n,
        "some executions were lost, duplicated or failed"
    );
    Ok(())
}
