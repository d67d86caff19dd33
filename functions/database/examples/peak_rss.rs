//! Peak memory of `Database.TooManyRows` on a 10-million-row query: the function's resident set
//! high-water mark (VmHWM) before and after, which stays flat because the result is read row by
//! row and abandoned at `max_rows + 1`.
//!
//! `WEFT_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:55432/weft cargo run --release -p fn-database --example peak_rss`

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Instant;

use fn_database::{DatabaseFunction, Settings};
use node_contract::NodeEvent;
use serde_json::json;

fn vm_hwm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::main]
async fn main() {
    let Some(url) = ["WEFT_BENCH_DATABASE_URL", "WEFT_TEST_DATABASE_URL"].iter().find_map(|v| std::env::var(v).ok())
    else {
        eprintln!("peak_rss: set WEFT_TEST_DATABASE_URL (or WEFT_BENCH_DATABASE_URL) to run it; skipped");
        return;
    };
    let secrets = tenant_secrets::StaticSecrets::new([("DB".to_owned(), url)].into());
    let f = DatabaseFunction::new(Settings::allowing(&["127.0.0.1", "::1"]).unwrap()).with_secrets(Arc::new(secrets));
    let event = |query: &str, max_rows: u64| {
        NodeEvent::from_value(json!({"node": {"id": "q", "type": "database"}, "execution": {"id": "arn:bench"},
            "config": {"connection": "DB", "query": query, "max_rows": max_rows}}))
        .unwrap()
    };
    // Warm: connection open, statement machinery allocated.
    f.run(event("SELECT 1 AS one", 1)).await.unwrap();
    let before = vm_hwm_kib();
    for max_rows in [1_000u64, 10_000] {
        let start = Instant::now();
        let e = f.run(event("SELECT generate_series(1, 10000000) AS n", max_rows)).await.unwrap_err();
        assert_eq!(e.name, "Database.TooManyRows");
        println!("max_rows {max_rows}: {} in {:?}, VmHWM now {} KiB", e.name, start.elapsed(), vm_hwm_kib());
    }
    let full = f.run(event("SELECT generate_series(1, 10000) AS n", 10_000)).await.unwrap();
    println!("10,000 rows returned: {} rows, VmHWM now {} KiB", full["row_count"], vm_hwm_kib());
    let after = vm_hwm_kib();
    println!("VmHWM before {before} KiB, after {after} KiB, growth {} KiB", after.saturating_sub(before));
}
