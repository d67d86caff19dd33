//! The RAG node functions, `vector_upsert` and `vector_search`, in one Lambda: the event's
//! `node.type` picks which. Texts are chunked (`text-splitter`, by characters), embedded through
//! the model provider (`model_client::Client::embed`) and stored in Milvus (`milvus-sdk-rust`).
//!
//! **Tenancy.** One physical Milvus collection per logical `collection` name, shared by every
//! tenant; each chunk carries its tenant in a `tenant` field, and every search the function runs is
//! `(tenant == "<the execution's tenant>") && (<the node's filter>)`. The tenant comes from Weft's
//! records of the execution ([`TenantResolver`]), never from the config or the graph; the node's
//! filter only addresses `metadata` keys ([`filter`]), so it can narrow a search, never widen it.
//! Primary keys hash the tenant in ([`store::chunk_id`]), so two tenants' chunks never collide.
//! What tenants share is the collection's *shape*: the first ingest into a name fixes its embedding
//! model and dimension for everyone, and a tenant using another model on that name gets
//! `Vector.DimensionMismatch` (which tells it the name is taken, nothing more). Operators who want
//! physical isolation per tenant can give tenants distinct names (e.g. prefix them in the graph).
//!
//! **`vector_upsert`** config:
//! - `collection` (required): Milvus' naming rules: a letter or `_`, then letters, digits, `_`; at
//!   most 255 characters. Created when missing (fields, HNSW/COSINE index: see [`store`]), with
//!   the embedding model and dimension recorded as collection properties.
//! - `documents` (required, 1 to 10,000): strings, or objects `{"id"?, "text", "metadata"?}`. `id`
//!   (a string or integer, at most 512 bytes) defaults to a hash of the text; `metadata` (an
//!   object, at most 64 KiB as JSON) is stored on every chunk of the document and is what search
//!   filters address.
//! - `chunk_size` (characters, default 1000, 1 to 16,000), `chunk_overlap` (characters, default
//!   the smaller of 100 and a tenth of `chunk_size`; less than `chunk_size`).
//! - `embedding_model`: default the collection's recorded model, else `text-embedding-3-small`.
//!
//! Chunk ids are `hash(tenant, doc_id, chunk_index)`, and the write is an upsert, so a retried or
//! repeated ingest overwrites the same rows; chunks of a re-ingested document past its new last
//! chunk are deleted. Embeddings are requested in batches of `WEFT_VECTOR_EMBED_BATCH` (64),
//! [`EMBED_CONCURRENCY`] requests at a time.
//! Output: `{"collection": "docs", "documents": 2, "chunks": 7, "model": "text-embedding-3-small",
//! "usage": {"input_tokens": 812, "output_tokens": 0, "estimated": false}, "cost_usd": 0.0000162}`.
//!
//! **`vector_search`** config:
//! - `collection` (required); `query` (a text, embedded with the collection's model) or `vector`
//!   (an array of numbers of the collection's dimension), exactly one.
//! - `top_k` (default 5, 1 to 100); `score_threshold` (a cosine similarity; hits below are dropped).
//! - `filter`: an object over metadata keys, see [`filter`] (`{"lang": "en", "page": {"$gt": 2}}`).
//! - `embedding_model`: optional; if given, must be the collection's.
//!
//! Output: `{"matches": [{"id": "…", "doc_id", "chunk_index", "text", "metadata", "score"}]}`,
//! best first. `id` is the Int64 key as a decimal string (JSON numbers lose precision past 2^53).
//! Beside it, `model`, `usage` and `cost_usd` of the query's embedding, as for `vector_upsert`
//! (zero tokens for a given `vector`).
//!
//! **Usage and cost.** Embedding tokens are the provider's reported `usage.prompt_tokens`; when a
//! provider reports none, `model_client::estimate_tokens` of the texts, and `estimated` is true.
//! `cost_usd` prices them with `WEFT_MODEL_PRICES` ([`Settings::prices`]); an unpriced model
//! costs 0. Like every AI node's, these add up in the execution's `usage`.
//!
//! **Errors** ([`error_names`]): `Vector.Connect` (Milvus unreachable, or the tenant cannot be
//! read; retryable), `Vector.CollectionNotFound` (search on a collection that does not exist),
//! `Vector.DimensionMismatch` (the embeddings' model or dimension differs from the collection's,
//! or a `vector` of another length), `Vector.InvalidFilter`, `Vector.Milvus` (Milvus refused a
//! request), `Vector.NoTenant` (the execution was not started through Weft), `Config.Invalid`
//! naming the field, and the embeddings' `Llm.*` names (`Llm.RateLimited`, `Llm.Auth`, ...).
//!
//! **Endpoints.** `WEFT_MILVUS_URL` / `WEFT_MILVUS_TOKEN` and `OPENAI_BASE_URL` / `OPENAI_API_KEY`
//! are the operator's configuration ([`Settings`]); a node cannot choose another endpoint, so the
//! address guard is not involved.

