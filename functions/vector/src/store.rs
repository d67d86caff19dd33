//! Milvus: the collection shape, its recorded embedding model, writes and searches, and how SDK
//! errors map to the function's error names.
//!
//! A collection Weft creates has the fields `id` (Int64 primary key, [`chunk_id`]), `tenant`,
//! `doc_id` (VarChar), `chunk_index` (Int64), `text` (VarChar), `metadata` (JSON) and `vector`
//! (FloatVector), an HNSW/COSINE index on `vector`, no dynamic field, and two collection
//! properties recording what its vectors are: `weft.embedding_model` and `weft.embedding_dim`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use milvus::v2::prelude::*;
// The prelude has its own `Result`.
use node_contract::NodeError;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use std::result::Result;
use tokio::sync::OnceCell;

use crate::error_names;
use crate::settings::Settings;

/// The collection property holding the embedding model.
pub const MODEL_PROPERTY: &str = "weft.embedding_model";
/// The collection property holding the vectors' dimension.
pub const DIM_PROPERTY: &str = "weft.embedding_dim";
/// The longest `tenant` value (bytes).
pub const MAX_TENANT_BYTES: u32 = 256;
/// The longest `doc_id` (bytes).
pub const MAX_DOC_ID_BYTES: u32 = 512;
/// The longest chunk text (bytes): Milvus' VarChar limit.
pub const MAX_TEXT_BYTES: u32 = 65_535;
/// The largest dimension accepted (Milvus' default limit).
pub const MAX_DIM: usize = 32_768;
/// Milvus' "collection not found" error code.
const COLLECTION_NOT_FOUND: i32 = 100;
/// Rows per upsert request (keeps each gRPC message far below Milvus' 64 MiB limit).
const UPSERT_ROWS: usize = 512;

/// What a collection's vectors are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    pub model: String,
    pub dim: usize,
}

/// One chunk to write.
#[derive(Debug, Clone)]
pub struct Row {
    pub doc_id: String,
    pub chunk_index: usize,
    pub text: String,
    pub metadata: Value,
    pub vector: Vec<f32>,
}

/// One search hit.
#[derive(Debug, Clone)]
pub struct Hit {
    pub id: i64,
    pub doc_id: String,
    pub chunk_index: i64,
    pub text: String,
    pub metadata: Value,
    pub score: f32,
}

/// The deterministic primary key of a chunk: the first 63 bits of
/// `sha256(tenant \0 doc_id \0 chunk_index)`, so a retried ingest overwrites instead of
/// duplicating, and two tenants' chunks never share a key.
pub fn chunk_id(tenant: &str, doc_id: &str, chunk_index: usize) -> i64 {
    let mut h = Sha256::new();
    h.update(tenant.as_bytes());
    h.update([0]);
    h.update(doc_id.as_bytes());
    h.update([0]);
    h.update((chunk_index as u64).to_le_bytes());
    let digest = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) >> 1) as i64
}

/// Whether `name` follows Milvus' collection naming rules: a letter or `_`, then letters,
/// digits and `_`, at most 255 characters.
pub fn valid_collection_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 255
        && matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A lazily connected Milvus client and what this process learnt about collections.
pub struct Store {
    settings: Settings,
    client: OnceCell<ClientV2>,
    /// Collections known to exist, be loaded and hold vectors of [`Meta`]. A collection's meta
    /// never changes while it exists; an entry is dropped when Milvus says the collection is gone.
    known: Mutex<HashMap<String, Meta>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("milvus_url", &self.settings.milvus_url).finish_non_exhaustive()
    }
}

impl Store {
    pub fn new(settings: Settings) -> Self {
        Self { settings, client: OnceCell::new(), known: Mutex::new(HashMap::new()) }
    }

    /// The client, connecting on first use (and again after a failed attempt).
    pub async fn client(&self) -> Result<&ClientV2, NodeError> {
        self.client
            .get_or_try_init(|| async {
                let mut config = ConnectConfig::new()
                    .uri(self.settings.milvus_url.clone())
                    .connect_timeout(self.settings.connect_timeout)
                    .rpc_timeout(self.settings.rpc_timeout)
                    // The SDK's default retries 75 times without a time limit: a Milvus that is
                    // down would hold the invocation until the Lambda times out.
                    .retry(
                        RetryConfig::new()
                            .max_attempts(3)
                            .max_retry_timeout(self.settings.rpc_timeout)
                            .initial_backoff(Duration::from_millis(100))
                            .max_backoff(Duration::from_secs(1)),
                    )
                    // Otherwise a heartbeat RPC every 10 s for the life of the process.
                    .telemetry(TelemetryConfig::new().enabled(false));
                if let Some(token) = &self.settings.milvus_token {
                    config = config.token(token.clone());
                }
                let connect = ClientV2::new(&config);
                match tokio::time::timeout(self.settings.connect_timeout + Duration::from_secs(1), connect).await {
                    Ok(Ok(client)) => Ok(client),
                    Ok(Err(e)) => Err(connect_error(&self.settings.milvus_url, &e)),
                    Err(_) => Err(NodeError::new(
                        error_names::VECTOR_CONNECT,
                        format!(
                            "Milvus at {}: no answer within {:?}",
                            self.settings.milvus_url, self.settings.connect_timeout
                        ),
                    )),
                }
            })
            .await
    }

