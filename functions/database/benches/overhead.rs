//! Per-call overhead of `DatabaseFunction::run` over plain sqlx, side by side in one run:
//! 1,000 single-row queries (`SELECT $1::int8 AS n`) each way, on a warm connection.
//!
//! - `sqlx pool`: `sqlx::query(..).bind(i).fetch_one(&pool)`, one round trip;
//! - `sqlx pool + tx`: the same in the transaction the function runs every statement in
//!   (`BEGIN; SET LOCAL statement_timeout` and `COMMIT`: two more round trips);
//! - `DatabaseFunction::run`: secret resolution, config parsing, the address guard, the pool,
//!   the transaction, decoding to JSON and scrubbing.
//!
//! `WEFT_BENCH_DATABASE_URL` (or `WEFT_TEST_DATABASE_URL`) names the database; skipped when unset.
//! `cargo bench -p fn-database --bench overhead`

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use fn_database::{DatabaseFunction, Settings};
use node_contract::NodeEvent;
use serde_json::json;
use sqlx::{Connection as _, Row as _};

const CALLS: usize = 1_000;
const ROUNDS: usize = 5;

fn per_call(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6 / CALLS as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let Some(url) = ["WEFT_BENCH_DATABASE_URL", "WEFT_TEST_DATABASE_URL"].iter().find_map(|v| std::env::var(v).ok())
    else {
        eprintln!("overhead: set WEFT_BENCH_DATABASE_URL or WEFT_TEST_DATABASE_URL to run this benchmark; skipped");
        return;
    };
    let pool =
        sqlx::postgres::PgPoolOptions::new().max_connections(1).test_before_acquire(false).connect(&url).await.unwrap();
    let secrets = tenant_secrets::StaticSecrets::new([("DB".to_owned(), url.clone())].into());
    let f = DatabaseFunction::new(Settings::allowing(&["127.0.0.1", "::1"]).unwrap()).with_secrets(Arc::new(secrets));
    let event = |i: usize| {
        NodeEvent::from_value(json!({"node": {"id": "q", "type": "database"}, "execution": {"id": "arn:bench"},
            "config": {"connection": "DB", "query": "SELECT $1::int8 AS n", "params": [i]}}))
        .unwrap()
    };

    let direct = |n: usize| {
        let pool = pool.clone();
        async move {
            let start = Instant::now();
            for i in 0..n {
                let row = sqlx::query("SELECT $1::int8 AS n").bind(i as i64).fetch_one(&pool).await.unwrap();
                assert_eq!(row.get::<i64, _>(0), i as i64);
            }
            start.elapsed()
        }
    };
    let in_tx = |n: usize| {
        let pool = pool.clone();
        async move {
            let mut conn = pool.acquire().await.unwrap();
            let start = Instant::now();
            for i in 0..n {
                let mut tx = conn.begin_with("BEGIN; SET LOCAL statement_timeout = 30000").await.unwrap();
                let row = sqlx::query("SELECT $1::int8 AS n").bind(i as i64).fetch_one(&mut *tx).await.unwrap();
                assert_eq!(row.get::<i64, _>(0), i as i64);
                tx.commit().await.unwrap();
            }
            start.elapsed()
        }
    };
    let function = |n: usize| {
        let f = f.clone();
        async move {
            let start = Instant::now();
            for i in 0..n {
                let out = f.run(event(i)).await.unwrap();
                assert_eq!(out["rows"][0]["n"], i);
            }
            start.elapsed()
        }
    };

    // Warm up: connections open, statements prepared.
    direct(100).await;
    in_tx(100).await;
    function(100).await;

    let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        a.push(per_call(direct(CALLS).await));
        b.push(per_call(in_tx(CALLS).await));
        c.push(per_call(function(CALLS).await));
    }
    let (a, b, c) = (median(a), median(b), median(c));
    println!("{CALLS} single-row queries per round, median of {ROUNDS} rounds, µs per call:");
    println!("  sqlx pool                 {a:8.1}");
    println!("  sqlx pool + transaction   {b:8.1}");
    println!("  DatabaseFunction::run     {c:8.1}");
    println!("overhead of run over sqlx pool:          {:8.1} µs per call", c - a);
    println!("overhead of run over sqlx + transaction: {:8.1} µs per call", c - b);
}