pub mod filter;
mod settings;
pub mod store;
mod tenant;

use std::sync::Arc;

use futures::{StreamExt as _, TryStreamExt as _};
use model_client::{Client, ModelError, Prices, Usage};
use node_contract::{NodeError, NodeEvent, NodeFunction, error_names as contract_names};
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};
use tenant_secrets::{NoSecrets, SecretResolver};
use text_splitter::{ChunkConfig, TextSplitter};

pub use settings::{DEFAULT_MILVUS_URL, Settings, SettingsError};
pub use store::{Meta, Store};
pub use tenant::{NoTenants, StaticTenant, TenantResolver, TenantsByExecution};

/// The error names of this function (the lead may move them into `node_contract::error_names`).
pub mod error_names {
    pub use node_contract::error_names::CONFIG_INVALID;
    /// Milvus cannot be reached (or answers too late), or the tenant cannot be read. Retryable.
    pub const VECTOR_CONNECT: &str = "Vector.Connect";
    /// A search on a collection that does not exist.
    pub const VECTOR_COLLECTION_NOT_FOUND: &str = "Vector.CollectionNotFound";
    /// The embeddings' model or dimension is not the collection's.
    pub const VECTOR_DIMENSION_MISMATCH: &str = "Vector.DimensionMismatch";
    /// The search `filter` is not the filter language.
    pub const VECTOR_INVALID_FILTER: &str = "Vector.InvalidFilter";
    /// Milvus refused a request for another reason.
    pub const VECTOR_MILVUS: &str = "Vector.Milvus";
    /// The execution has no tenant (not started through Weft's api).
    pub const VECTOR_NO_TENANT: &str = "Vector.NoTenant";
}

/// The default embedding model of a new collection.
pub const DEFAULT_EMBEDDING_MODEL: &str = "text-embedding-3-small";
pub const DEFAULT_CHUNK_SIZE: usize = 1000;
pub const MAX_CHUNK_SIZE: usize = 16_000;
pub const MAX_DOCUMENTS: usize = 10_000;
/// The most chunks one upsert may produce.
pub const MAX_CHUNKS: usize = 50_000;
pub const DEFAULT_TOP_K: usize = 5;
pub const MAX_TOP_K: usize = 100;
/// Embeddings requests of one `vector_upsert` in flight at once.
pub const EMBED_CONCURRENCY: usize = 4;
const MAX_METADATA_BYTES: usize = 64 * 1024;

/// The handler of both node types; holds one Milvus connection and one HTTP pool for all calls.
#[derive(Clone)]
pub struct VectorFunction {
    store: Arc<Store>,
    models: Client,
    embed_batch: usize,
    prices: Prices,
    secrets: Arc<dyn SecretResolver>,
    tenants: Arc<dyn TenantResolver>,
}