    fn remember(&self, collection: &str, meta: &Meta) {
        lock(&self.known).insert(collection.to_owned(), meta.clone());
    }

    fn forget(&self, collection: &str) {
        lock(&self.known).remove(collection);
    }

    /// The collection's meta, or `None` if it does not exist. Loads it on first sight.
    pub async fn meta(&self, collection: &str) -> Result<Option<Meta>, NodeError> {
        if let Some(meta) = lock(&self.known).get(collection) {
            return Ok(Some(meta.clone()));
        }
        let client = self.client().await?;
        let described = client
            .describe_collection(DescribeCollectionRequest::builder().collection_name(collection).build().map_err(bad)?)
            .await;
        let desc = match described {
            Ok(d) => d,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(self.error(collection, "describing", &e)),
        };
        let desc = desc.description();
        let props = desc.get_properties();
        let (Some(model), Some(dim)) =
            (props.get(MODEL_PROPERTY), props.get(DIM_PROPERTY).and_then(|d| d.parse::<usize>().ok()))
        else {
            return Err(NodeError::new(
                error_names::CONFIG_INVALID,
                format!(
                    "config.collection: `{collection}` exists but was not created by Weft (it has no `{MODEL_PROPERTY}` / `{DIM_PROPERTY}` properties)"
                ),
            ));
        };
        let meta = Meta { model: model.clone(), dim };
        self.load(collection).await?;
        self.remember(collection, &meta);
        Ok(Some(meta))
    }

    async fn load(&self, collection: &str) -> Result<(), NodeError> {
        let client = self.client().await?;
        client
            .load_collection(LoadCollectionRequest::builder().collection_name(collection).build().map_err(bad)?)
            .await
            .map_err(|e| self.error(collection, "loading", &e))
    }

    /// Creates the collection for `meta` (a concurrent creation by another call is fine: the
    /// existing collection's meta is returned for the caller to compare).
    pub async fn create(&self, collection: &str, meta: &Meta) -> Result<Meta, NodeError> {
        let client = self.client().await?;
        let schema = CollectionSchema::new()
            .description("Weft RAG chunks (functions/vector)")
            .add_field(FieldSchema::new().name("id").data_type(DataType::Int64).primary_key(true).auto_id(false))
            .add_field(FieldSchema::new().name("tenant").data_type(DataType::VarChar).max_length(MAX_TENANT_BYTES))
            .add_field(FieldSchema::new().name("doc_id").data_type(DataType::VarChar).max_length(MAX_DOC_ID_BYTES))
            .add_field(FieldSchema::new().name("chunk_index").data_type(DataType::Int64))
            .add_field(FieldSchema::new().name("text").data_type(DataType::VarChar).max_length(MAX_TEXT_BYTES))
            .add_field(FieldSchema::new().name("metadata").data_type(DataType::Json))
            .add_field(FieldSchema::new().name("vector").data_type(DataType::FloatVector).dimension(meta.dim as u32));
        let properties = HashMap::from([
            (MODEL_PROPERTY.to_owned(), meta.model.clone()),
            (DIM_PROPERTY.to_owned(), meta.dim.to_string()),
        ]);
        let created = client
            .create_collection(
                CreateCollectionRequest::builder()
                    .collection_name(collection)
                    .schema(schema)
                    .properties(properties)
                    .consistency_level(ConsistencyLevel::Strong)
                    .build()
                    .map_err(bad)?,
            )
            .await;
        if let Err(e) = created {
            // Lost a race with another ingest creating it: use theirs.
            if let Some(existing) = self.meta(collection).await? {
                return Ok(existing);
            }
            return Err(self.error(collection, "creating", &e));
        }
        let index = IndexParam::new()
            .field_name("vector")
            .index_type(IndexType::Hnsw)
            .metric_type(MetricType::Cosine)
            .extra_params(HashMap::from([
                ("M".to_owned(), "16".to_owned()),
                ("efConstruction".to_owned(), "200".to_owned()),
            ]));
        client
            .create_index(
                // milvus-lite has no AllocTimestamp, which a synchronous create_index waits with.
                CreateIndexRequest::builder()
                    .collection_name(collection)
                    .index_param(index)
                    .sync(false)
                    .build()
                    .map_err(bad)?,
            )
            .await
            .map_err(|e| self.error(collection, "indexing", &e))?;
        self.load(collection).await?;
        self.remember(collection, meta);
        Ok(meta.clone())
    }

