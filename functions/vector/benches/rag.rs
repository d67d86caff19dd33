//! RAG ingest and search through `fn-vector` and through `pymilvus`, side by side in one run, on
//! one milvus-lite server (127.0.0.1, a free port, a temp data dir).
//!
//! `cargo bench -p fn-vector --bench rag` (needs `milvus-lite` and python3 with `pymilvus`;
//! `BENCH_CHUNKS` (10000) and `BENCH_SEARCHES` (1000) scale it).
//!
//! Rows, in order:
//! 1. fn-vector upsert, the whole node (chunking, embeddings from the scripted OpenAI-compatible
//!    server on 127.0.0.1, upsert, stale-chunk deletes), 500 documents per call;
//! 2. `Store::upsert` of precomputed vectors (Milvus cost only, the same 512-row batches);
//! 3. pymilvus upsert of the same rows and vectors (512-row batches), and pymilvus doing the
//!    node's whole pipeline: the same texts embedded through the same server in batches of 64,
//!    500 documents per upsert (compared with row 1);
//! 4. fn-vector search with `query` (an embeddings request each), top_k 5, tenant filter;
//! 5. fn-vector search with a precomputed `vector` (Milvus cost plus the node's own work);
//! 6. pymilvus search with the same vectors and the same tenant filter, and with the query
//!    texts embedded first (compared with row 4).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use fn_vector::store::{Meta, Row, Store, chunk_id};
use fn_vector::{Settings, StaticTenant, VectorFunction};
use model_client::Provider;
use model_client::testing::hash_embedding;
use serde_json::{Value, json};

const DIM: usize = 128;
const TOP_K: usize = 5;
const TENANT: &str = "bench";
const ARN: &str = common::ARN_A;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn text(i: usize) -> String {
    const TOPICS: [&str; 8] = ["billing", "shipping", "returns", "accounts", "security", "pricing", "support", "api"];
    format!(
        "Document {i} explains {} for customers in region {} with reference code R{:05}.",
        TOPICS[i % TOPICS.len()],
        i % 17,
        i * 7919 % 100_000
    )
}