impl std::fmt::Debug for VectorFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VectorFunction").field("store", &self.store).finish_non_exhaustive()
    }
}

impl VectorFunction {
    /// Milvus is connected on the first call, not here (a Lambda's init must not fail because
    /// Milvus is briefly down). No tenants until [`Self::with_tenants`].
    pub fn new(settings: Settings) -> Result<Self, SettingsError> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("weft-vector/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SettingsError { name: "client", problem: e.to_string() })?;
        let models = Client::new(settings.provider.clone(), http)
            .map_err(|e| SettingsError { name: "OPENAI_BASE_URL", problem: e.to_string() })?;
        Ok(Self {
            embed_batch: settings.embed_batch,
            prices: settings.prices.clone(),
            store: Arc::new(Store::new(settings)),
            models,
            secrets: Arc::new(NoSecrets),
            tenants: Arc::new(NoTenants),
        })
    }

    pub fn from_env() -> Result<Self, SettingsError> {
        Self::new(Settings::from_env()?)
    }

    /// Resolves `{{ secrets.NAME }}` in the config through `resolver`.
    pub fn with_secrets(mut self, resolver: Arc<dyn SecretResolver>) -> Self {
        self.secrets = resolver;
        self
    }

    /// Finds each execution's tenant through `resolver`.
    pub fn with_tenants(mut self, resolver: Arc<dyn TenantResolver>) -> Self {
        self.tenants = resolver;
        self
    }

    pub async fn run(&self, event: NodeEvent) -> Result<Value, NodeError> {
        let resolved = tenant_secrets::resolve_config(&*self.secrets, &event).await?;
        let outcome = async {
            let tenant = match self.tenants.tenant_of(&event.execution.id).await {
                Ok(Some(t)) => t,
                Ok(None) => {
                    return Err(NodeError::new(
                        error_names::VECTOR_NO_TENANT,
                        format!(
                            "execution {} was not started through Weft's api, so it has no tenant",
                            event.execution.id
                        ),
                    ));
                }
                Err(e) => return Err(NodeError::new(error_names::VECTOR_CONNECT, e)),
            };
            let Value::Object(config) = &resolved.config else {
                return Err(NodeError::new(contract_names::CONFIG_INVALID, "config: expected an object"));
            };
            match event.node.node_type.as_str() {
                "vector_upsert" => self.upsert(&tenant, config).await,
                "vector_search" => self.search(&tenant, config).await,
                other => Err(NodeError::new(
                    contract_names::CONFIG_INVALID,
                    format!("node.type: `{other}` is not served by this function (vector_upsert, vector_search)"),
                )),
            }
        }
        .await;
        resolved.scrubber.result(outcome)
    }