    /// Upserts `rows` for `tenant`, then deletes the chunks of the same documents past their new
    /// last chunk (`stale`: doc id → chunk count), so re-ingesting a shorter text leaves no tail.
    pub async fn upsert(
        &self,
        collection: &str,
        tenant: &str,
        rows: Vec<Row>,
        stale: &[(String, usize)],
    ) -> Result<(), NodeError> {
        let client = self.client().await?;
        let tenant_lit = crate::filter::string_literal(tenant).ok_or_else(|| bad_tenant(tenant))?;
        // One delete per distinct chunk count (most calls: one), `doc_id in [...]` on the
        // top-level field, at most 1,024 ids per expression. The stale chunks (index >= the new
        // count) are never among the rows written, so the deletes run beside the upserts.
        let mut by_count: std::collections::BTreeMap<usize, Vec<&str>> = std::collections::BTreeMap::new();
        for (doc_id, count) in stale {
            by_count.entry(*count).or_default().push(doc_id);
        }
        let mut filters = Vec::new();
        for (count, ids) in by_count {
            for ids in ids.chunks(1024) {
                let literals: Option<Vec<String>> = ids.iter().map(|d| crate::filter::string_literal(d)).collect();
                let literals = literals
                    .ok_or_else(|| NodeError::config("documents", "a document id must not hold control characters"))?;
                filters.push(format!(
                    "(tenant == {tenant_lit}) && (doc_id in [{}]) && (chunk_index >= {count})",
                    literals.join(", ")
                ));
            }
        }
        let deletes = async {
            for filter in filters {
                client
                    .delete(DeleteRequest::builder().collection_name(collection).filter(filter).build().map_err(bad)?)
                    .await
                    .map_err(|e| self.error(collection, "deleting stale chunks from", &e))?;
            }
            Ok::<(), NodeError>(())
        };
        let upserts = async {
            let mut rows = rows.into_iter().peekable();
            while rows.peek().is_some() {
                let batch: Vec<Value> = rows
                    .by_ref()
                    .take(UPSERT_ROWS)
                    .map(|r| {
                        json!({
                            "id": chunk_id(tenant, &r.doc_id, r.chunk_index),
                            "tenant": tenant,
                            "doc_id": r.doc_id,
                            "chunk_index": r.chunk_index,
                            "text": r.text,
                            "metadata": r.metadata,
                            "vector": r.vector,
                        })
                    })
                    .collect();
                let insert = InsertRequest::builder().collection_name(collection).rows(batch).build().map_err(bad)?;
                client
                    .upsert(UpsertRequest::builder().insert(insert).build().map_err(bad)?)
                    .await
                    .map_err(|e| self.error(collection, "writing to", &e))?;
            }
            Ok::<(), NodeError>(())
        };
        let (upserted, deleted) = futures::join!(upserts, deletes);
        upserted.and(deleted)
    }

    /// The `top_k` nearest chunks of `tenant` to `vector` matching `filter` (an expression from
    /// [`crate::filter::compile`]).
    pub async fn search(
        &self,
        collection: &str,
        tenant: &str,
        vector: Vec<f32>,
        top_k: usize,
        filter: Option<&str>,
    ) -> Result<Vec<Hit>, NodeError> {
        let client = self.client().await?;
        let tenant_lit = crate::filter::string_literal(tenant).ok_or_else(|| bad_tenant(tenant))?;
        // The tenant condition is ours and always there; the caller's filter is parenthesised
        // inside the conjunction, so nothing in it can escape it.
        let expr = match filter {
            Some(f) => format!("(tenant == {tenant_lit}) && ({f})"),
            None => format!("tenant == {tenant_lit}"),
        };
        let ef = top_k.max(64).to_string();
        let request = SearchRequest::builder()
            .collection_name(collection)
            .vector_field("vector")
            .vectors(SearchVectors::Float(vec![vector]))
            .filter(expr)
            .output_fields(["doc_id", "chunk_index", "text", "metadata"])
            .limit(top_k as i64)
            .metric_type(MetricType::Cosine)
            .extra_params(HashMap::from([("ef".to_owned(), ef)]))
            .consistency_level(ConsistencyLevel::Strong)
            .build()
            .map_err(bad)?;
        let response = client.search(request).await.map_err(|e| self.error(collection, "searching", &e))?;
        let mut hits = Vec::new();
        for result in response.results() {
            let ids = match result.get_ids() {
                Ids::Int64(ids) => ids.clone(),
                _ => return Err(milvus_error(collection, "reading", "the collection's ids are not Int64")),
            };
            let scores = result.get_scores();
            for (i, row) in result.rows().map_err(|e| self.error(collection, "reading", &e))?.enumerate() {
                let read = |e: milvus::v2::error::Error| self.error(collection, "reading", &e);
                hits.push(Hit {
                    id: ids.get(i).copied().unwrap_or_default(),
                    doc_id: row.get_str("doc_id").map_err(read)?.to_owned(),
                    chunk_index: row.get_i64("chunk_index").map_err(read)?,
                    text: row.get_str("text").map_err(read)?.to_owned(),
                    metadata: row.get_json("metadata").map_err(read)?.clone(),
                    score: scores.get(i).copied().unwrap_or_default(),
                });
            }
        }
        Ok(hits)
    }

