//! Embeddings against the scripted server: order, determinism, similarity, faults.
#![allow(clippy::unwrap_used)]

mod common;

use common::server_and_client;
use model_client::testing::{Fault, Reply, hash_embedding};
use model_client::{Prices, Usage, estimate_tokens};
use serde_json::json;

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[tokio::test]
async fn vectors_in_input_order_and_deterministic() {
    let (server, client) = server_and_client().await;
    let inputs: Vec<String> =
        ["the cat sat on the mat", "a cat sat on a mat", "quarterly revenue grew 12%"].map(String::from).to_vec();
    let e = client.embed("text-embedding-3-small", &inputs).await.unwrap();
    assert_eq!(e.vectors.len(), 3);
    // The server lists the items in reverse order; the client places them by `index`.
    for (v, text) in e.vectors.iter().zip(&inputs) {
        assert_eq!(v, &hash_embedding(text, 64));
        assert_eq!(v.len(), 64);
        assert!((cosine(v, v) - 1.0).abs() < 1e-5);
    }
    assert!(cosine(&e.vectors[0], &e.vectors[1]) > cosine(&e.vectors[0], &e.vectors[2]) + 0.2);
    let again = client.embed("text-embedding-3-small", &inputs).await.unwrap();
    assert_eq!(again, e);
    let tokens: u64 = inputs.iter().map(|t| estimate_tokens(t)).sum();
    assert_eq!(tokens, 6 + 5 + 7);
    assert_eq!(e.usage, Some(Usage { input_tokens: tokens, output_tokens: 0 }));
    assert_eq!(e.model, "text-embedding-3-small");
    assert_eq!(server.last_body(), json!({"model": "text-embedding-3-small", "input": inputs}));
    assert!(Prices::default().cost_usd(&e.model, &e.usage.unwrap()) > 0.0);
}

#[tokio::test]
async fn dimension_configurable_and_empty_input_sends_nothing() {
    let (server, client) = server_and_client().await;
    server.set_embedding_dim(16);
    let e = client.embed("m", &["hello".to_string()]).await.unwrap();
    assert_eq!(e.vectors[0].len(), 16);
    let none = client.embed("m", &[]).await.unwrap();
    assert!(none.vectors.is_empty());
    assert_eq!(server.served(), 1);
}

#[tokio::test]
async fn embedding_faults() {
    let (server, client) = server_and_client().await;
    server.push_embeddings(Reply::rate_limited(Some("2")));
    server.push_embeddings(Reply::fault(Fault::MalformedJson));
    server.push_embeddings(Reply::fault(Fault::Status { status: 500, body: json!({"error": {"message": "boom"}}) }));
    server.push_embeddings(Reply::text("ignored").without_usage());
    let input = ["x".to_string()];
    assert_eq!(client.embed("m", &input).await.unwrap_err().name(), "Llm.RateLimited");
    assert_eq!(client.embed("m", &input).await.unwrap_err().name(), "Llm.BadResponse");
    assert_eq!(client.embed("m", &input).await.unwrap_err().name(), "Llm.Provider");
    assert_eq!(client.embed("m", &input).await.unwrap().usage, None);
}