    async fn upsert(&self, tenant: &str, config: &Map<String, Value>) -> Result<Value, NodeError> {
        let collection = collection(config)?;
        let documents = documents(config)?;
        let (size, overlap) = chunking(config)?;
        let asked_model = optional_str(config, "embedding_model")?;

        let splitter = TextSplitter::new(
            ChunkConfig::new(size).with_overlap(overlap).map_err(|e| NodeError::config("chunk_overlap", e))?,
        );
        let mut chunks: Vec<(usize, usize, &str)> = Vec::new(); // (document, chunk index, text)
        let mut counts = Vec::with_capacity(documents.len());
        for (d, doc) in documents.iter().enumerate() {
            let before = chunks.len();
            chunks.extend(splitter.chunks(&doc.text).enumerate().map(|(i, c)| (d, i, c)));
            if chunks.len() > MAX_CHUNKS {
                return Err(NodeError::config("documents", format!("more than {MAX_CHUNKS} chunks in one call")));
            }
            counts.push(chunks.len() - before);
        }

        let existing = self.store.meta(&collection).await?;
        let model = match (&existing, asked_model) {
            (Some(meta), Some(asked)) if asked != meta.model => return Err(model_mismatch(&collection, meta, asked)),
            (Some(meta), _) => meta.model.clone(),
            (None, asked) => asked.unwrap_or(DEFAULT_EMBEDDING_MODEL).to_owned(),
        };
        let mut meta = existing;
        let mut tally = Tally::default();
        let mut rows = Vec::with_capacity(chunks.len());
        // The batches' embeddings requests run EMBED_CONCURRENCY at a time, answered in order.
        let batches: Vec<&[(usize, usize, &str)]> = chunks.chunks(self.embed_batch).collect();
        let pending: Vec<_> = batches
            .iter()
            .map(|batch| self.embed_batch(model.clone(), batch.iter().map(|(_, _, t)| (*t).to_owned()).collect()))
            .collect();
        let embedded: Vec<(Vec<Vec<f32>>, Tally)> =
            futures::stream::iter(pending).buffered(EMBED_CONCURRENCY).try_collect().await?;
        for (batch, (vectors, batch_tally)) in batches.iter().zip(embedded) {
            tally.add(&batch_tally);
            let dim = vectors.first().map_or(0, Vec::len);
            if dim == 0 || dim > store::MAX_DIM || vectors.iter().any(|v| v.len() != dim) {
                return Err(NodeError::new(
                    error_names::VECTOR_DIMENSION_MISMATCH,
                    format!("model `{model}` returned embeddings of unusable or differing lengths ({dim})"),
                ));
            }
            let current = match &meta {
                Some(m) => m.clone(),
                None => {
                    let created = self.store.create(&collection, &Meta { model: model.clone(), dim }).await?;
                    meta = Some(created.clone());
                    created
                }
            };
            if current.dim != dim || current.model != model {
                return Err(NodeError::new(
                    error_names::VECTOR_DIMENSION_MISMATCH,
                    format!(
                        "collection `{collection}` holds {}-dimensional vectors of `{}`; model `{model}` returns {dim} dimensions",
                        current.dim, current.model
                    ),
                ));
            }
            for ((d, i, text), vector) in batch.iter().zip(vectors) {
                let doc = &documents[*d];
                rows.push(store::Row {
                    doc_id: doc.id.clone(),
                    chunk_index: *i,
                    text: (*text).to_owned(),
                    metadata: doc.metadata.clone(),
                    vector,
                });
            }
        }
        let stale: Vec<(String, usize)> = documents.iter().zip(&counts).map(|(d, n)| (d.id.clone(), *n)).collect();
        let chunk_count = rows.len();
        if meta.is_some() {
            self.store.upsert(&collection, tenant, rows, &stale).await?;
        }
        let mut out = json!({"collection": collection, "documents": documents.len(), "chunks": chunk_count});
        tally.report(&self.prices, &model, &mut out);
        Ok(out)
    }

    async fn search(&self, tenant: &str, config: &Map<String, Value>) -> Result<Value, NodeError> {
        let collection = collection(config)?;
        let query = optional_str(config, "query")?;
        let given = match config.get("vector") {
            None | Some(Value::Null) => None,
            Some(v) => Some(vector(v)?),
        };
        let top_k = match config.get("top_k") {
            None | Some(Value::Null) => DEFAULT_TOP_K,
            Some(v) => v
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .filter(|n| (1..=MAX_TOP_K).contains(n))
                .ok_or_else(|| NodeError::config("top_k", format!("must be an integer from 1 to {MAX_TOP_K}")))?,
        };
        let threshold = match config.get("score_threshold") {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.as_f64().ok_or_else(|| NodeError::config("score_threshold", "must be a number"))?),
        };
        let expr = match config.get("filter") {
            None | Some(Value::Null) => None,
            Some(f) => filter::compile(f)
                .map_err(|e| NodeError::new(error_names::VECTOR_INVALID_FILTER, format!("config.filter: {e}")))?,
        };
        let asked_model = optional_str(config, "embedding_model")?;

