//! fn-vector's test harness: a real milvus-lite server ([`MilvusLite`], `milvus.rs`), the
//! scripted embeddings server and the function under test.

#![allow(dead_code, clippy::unwrap_used)]

use fn_vector::{Settings, StaticTenant, TenantsByExecution, VectorFunction};
use model_client::Provider;
use model_client::testing::ScriptedServer;
use node_contract::{NodeError, NodeEvent};
use serde_json::{Value, json};

#[path = "milvus.rs"]
mod milvus_lite;
pub use milvus_lite::MilvusLite;

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
