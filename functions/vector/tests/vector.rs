//! `vector_upsert` and `vector_search` against a real milvus-lite on 127.0.0.1 (started per test
//! on a free port) with embeddings from the scripted OpenAI-compatible server (deterministic
//! trigram-hash vectors: texts sharing words are close).

#![allow(clippy::unwrap_used)]

mod common;

use common::{ARN_A, ARN_B, MilvusLite, count, embeddings, function, search, two_tenants, upsert};
use serde_json::{Value, json};

fn matches(out: &Value) -> &Vec<Value> {
    out["matches"].as_array().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upsert_then_search_finds_the_chunks_and_a_second_upsert_does_not_duplicate() {
    let Some(milvus) = MilvusLite::start() else { return };
    let models = embeddings(64).await;
    let f = function(&milvus.url(), &models, "acme");
    let docs = json!([
        {"id": "cats", "text": "The cat sat on the mat and purred.", "metadata": {"topic": "pets", "page": 1}},
        {"id": "stocks", "text": "Quarterly revenue grew by twelve percent.", "metadata": {"topic": "finance", "page": 3}},
        "Kittens like to sleep on warm rugs."
    ]);
    let out = upsert(&f, ARN_A, json!({"collection": "kb", "documents": docs})).await.unwrap();
    // The embedding tokens are the provider's count (the scripted server's: a quarter of the
    // characters), priced at text-embedding-3-small's list price ($0.02 per 1M input tokens).
    let tokens: u64 = [
        "The cat sat on the mat and purred.",
        "Quarterly revenue grew by twelve percent.",
        "Kittens like to sleep on warm rugs.",
    ]
    .iter()
    .map(|t| model_client::estimate_tokens(t))
    .sum();
    assert_eq!(
        out,
        json!({"collection": "kb", "documents": 3, "chunks": 3, "model": "text-embedding-3-small",
               "usage": {"input_tokens": tokens, "output_tokens": 0, "estimated": false},
               "cost_usd": tokens as f64 * 0.02 / 1e6})
    );
    assert_eq!(count(&milvus.url(), "kb").await, 3);

    let found = search(&f, ARN_A, json!({"collection": "kb", "query": "cat on the mat", "top_k": 2})).await.unwrap();
    let query_tokens = model_client::estimate_tokens("cat on the mat");
    assert_eq!(found["usage"], json!({"input_tokens": query_tokens, "output_tokens": 0, "estimated": false}));
    assert_eq!(found["cost_usd"], json!(query_tokens as f64 * 0.02 / 1e6));
    let hits = matches(&found);
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[0]["doc_id"], "cats");
    assert_eq!(hits[0]["chunk_index"], 0);
    assert_eq!(hits[0]["text"], "The cat sat on the mat and purred.");
    assert_eq!(hits[0]["metadata"], json!({"topic": "pets", "page": 1}));
    let (s0, s1) = (hits[0]["score"].as_f64().unwrap(), hits[1]["score"].as_f64().unwrap());
    assert!(s0 > s1 && s0 <= 1.0001 && s0 > 0.3, "{found}");
    let id = hits[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(id, fn_vector::store::chunk_id("acme", "cats", 0).to_string());

    // The same ingest again (a retried task): same ids, nothing added.
    upsert(&f, ARN_A, json!({"collection": "kb", "documents": docs})).await.unwrap();
    assert_eq!(count(&milvus.url(), "kb").await, 3);
    let again = search(&f, ARN_A, json!({"collection": "kb", "query": "cat on the mat", "top_k": 2})).await.unwrap();
    assert_eq!(matches(&again)[0]["id"], id.as_str());

    // A filter on metadata, and a raw vector instead of a query.
    let finance =
        search(&f, ARN_A, json!({"collection": "kb", "query": "cat on the mat", "filter": {"page": {"$gt": 2}}}))
            .await
            .unwrap();
    assert_eq!(matches(&finance).len(), 1);
    assert_eq!(matches(&finance)[0]["doc_id"], "stocks");
    let vector = model_client::testing::hash_embedding("Quarterly revenue grew by twelve percent.", 64);
    let by_vector = search(&f, ARN_A, json!({"collection": "kb", "vector": vector, "top_k": 1})).await.unwrap();
    assert_eq!(matches(&by_vector)[0]["doc_id"], "stocks");
    // A given vector embeds nothing: no tokens, no cost.
    assert_eq!(by_vector["usage"], json!({"input_tokens": 0, "output_tokens": 0, "estimated": false}));
    assert_eq!(by_vector["cost_usd"], json!(0.0));
    assert!(matches(&by_vector)[0]["score"].as_f64().unwrap() > 0.99);
    let wrong = search(&f, ARN_A, json!({"collection": "kb", "vector": [1.0, 0.0]})).await.unwrap_err();
    assert_eq!(wrong.name, "Vector.DimensionMismatch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_documents_are_split_by_chunk_size_with_overlap_in_order() {
    let Some(milvus) = MilvusLite::start() else { return };
    let models = embeddings(32).await;
    let f = function(&milvus.url(), &models, "acme");
    let words: Vec<String> = (0..60).map(|i| format!("word{i:02}")).collect();
    let text = words.join(" "); // 60 × 6 chars + 59 spaces = 419 characters
    let out = upsert(
        &f,
        ARN_A,
        json!({"collection": "chunks", "chunk_size": 100, "chunk_overlap": 20,
               "documents": [{"id": "long", "text": text}, {"id": "short", "text": "tiny"}]}),
    )
    .await
    .unwrap();
    let chunks = out["chunks"].as_u64().unwrap();
    assert!(chunks >= 6, "{out}");

    let requests = models.requests();
    let inputs: Vec<String> = requests
        .iter()
        .flat_map(|r| r.body["input"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(inputs.len() as u64, chunks);
    assert!(inputs.iter().all(|c| c.chars().count() <= 100), "{inputs:?}");
    assert_eq!(inputs.last().unwrap(), "tiny");
    // Consecutive chunks overlap: each starts with words the previous one ended with.
    let long = &inputs[..inputs.len() - 1];
    for pair in long.windows(2) {
        let first_word = pair[1].split(' ').next().unwrap();
        assert!(pair[0].contains(first_word), "no overlap between {:?} and {:?}", pair[0], pair[1]);
    }
    assert!(long[0].starts_with("word00") && long.last().unwrap().ends_with("word59"));

    // Stored in order: a search for the last words finds the last chunk index.
    let last =
        search(&f, ARN_A, json!({"collection": "chunks", "query": long.last().unwrap(), "top_k": 1})).await.unwrap();
    assert_eq!(matches(&last)[0]["doc_id"], "long");
    assert_eq!(matches(&last)[0]["chunk_index"].as_u64().unwrap() as usize, long.len() - 1);

    // Re-ingesting the document shorter deletes the tail chunks.
    upsert(
        &f,
        ARN_A,
        json!({"collection": "chunks", "chunk_size": 100, "documents": [{"id": "long", "text": "now short"}]}),
    )
    .await
    .unwrap();
    assert_eq!(count(&milvus.url(), "chunks").await, 2);

    let bad =
        upsert(&f, ARN_A, json!({"collection": "chunks", "chunk_size": 10, "chunk_overlap": 10, "documents": ["x"]}))
            .await
            .unwrap_err();
    assert_eq!(bad.name, "Config.Invalid");
    assert!(bad.message.contains("chunk_overlap"), "{bad:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_dimension_or_model_on_the_same_collection_is_refused() {
    let Some(milvus) = MilvusLite::start() else { return };
    let small = embeddings(16).await;
    let f = function(&milvus.url(), &small, "acme");
    upsert(&f, ARN_A, json!({"collection": "dims", "embedding_model": "small-16", "documents": ["one text"]}))
        .await
        .unwrap();

    // The same model name served with another dimension (a provider change).
    let big = embeddings(48).await;
    let g = function(&milvus.url(), &big, "acme");
    let e = upsert(&g, ARN_A, json!({"collection": "dims", "documents": ["two text"]})).await.unwrap_err();
    assert_eq!(e.name, "Vector.DimensionMismatch", "{e:?}");
    assert!(e.message.contains("16") && e.message.contains("48"), "{e:?}");
    // Another model named on the node.
    let e = upsert(&f, ARN_A, json!({"collection": "dims", "embedding_model": "big-48", "documents": ["x"]}))
        .await
        .unwrap_err();
    assert_eq!(e.name, "Vector.DimensionMismatch");
    let e =
        search(&f, ARN_A, json!({"collection": "dims", "query": "x", "embedding_model": "big-48"})).await.unwrap_err();
    assert_eq!(e.name, "Vector.DimensionMismatch");
    // The search embeds with the collection's recorded model by default.
    search(&f, ARN_A, json!({"collection": "dims", "query": "one"})).await.unwrap();
    assert_eq!(small.last_body()["model"], "small-16");
    assert_eq!(count(&milvus.url(), "dims").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_never_sees_another_tenants_chunks_whatever_the_filter() {
    let Some(milvus) = MilvusLite::start() else { return };
    let models = embeddings(32).await;
    let f = two_tenants(&milvus.url(), &models);
    let doc = |owner: &str| json!([{"id": "shared-id", "text": "secret plans for the launch", "metadata": {"owner": owner, "tenant": owner, "k": "x"}}]);
    upsert(&f, ARN_A, json!({"collection": "iso", "documents": doc("a")})).await.unwrap();
    upsert(&f, ARN_B, json!({"collection": "iso", "documents": doc("b")})).await.unwrap();
    // Same doc id in both tenants: two rows, not one overwriting the other.
    assert_eq!(count(&milvus.url(), "iso").await, 2);

    let hostile = [
        json!({"tenant": {"$ne": ""}}),
        json!({"tenant": "b"}),
        json!({"owner": "b"}),
        json!({"k": "x\" || 1 == 1 || tenant == \"b"}),
        json!({"k": {"$in": ["x\") || (tenant == \"b", "x"]}}),
        json!({"$or": [{"k": "x"}, {"k": "\\\" || tenant == \"b"}]}),
        json!({"k": {"$ne": "\" || tenant != \""}}),
    ];
    for filter in hostile {
        let out =
            search(&f, ARN_A, json!({"collection": "iso", "query": "secret plans", "top_k": 10, "filter": filter}))
                .await;
        match out {
            Ok(out) => {
                for hit in matches(&out) {
                    assert_eq!(hit["metadata"]["owner"], "a", "tenant a saw {hit} with filter {filter}");
                }
            }
            Err(e) => assert_eq!(e.name, "Vector.InvalidFilter", "{filter}: {e:?}"),
        }
    }
    // Refused outright: keys that are not identifiers, expressions as strings, unknown operators.
    for filter in [
        json!("tenant == \"b\""),
        json!({"tenant\"] != \"\" || metadata[\"k": 1}),
        json!({"k": {"$where": "1"}}),
        json!({"k": "new\nline"}),
    ] {
        let e = search(&f, ARN_A, json!({"collection": "iso", "query": "secret", "filter": filter})).await.unwrap_err();
        assert_eq!(e.name, "Vector.InvalidFilter", "{filter}");
    }
    let b = search(&f, ARN_B, json!({"collection": "iso", "query": "secret plans", "top_k": 10})).await.unwrap();
    assert_eq!(matches(&b).len(), 1);
    assert_eq!(matches(&b)[0]["metadata"]["owner"], "b");
    // An execution without a tenant gets nothing at all.
    let e = search(&f, "arn:aws:states:us-east-1:0:execution:x:y", json!({"collection": "iso", "query": "secret"}))
        .await
        .unwrap_err();
    assert_eq!(e.name, "Vector.NoTenant");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_collections_bad_filters_and_bad_config_fail_by_name() {
    let Some(milvus) = MilvusLite::start() else { return };
    let models = embeddings(8).await;
    let f = function(&milvus.url(), &models, "acme");
    let e = search(&f, ARN_A, json!({"collection": "nowhere", "query": "x"})).await.unwrap_err();
    assert_eq!(e.name, "Vector.CollectionNotFound");
    upsert(&f, ARN_A, json!({"collection": "c", "documents": ["text"]})).await.unwrap();
    for (config, name) in [
        (json!({"collection": "c", "query": "x", "filter": [1]}), "Vector.InvalidFilter"),
        (json!({"collection": "c", "query": "x", "filter": {"a": {"$gt": true}}}), "Vector.InvalidFilter"),
        (json!({"collection": "c", "query": "x", "top_k": 101}), "Config.Invalid"),
        (json!({"collection": "c", "query": "x", "top_k": 0}), "Config.Invalid"),
        (json!({"collection": "c"}), "Config.Invalid"),
        (json!({"collection": "c", "query": "x", "vector": [1]}), "Config.Invalid"),
        (json!({"collection": "bad-name", "query": "x"}), "Config.Invalid"),
        (json!({"query": "x"}), "Config.Invalid"),
    ] {
        let e = search(&f, ARN_A, config.clone()).await.unwrap_err();
        assert_eq!(e.name, name, "{config}: {e:?}");
    }
    let e = f.run(common::event("vector_delete", ARN_A, json!({}))).await.unwrap_err();
    assert_eq!(e.name, "Config.Invalid");
    // The embeddings provider's errors keep their Llm.* names.
    models.push_embeddings(model_client::testing::Reply::rate_limited(Some("3")));
    let e = search(&f, ARN_A, json!({"collection": "c", "query": "x"})).await.unwrap_err();
    assert_eq!(e.name, "Llm.RateLimited");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_without_usage_gets_estimated_tokens_and_prices_come_from_the_table() {
    let Some(milvus) = MilvusLite::start() else { return };
    let models = embeddings(16).await;
    let mut settings = fn_vector::Settings::new(milvus.url(), model_client::Provider::new(models.base_url()));
    settings.prices = model_client::Prices::from_json(r#"{"house-embed": {"input": 1000000, "output": 0}}"#).unwrap();
    let f = fn_vector::VectorFunction::new(settings)
        .unwrap()
        .with_tenants(std::sync::Arc::new(fn_vector::StaticTenant::new("acme")));
    // The embeddings request is answered without usage: the tokens are then estimated.
    models.push_embeddings(model_client::testing::Reply::echo().without_usage());
    let out = upsert(
        &f,
        ARN_A,
        json!({"collection": "priced", "embedding_model": "house-embed", "documents": ["abcdefgh", "abcd"]}),
    )
    .await
    .unwrap();
    // 8 and 4 characters: 2 + 1 estimated tokens at $1 each.
    assert_eq!(out["usage"], json!({"input_tokens": 3, "output_tokens": 0, "estimated": true}), "{out}");
    assert_eq!(out["cost_usd"], json!(3.0));
    assert_eq!(out["model"], "house-embed");
    let found = search(&f, ARN_A, json!({"collection": "priced", "query": "abcd"})).await.unwrap();
    assert_eq!(found["usage"], json!({"input_tokens": 1, "output_tokens": 0, "estimated": false}), "{found}");
    assert_eq!(found["cost_usd"], json!(1.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn milvus_down_is_connect() {
    let models = embeddings(8).await;
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut settings =
        fn_vector::Settings::new(format!("http://127.0.0.1:{port}"), model_client::Provider::new(models.base_url()));
    settings.connect_timeout = std::time::Duration::from_secs(2);
    let f = fn_vector::VectorFunction::new(settings)
        .unwrap()
        .with_tenants(std::sync::Arc::new(fn_vector::StaticTenant::new("acme")));
    let e = upsert(&f, ARN_A, json!({"collection": "c", "documents": ["text"]})).await.unwrap_err();
    assert_eq!(e.name, "Vector.Connect", "{e:?}");
    let e = search(&f, ARN_A, json!({"collection": "c", "query": "x"})).await.unwrap_err();
    assert_eq!(e.name, "Vector.Connect", "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn top_k_and_score_threshold_are_respected() {
    let Some(milvus) = MilvusLite::start() else { return };
    let models = embeddings(64).await;
    let f = function(&milvus.url(), &models, "acme");
    let docs: Vec<Value> =
        (0..30).map(|i| json!({"id": format!("d{i}"), "text": format!("note number {i} about apples")})).collect();
    upsert(&f, ARN_A, json!({"collection": "k", "documents": docs})).await.unwrap();
    upsert(&f, ARN_A, json!({"collection": "k", "documents": ["zebra xylophone quartz"]})).await.unwrap();

    for top_k in [1, 7, 25] {
        let out =
            search(&f, ARN_A, json!({"collection": "k", "query": "note about apples", "top_k": top_k})).await.unwrap();
        assert_eq!(matches(&out).len(), top_k);
        let scores: Vec<f64> = matches(&out).iter().map(|m| m["score"].as_f64().unwrap()).collect();
        assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    }
    let default = search(&f, ARN_A, json!({"collection": "k", "query": "note about apples"})).await.unwrap();
    assert_eq!(matches(&default).len(), fn_vector::DEFAULT_TOP_K);

    let all = search(&f, ARN_A, json!({"collection": "k", "query": "note about apples", "top_k": 100})).await.unwrap();
    assert_eq!(matches(&all).len(), 31);
    let worst = matches(&all).last().unwrap()["score"].as_f64().unwrap();
    let best = matches(&all)[0]["score"].as_f64().unwrap();
    let threshold = (worst + best) / 2.0;
    let kept = search(
        &f,
        ARN_A,
        json!({"collection": "k", "query": "note about apples", "top_k": 100, "score_threshold": threshold}),
    )
    .await
    .unwrap();
    let expected = matches(&all).iter().filter(|m| m["score"].as_f64().unwrap() >= threshold).count();
    assert!(expected > 0 && expected < 31);
    assert_eq!(matches(&kept).len(), expected);
    assert!(matches(&kept).iter().all(|m| m["score"].as_f64().unwrap() >= threshold));
    assert!(matches(&kept).iter().all(|m| m["text"] != "zebra xylophone quartz"));
}