        let meta = self.store.meta(&collection).await?.ok_or_else(|| store::not_found(&collection))?;
        if let Some(asked) = asked_model
            && asked != meta.model
        {
            return Err(model_mismatch(&collection, &meta, asked));
        }
        let mut tally = Tally::default();
        let vector = match (query, given) {
            (Some(_), Some(_)) | (None, None) => {
                return Err(NodeError::config("query", "give exactly one of `query` (a text) and `vector`"));
            }
            (Some(q), None) => {
                let mut vectors = self.embed(&meta.model, &[q.to_owned()], &mut tally).await?;
                vectors.pop().unwrap_or_default()
            }
            (None, Some(v)) => v,
        };
        if vector.len() != meta.dim {
            return Err(NodeError::new(
                error_names::VECTOR_DIMENSION_MISMATCH,
                format!(
                    "collection `{collection}` holds {}-dimensional vectors of `{}`; the query vector has {}",
                    meta.dim,
                    meta.model,
                    vector.len()
                ),
            ));
        }
        let hits = self.store.search(&collection, tenant, vector, top_k, expr.as_deref()).await?;
        let matches: Vec<Value> = hits
            .into_iter()
            .filter(|h| threshold.is_none_or(|t| f64::from(h.score) >= t))
            .map(|h| {
                json!({"id": h.id.to_string(), "doc_id": h.doc_id, "chunk_index": h.chunk_index, "text": h.text,
                       "metadata": h.metadata, "score": h.score})
            })
            .collect();
        let mut out = json!({ "matches": matches });
        tally.report(&self.prices, &meta.model, &mut out);
        Ok(out)
    }

    /// [`Self::embed`] of one batch, with its own tally (batches run concurrently).
    async fn embed_batch(&self, model: String, texts: Vec<String>) -> Result<(Vec<Vec<f32>>, Tally), NodeError> {
        let mut tally = Tally::default();
        let vectors = self.embed(&model, &texts, &mut tally).await?;
        Ok((vectors, tally))
    }

    /// Embeds `texts` with `model`, counting the tokens into `tally`.
    async fn embed(&self, model: &str, texts: &[String], tally: &mut Tally) -> Result<Vec<Vec<f32>>, NodeError> {
        // The client checks there is one vector per text, in input order.
        let embeddings = self.models.embed(model, texts).await.map_err(model_error)?;
        match embeddings.usage {
            Some(u) => tally.usage.input_tokens += u.input_tokens,
            None => {
                tally.estimated = true;
                tally.usage.input_tokens += texts.iter().map(|t| model_client::estimate_tokens(t)).sum::<u64>();
            }
        }
        Ok(embeddings.vectors)
    }
}

/// The embedding tokens of one call.
#[derive(Debug, Default)]
struct Tally {
    usage: Usage,
    estimated: bool,
}

impl Tally {
    fn add(&mut self, other: &Tally) {
        self.usage.input_tokens += other.usage.input_tokens;
        self.estimated |= other.estimated;
    }

    /// Adds `model`, `usage` and `cost_usd` to the output object `out`.
    fn report(&self, prices: &Prices, model: &str, out: &mut Value) {
        if let Value::Object(o) = out {
            o.insert("model".into(), json!(model));
            o.insert(
                "usage".into(),
                json!({"input_tokens": self.usage.input_tokens, "output_tokens": 0, "estimated": self.estimated}),
            );
            o.insert("cost_usd".into(), json!(prices.cost_usd(model, &self.usage)));
        }
    }
}

impl NodeFunction for VectorFunction {
    fn handle(&self, event: NodeEvent) -> impl Future<Output = Result<Value, NodeError>> + Send {
        self.run(event)
    }
}

fn model_error(e: ModelError) -> NodeError {
    NodeError::new(e.name(), format!("embeddings: {e}"))
}