fn query(i: usize) -> String {
    format!("how does {} work in region {}", ["billing", "shipping", "returns", "api"][i % 4], i % 17)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

struct Line {
    what: &'static str,
    count: usize,
    total: Duration,
    latencies: Vec<Duration>,
}

impl Line {
    fn rate(&self) -> f64 {
        self.count as f64 / self.total.as_secs_f64()
    }

    fn print(&self, unit: &str, baseline: Option<&Line>) {
        let mut lat = self.latencies.clone();
        lat.sort();
        let (p50, p99) = if lat.is_empty() {
            ("-".to_owned(), "-".to_owned())
        } else {
            (
                format!("{:.2}", percentile(&lat, 0.5).as_secs_f64() * 1e3),
                format!("{:.2}", percentile(&lat, 0.99).as_secs_f64() * 1e3),
            )
        };
        let ratio = baseline.map_or(String::new(), |b| format!("  {:.2}× pymilvus", self.rate() / b.rate()));
        println!(
            "{:<46} {:>6} {unit} in {:>7.2} s = {:>9.1} {unit}/s  p50 {:>7} ms  p99 {:>7} ms{ratio}",
            self.what,
            self.count,
            self.total.as_secs_f64(),
            self.rate(),
            p50,
            p99
        );
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo test --benches` runs bench binaries with no `--bench`: nothing to measure then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let has_pymilvus = Command::new("python3").args(["-c", "import pymilvus"]).status().is_ok_and(|s| s.success());
    if !has_pymilvus {
        eprintln!("rag bench: python3 with pymilvus is needed (python3 -m pip install milvus-lite==3.2.2 pymilvus)");
        return;
    }
    let Some(milvus) = common::MilvusLite::start() else { return };
    let chunks = env_usize("BENCH_CHUNKS", 10_000);
    let searches = env_usize("BENCH_SEARCHES", 1_000);
    let models = common::embeddings(DIM).await;
    models.set_recording(false);
    let settings = Settings::new(milvus.url(), Provider::new(models.base_url()));
    let f = VectorFunction::new(settings.clone()).unwrap().with_tenants(std::sync::Arc::new(StaticTenant::new(TENANT)));
    println!(
        "milvus-lite 127.0.0.1:{}; {chunks} chunks of ~90 characters, {DIM} dimensions, {searches} searches, top_k {TOP_K}",
        milvus.port
    );

    // 1. The whole node.
    let per_call = 500;
    let mut lat = Vec::new();
    let start = Instant::now();
    for first in (0..chunks).step_by(per_call) {
        let docs: Vec<Value> = (first..(first + per_call).min(chunks))
            .map(|i| json!({"id": format!("d{i}"), "text": text(i), "metadata": {"n": i}}))
            .collect();
        let t = Instant::now();
        let out = f
            .run(common::event("vector_upsert", ARN, json!({"collection": "rag_fn", "documents": docs})))
            .await
            .unwrap();
        lat.push(t.elapsed());
        assert_eq!(out["documents"], out["chunks"]);
    }
    let fn_ingest = Line {
        what: "fn-vector vector_upsert (embed + upsert)",
        count: chunks,
        total: start.elapsed(),
        latencies: lat,
    };
    fn_ingest.print("chunks", None);

    // 2. Store::upsert, precomputed vectors.
    let vectors: Vec<Vec<f32>> = (0..chunks).map(|i| hash_embedding(&text(i), DIM)).collect();
    let store = Store::new(settings.clone());
    store.create("rag_store", &Meta { model: "scripted".into(), dim: DIM }).await.unwrap();
    let rows: Vec<Row> = (0..chunks)
        .map(|i| Row {
            doc_id: format!("d{i}"),
            chunk_index: 0,
            text: text(i),
            metadata: json!({"n": i}),
            vector: vectors[i].clone(),
        })
        .collect();
    let start = Instant::now();
    store.upsert("rag_store", TENANT, rows, &[]).await.unwrap();
    let store_ingest = Line {
        what: "fn-vector Store::upsert (precomputed vectors)",
        count: chunks,
        total: start.elapsed(),
        latencies: vec![],
    };
    store_ingest.print("chunks", None);

    // 3 + 6. pymilvus, same rows and query vectors.
    let query_vectors: Vec<Vec<f32>> = (0..searches).map(|i| hash_embedding(&query(i), DIM)).collect();
    let data = json!({
        "collection": "rag_py", "tenant": TENANT, "dim": DIM, "top_k": TOP_K,
        "rows": (0..chunks).map(|i| json!({"id": chunk_id(TENANT, &format!("d{i}"), 0), "doc_id": format!("d{i}"),
            "chunk_index": 0, "text": text(i), "metadata": {"n": i}, "vector": vectors[i]})).collect::<Vec<_>>(),
        "queries": query_vectors,
        "query_texts": (0..searches).map(query).collect::<Vec<_>>(),
        "per_call": per_call, "embed_batch": 64,
    });
    let data_path = std::env::temp_dir().join(format!("fn-vector-rag-{}.json", std::process::id()));
    std::fs::write(&data_path, serde_json::to_vec(&data).unwrap()).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/pymilvus_rag.py");
    let embeddings_url = format!("{}/embeddings", models.base_url());
    let out =
        Command::new("python3").arg(script).arg(milvus.url()).arg(&data_path).arg(embeddings_url).output().unwrap();
    let _ = std::fs::remove_file(&data_path);
    assert!(out.status.success(), "pymilvus script failed: {}", String::from_utf8_lossy(&out.stderr));
    let py: Value =
        serde_json::from_slice(out.stdout.split(|b| *b == b'\n').find(|l| l.starts_with(b"{")).unwrap()).unwrap();
    let py_ingest = Line {
        what: "pymilvus upsert (precomputed vectors)",
        count: chunks,
        total: Duration::from_secs_f64(py["ingest_seconds"].as_f64().unwrap()),
        latencies: vec![],
    };
    let seconds = |key: &str| {
        py[key].as_array().unwrap().iter().map(|l| Duration::from_secs_f64(l.as_f64().unwrap())).collect::<Vec<_>>()
    };
    let py_pipeline = Line {
        what: "pymilvus embed + upsert + stale delete",
        count: chunks,
        total: Duration::from_secs_f64(py["pipeline_seconds"].as_f64().unwrap()),
        latencies: seconds("pipeline_latencies"),
    };
    let py_query = Line {
        what: "pymilvus search (query: embed + search)",
        count: searches,
        total: Duration::from_secs_f64(py["query_seconds"].as_f64().unwrap()),
        latencies: seconds("query_latencies"),
    };
    let py_search = Line {
        what: "pymilvus search (vector)",
        count: searches,
        total: Duration::from_secs_f64(py["search_seconds"].as_f64().unwrap()),
        latencies: seconds("latencies"),
    };

    // 4. Search with a query text.
    let mut lat = Vec::with_capacity(searches);
    let start = Instant::now();
    for i in 0..searches {
        let t = Instant::now();
        let out = f
            .run(common::event(
                "vector_search",
                ARN,
                json!({"collection": "rag_fn", "query": query(i), "top_k": TOP_K}),
            ))
            .await
            .unwrap();
        lat.push(t.elapsed());
        assert_eq!(out["matches"].as_array().unwrap().len(), TOP_K);
    }
    let fn_query = Line {
        what: "fn-vector vector_search (query: embed + search)",
        count: searches,
        total: start.elapsed(),
        latencies: lat,
    };
    fn_query.print("searches", None);

    // 5. Search with a precomputed vector.
    let mut lat = Vec::with_capacity(searches);
    let start = Instant::now();
    for v in &query_vectors {
        let t = Instant::now();
        let out = f
            .run(common::event("vector_search", ARN, json!({"collection": "rag_fn", "vector": v, "top_k": TOP_K})))
            .await
            .unwrap();
        lat.push(t.elapsed());
        assert_eq!(out["matches"].as_array().unwrap().len(), TOP_K);
    }
    let fn_vector =
        Line { what: "fn-vector vector_search (vector)", count: searches, total: start.elapsed(), latencies: lat };

    println!("\nside by side (each fn-vector row against the pymilvus row doing the same work):");
    fn_ingest.print("chunks", Some(&py_pipeline));
    py_pipeline.print("chunks", None);
    store_ingest.print("chunks", Some(&py_ingest));
    py_ingest.print("chunks", None);
    fn_query.print("searches", Some(&py_query));
    py_query.print("searches", None);
    fn_vector.print("searches", Some(&py_search));
    py_search.print("searches", None);
}