    /// The node error for a failed call on `collection`; forgets the collection if Milvus says it
    /// is gone.
    fn error(&self, collection: &str, doing: &str, e: &milvus::v2::error::Error) -> NodeError {
        if is_not_found(e) {
            self.forget(collection);
            return not_found(collection);
        }
        if is_transport(e) {
            return NodeError::new(
                error_names::VECTOR_CONNECT,
                format!(
                    "Milvus at {} is unreachable while {doing} `{collection}`: {}",
                    self.settings.milvus_url,
                    short(e)
                ),
            );
        }
        milvus_error(collection, doing, &short(e))
    }
}

pub fn not_found(collection: &str) -> NodeError {
    NodeError::new(
        error_names::VECTOR_COLLECTION_NOT_FOUND,
        format!("collection `{collection}` does not exist (a vector_upsert node creates it)"),
    )
}

fn milvus_error(collection: &str, doing: &str, message: &str) -> NodeError {
    NodeError::new(error_names::VECTOR_MILVUS, format!("Milvus refused {doing} `{collection}`: {message}"))
}

fn connect_error(url: &str, e: &milvus::v2::error::Error) -> NodeError {
    NodeError::new(error_names::VECTOR_CONNECT, format!("Milvus at {url} cannot be reached: {}", short(e)))
}

fn bad_tenant(tenant: &str) -> NodeError {
    NodeError::new(
        error_names::CONFIG_INVALID,
        format!("the execution's tenant id `{}` is unusable", tenant.escape_debug()),
    )
}

/// A request the SDK refused to build: one of our own values is out of its bounds.
fn bad(e: milvus::v2::error::Error) -> NodeError {
    NodeError::new(error_names::CONFIG_INVALID, format!("the Milvus request is invalid: {}", short(&e)))
}

fn is_not_found(e: &milvus::v2::error::Error) -> bool {
    match e {
        milvus::v2::error::Error::Server(s) => {
            s.code() == COLLECTION_NOT_FOUND
                || s.reason().contains("does not exist") && s.reason().contains("collection")
        }
        milvus::v2::error::Error::RetryExhausted { source, .. } => is_not_found(source),
        _ => false,
    }
}

fn is_transport(e: &milvus::v2::error::Error) -> bool {
    match e {
        // gRPC codes: CANCELLED 1, UNKNOWN 2 (a connection reset), DEADLINE_EXCEEDED 4, UNAVAILABLE 14.
        milvus::v2::error::Error::Grpc(status) => matches!(i32::from(status.code()), 1 | 2 | 4 | 14),
        milvus::v2::error::Error::Timeout(_) | milvus::v2::error::Error::Cancelled(_) => true,
        milvus::v2::error::Error::RetryExhausted { source, .. } => is_transport(source),
        _ => false,
    }
}

/// The first 500 characters of an SDK error (server messages can quote whole expressions).
fn short(e: &dyn std::fmt::Display) -> String {
    let s = e.to_string();
    if s.chars().count() <= 500 { s } else { format!("{}…", s.chars().take(500).collect::<String>()) }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_deterministic_and_tenant_scoped() {
        let a = chunk_id("acme", "doc", 0);
        assert_eq!(a, chunk_id("acme", "doc", 0));
        assert!(a >= 0);
        assert_ne!(a, chunk_id("acme", "doc", 1));
        assert_ne!(a, chunk_id("beta", "doc", 0));
        // The separator keeps ("ab", "c") and ("a", "bc") apart.
        assert_ne!(chunk_id("ab", "c", 0), chunk_id("a", "bc", 0));
    }

    #[test]
    fn collection_names() {
        assert!(valid_collection_name("docs_2024"));
        assert!(valid_collection_name("_x"));
        for bad in ["", "1docs", "my-docs", "a b", "docs\"", &"x".repeat(256)] {
            assert!(!valid_collection_name(bad), "{bad}");
        }
    }
}