fn model_mismatch(collection: &str, meta: &Meta, asked: &str) -> NodeError {
    NodeError::new(
        error_names::VECTOR_DIMENSION_MISMATCH,
        format!(
            "collection `{collection}` holds {}-dimensional vectors of `{}`, not of `{asked}` (vectors of different models are not comparable)",
            meta.dim, meta.model
        ),
    )
}

/// One document of `vector_upsert`.
#[derive(Debug)]
struct Document {
    id: String,
    text: String,
    metadata: Value,
}

fn collection(config: &Map<String, Value>) -> Result<String, NodeError> {
    let name = optional_str(config, "collection")?.ok_or_else(|| NodeError::config("collection", "is required"))?;
    if !store::valid_collection_name(name) {
        return Err(NodeError::config(
            "collection",
            "must start with a letter or `_` and hold only letters, digits and `_` (at most 255)",
        ));
    }
    Ok(name.to_owned())
}

fn optional_str<'a>(config: &'a Map<String, Value>, field: &str) -> Result<Option<&'a str>, NodeError> {
    match config.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.as_str())),
        Some(Value::String(_)) => Err(NodeError::config(field, "must not be empty")),
        Some(_) => Err(NodeError::config(field, "must be a string")),
    }
}

fn documents(config: &Map<String, Value>) -> Result<Vec<Document>, NodeError> {
    let Some(Value::Array(items)) = config.get("documents") else {
        return Err(NodeError::config("documents", "is required: an array of texts or {id?, text, metadata?} objects"));
    };
    if items.is_empty() || items.len() > MAX_DOCUMENTS {
        return Err(NodeError::config("documents", format!("must hold 1 to {MAX_DOCUMENTS} documents")));
    }
    let mut out = Vec::with_capacity(items.len());
    let mut seen = std::collections::HashSet::with_capacity(items.len());
    for (n, item) in items.iter().enumerate() {
        let field = |what: &str| format!("documents[{n}]{what}");
        let (id, text, metadata) = match item {
            Value::String(text) => (None, text.clone(), Value::Object(Map::new())),
            Value::Object(doc) => {
                let text = match doc.get("text") {
                    Some(Value::String(t)) => t.clone(),
                    _ => return Err(NodeError::config(&field(".text"), "is required: a string")),
                };
                let id = match doc.get("id") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
                    Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Some(n.to_string()),
                    Some(_) => {
                        return Err(NodeError::config(&field(".id"), "must be a non-empty string or an integer"));
                    }
                };
                let metadata = match doc.get("metadata") {
                    None | Some(Value::Null) => Value::Object(Map::new()),
                    Some(m @ Value::Object(_)) => m.clone(),
                    Some(_) => return Err(NodeError::config(&field(".metadata"), "must be an object")),
                };
                (id, text, metadata)
            }
            _ => return Err(NodeError::config(&field(""), "must be a string or an object {id?, text, metadata?}")),
        };
        if text.trim().is_empty() {
            return Err(NodeError::config(&field(".text"), "must not be empty"));
        }
        let id = id.unwrap_or_else(|| text_id(&text));
        if id.len() > store::MAX_DOC_ID_BYTES as usize || id.chars().any(char::is_control) {
            return Err(NodeError::config(
                &field(".id"),
                format!("must be at most {} bytes without control characters", store::MAX_DOC_ID_BYTES),
            ));
        }
        if !seen.insert(id.clone()) {
            return Err(NodeError::config(&field(".id"), format!("`{id}` appears twice in one call")));
        }
        let size = serde_json::to_vec(&metadata).map_or(usize::MAX, |b| b.len());
        if size > MAX_METADATA_BYTES {
            return Err(NodeError::config(&field(".metadata"), "must be at most 64 KiB as JSON"));
        }
        out.push(Document { id, text, metadata });
    }
    Ok(out)
}

/// The default document id: the first 128 bits of the text's SHA-256, in hex.
fn text_id(text: &str) -> String {
    Sha256::digest(text.as_bytes()).iter().take(16).map(|b| format!("{b:02x}")).collect()
}

