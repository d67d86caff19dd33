//! A real milvus-lite server for tests: `milvus-lite server --data-dir <temp> --host 127.0.0.1
//! --port <free port>`, killed (and its data removed) on drop. `pip install milvus-lite==3.2.2
//! pymilvus` provides it; without it tests skip (fail under `WEFT_TEST_STRICT=1`).

#![allow(dead_code, clippy::unwrap_used)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use fn_vector::{Settings, StaticTenant, TenantsByExecution, VectorFunction};
use model_client::Provider;
use model_client::testing::ScriptedServer;
use node_contract::{NodeError, NodeEvent};
use serde_json::{Value, json};

pub struct MilvusLite {
    child: Child,
    dir: PathBuf,
    pub port: u16,
}

impl MilvusLite {
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Starts a server, or skips (returns `None`) when `milvus-lite` is not installed.
    pub fn start() -> Option<Self> {
        static N: AtomicUsize = AtomicUsize::new(0);
        let installed = Command::new("milvus-lite")
            .arg("--help")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !installed {
            test_skip::skip("milvus-lite is not installed (python3 -m pip install milvus-lite==3.2.2 pymilvus)");
            return None;
        }
        let dir = std::env::temp_dir().join(format!(
            "fn-vector-milvus-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        // A free port: bind, read it, release it. Another process could take it in between; the
        // start below would then fail loudly, not silently use someone else's server.
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = std::fs::File::create(dir.join("server.log")).unwrap();
        let child = Command::new("milvus-lite")
            .args(["server", "--data-dir"])
            .arg(dir.join("data"))
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut server = Self { child, dir, port };
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                let log = std::fs::read_to_string(server.dir.join("server.log")).unwrap_or_default();
                panic!("milvus-lite exited ({status}) before listening:\n{log}");
            }
            let log = std::fs::read_to_string(server.dir.join("server.log")).unwrap_or_default();
            if log.contains("listening") && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(server);
            }
            assert!(Instant::now() < deadline, "milvus-lite did not listen within 120 s:\n{log}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for MilvusLite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A scripted embeddings server of `dim` dimensions.
pub async fn embeddings(dim: usize) -> ScriptedServer {
    let server = ScriptedServer::start().await;
    server.set_embedding_dim(dim);
    server
}

pub fn function(milvus_url: &str, models: &ScriptedServer, tenant: &str) -> VectorFunction {
    let settings = Settings::new(milvus_url, Provider::new(models.base_url()));
    VectorFunction::new(settings).unwrap().with_tenants(std::sync::Arc::new(StaticTenant::new(tenant)))
}

pub const ARN_A: &str = "arn:aws:states:us-east-1:000000000000:execution:wf:00000000-0000-0000-0000-00000000000a";
pub const ARN_B: &str = "arn:aws:states:us-east-1:000000000000:execution:wf:00000000-0000-0000-0000-00000000000b";

/// Tenant `a` for [`ARN_A`], `b` for [`ARN_B`].
pub fn two_tenants(milvus_url: &str, models: &ScriptedServer) -> VectorFunction {
    let settings = Settings::new(milvus_url, Provider::new(models.base_url()));
    VectorFunction::new(settings)
        .unwrap()
        .with_tenants(std::sync::Arc::new(TenantsByExecution::new([(ARN_A, "a"), (ARN_B, "b")])))
}

pub fn event(node_type: &str, arn: &str, config: Value) -> NodeEvent {
    serde_json::from_value(json!({"node": {"id": "n", "type": node_type}, "execution": {"id": arn}, "config": config}))
        .unwrap()
}

pub async fn upsert(f: &VectorFunction, arn: &str, config: Value) -> Result<Value, NodeError> {
    f.run(event("vector_upsert", arn, config)).await
}

pub async fn search(f: &VectorFunction, arn: &str, config: Value) -> Result<Value, NodeError> {
    f.run(event("vector_search", arn, config)).await
}

/// Rows in `collection` (all tenants), counted by Milvus itself.
pub async fn count(milvus_url: &str, collection: &str) -> i64 {
    use milvus::v2::prelude::*;
    let config = ConnectConfig::new().uri(milvus_url).telemetry(TelemetryConfig::new().enabled(false));
    let client = ClientV2::new(&config).await.unwrap();
    let response = client
        .query(
            QueryRequest::builder()
                .collection_name(collection)
                .filter("")
                .output_fields(["count(*)"])
                .consistency_level(ConsistencyLevel::Strong)
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    let row = response.results().rows().unwrap().next().unwrap();
    row.get_i64("count(*)").unwrap()
}
