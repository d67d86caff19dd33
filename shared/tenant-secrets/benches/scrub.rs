//! What scrubbing costs a function: building the scrubber for one invocation's secrets, and
//! scrubbing a large output (a 1 MiB JSON response) with and without secrets in it.
//! Run with `cargo bench -p tenant-secrets --bench scrub`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};
use tenant_secrets::Scrubber;

fn benches(c: &mut Criterion) {
    let values = ["sk_live_4eC39HqLyjWDarjtT1zdp7dc", "ghp_16C7e42F292c6912E7710c838347Ae178B4a", "p@ss w0rd/é"];
    c.bench_function("scrubber for 3 secrets (build)", |b| b.iter(|| black_box(Scrubber::new(values))));
    let scrubber = Scrubber::new(values);
    // ~1 MiB: 8,000 records of a few strings each, one record quoting a secret.
    let records: Vec<Value> = (0..8_000)
        .map(|i| {
            json!({"id": i, "name": format!("customer {i}"), "email": format!("c{i}@example.com"),
                        "note": "a line of ordinary text that holds nothing secret at all"})
        })
        .collect();
    let clean = json!({"status": 200, "body": {"items": records}});
    let mut dirty = clean.clone();
    dirty["body"]["items"][4_000]["note"] = json!(format!("Bearer {}", values[0]));
    eprintln!("output size: {} bytes", clean.to_string().len());
    c.bench_function("scrub 1 MiB output, no secret in it", |b| {
        b.iter_batched(
            || clean.clone(),
            |mut v| {
                scrubber.value(&mut v);
                v
            },
            criterion::BatchSize::LargeInput,
        )
    });
    c.bench_function("scrub 1 MiB output, one secret in it", |b| {
        b.iter_batched(
            || dirty.clone(),
            |mut v| {
                scrubber.value(&mut v);
                v
            },
            criterion::BatchSize::LargeInput,
        )
    });
}

criterion_group!(scrub, benches);
criterion_main!(scrub);