fn chunking(config: &Map<String, Value>) -> Result<(usize, usize), NodeError> {
    let int = |field: &str| -> Result<Option<usize>, NodeError> {
        match config.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| NodeError::config(field, "must be a non-negative integer")),
        }
    };
    let size = int("chunk_size")?.unwrap_or(DEFAULT_CHUNK_SIZE);
    if !(1..=MAX_CHUNK_SIZE).contains(&size) {
        return Err(NodeError::config("chunk_size", format!("must be from 1 to {MAX_CHUNK_SIZE} characters")));
    }
    let overlap = int("chunk_overlap")?.unwrap_or((size / 10).min(100));
    if overlap >= size {
        return Err(NodeError::config("chunk_overlap", "must be less than chunk_size"));
    }
    Ok((size, overlap))
}

fn vector(v: &Value) -> Result<Vec<f32>, NodeError> {
    let Value::Array(items) = v else { return Err(NodeError::config("vector", "must be an array of numbers")) };
    if items.is_empty() || items.len() > store::MAX_DIM {
        return Err(NodeError::config("vector", format!("must hold 1 to {} numbers", store::MAX_DIM)));
    }
    items
        .iter()
        .map(|x| {
            x.as_f64()
                .map(|f| f as f32)
                .filter(|f| f.is_finite())
                .ok_or_else(|| NodeError::config("vector", "must be an array of finite numbers"))
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        let Value::Object(m) = v else { panic!("not an object") };
        m
    }

    #[test]
    fn documents_parse_and_default_their_ids() {
        let docs =
            documents(&obj(json!({"documents": ["hello", {"id": 7, "text": "x", "metadata": {"a": 1}}]}))).unwrap();
        assert_eq!(docs[0].id, text_id("hello"));
        assert_eq!(docs[0].id.len(), 32);
        assert_eq!(docs[1].id, "7");
        assert_eq!(docs[1].metadata, json!({"a": 1}));
        for bad in [
            json!({}),
            json!({"documents": []}),
            json!({"documents": [1]}),
            json!({"documents": [{"id": "a"}]}),
            json!({"documents": ["  "]}),
            json!({"documents": [{"text": "t", "metadata": [1]}]}),
            json!({"documents": [{"id": "a", "text": "t"}, {"id": "a", "text": "u"}]}),
            json!({"documents": [{"id": "a\nb", "text": "t"}]}),
        ] {
            let e = documents(&obj(bad.clone())).unwrap_err();
            assert_eq!(e.name, "Config.Invalid", "{bad}");
        }
    }

    #[test]
    fn chunking_defaults_and_bounds() {
        assert_eq!(chunking(&obj(json!({}))).unwrap(), (1000, 100));
        assert_eq!(chunking(&obj(json!({"chunk_size": 50}))).unwrap(), (50, 5));
        assert_eq!(chunking(&obj(json!({"chunk_size": 50, "chunk_overlap": 0}))).unwrap(), (50, 0));
        assert!(chunking(&obj(json!({"chunk_size": 50, "chunk_overlap": 50}))).is_err());
        assert!(chunking(&obj(json!({"chunk_size": 0}))).is_err());
        assert!(chunking(&obj(json!({"chunk_size": -3}))).is_err());
    }

    #[test]
    fn vectors_and_names() {
        assert_eq!(vector(&json!([1, 0.5])).unwrap(), vec![1.0, 0.5]);
        assert!(vector(&json!([])).is_err());
        assert!(vector(&json!(["1"])).is_err());
        assert!(vector(&json!([1e300])).is_err());
        assert!(collection(&obj(json!({"collection": "docs"}))).is_ok());
        assert!(collection(&obj(json!({"collection": "my docs"}))).is_err());
        assert!(collection(&obj(json!({}))).is_err());
    }
}
