//! Cold start and size of the `code` function's `bootstrap` (release build):
//! `cargo bench -p fn-code --bench cold_start`.

fn main() {
    let payload = serde_json::json!({
        "node": {"id": "c", "type": "code"},
        "config": {"expression": "input.n * 2"},
        "scope": {"input": {"n": 21}},
    });
    lambda_glue::runtime_api::bench_main(env!("CARGO_BIN_EXE_fn-code"), payload, serde_json::json!(42));
}
