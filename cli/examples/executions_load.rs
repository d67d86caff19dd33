//! Load figure (not a test): N executions started concurrently through the API of a running
//! `weft serve`, then followed until every one is over. Checks that none is lost or duplicated
//! and prints executions/s and start latency percentiles.
//!
//! ```text
//! WEFT_JWT_SECRET=... WEFT_JWT_ISSUER=... WEFT_JWT_AUDIENCE=... \
//!   cargo run -p cli --example executions_load -- http://127.0.0.1:8080 1000
//! ```
//! (Run `weft serve` with `WEFT_RATE_LIMIT=0`.)

use std::collections::HashSet;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let base = args.next().unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let n: usize = args.next().and_then(|v| v.parse().ok()).unwrap_or(1000);
    let secret = std::env::var("WEFT_JWT_SECRET")?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let claims = json!({"sub": "load", "tenant": format!("load{now}"), "role": "editor",
        "iss": std::env::var("WEFT_JWT_ISSUER").unwrap_or_default(),
        "aud": std::env::var("WEFT_JWT_AUDIENCE").unwrap_or_default(), "exp": now + 3600});
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes())?,
    )?;
    let http = reqwest::Client::builder().timeout(Duration::from_secs(120)).pool_max_idle_per_host(n).build()?;
    let graph = json!({"format": "weft/v1", "id": "load", "name": "Load",
        "nodes": [{"id": "start", "type": "start", "data": {}},
                  {"id": "work", "type": "code", "data": {"source": "return { i: input.i, sq: input.i * input.i };"}},
                  {"id": "done", "type": "end", "data": {}}],
        "edges": [{"id": "e1", "source": "start", "target": "work"}, {"id": "e2", "source": "work", "target": "done"}]});
    let created: Value = http
        .post(format!("{base}/v1/workflows"))
        .bearer_auth(&token)
        .json(&json!({"graph": graph}))
        .send()
        .await?
        .json()
        .await?;
    let workflow = created["id"].as_str().ok_or_else(|| anyhow::anyhow!("create failed: {created}"))?.to_owned();
    let published = http.post(format!("{base}/v1/workflows/{workflow}/versions")).bearer_auth(&token).send().await?;
    anyhow::ensure!(published.status().as_u16() == 201, "publish failed: {}", published.text().await?);

    let started_at = Instant::now();
    let starts = (0..n).map(|i| {
        let http = http.clone();
        let token = token.clone();
        let url = format!("{base}/v1/workflows/{workflow}/executions");
        async move {
            let t = Instant::now();
            let res = http.post(url).bearer_auth(token).json(&json!({"input": {"i": i}})).send().await;
            let latency = t.elapsed();
            match res {
                Ok(r) if r.status().as_u16() == 201 => {
                    let body: Value = r.json().await.unwrap_or_default();
                    Ok((body["id"].as_str().unwrap_or_default().to_owned(), latency))
                }
                Ok(r) => Err(format!("{}: {}", r.status(), r.text().await.unwrap_or_default())),
                Err(e) => Err(e.to_string()),
            }
        }
    });
    let results = futures::future::join_all(starts).await;
    let start_wall = started_at.elapsed();
    let mut latencies = Vec::new();
    let mut ids = HashSet::new();
    let mut errors = Vec::new();
    for r in results {
        match r {
            Ok((id, l)) => {
                ids.insert(id);
                latencies.push(l);
            }
            Err(e) => errors.push(e),
        }
    }
    latencies.sort();
    let pct = |p: f64| {
        latencies.get(((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1)).copied().unwrap_or_default()
    };
    println!(
        "started {} of {n} in {:.2?} ({:.0} starts/s); start latency p50 {:.2?} p99 {:.2?} max {:.2?}; {} errors{}",
        ids.len(),
        start_wall,
        ids.len() as f64 / start_wall.as_secs_f64(),
        pct(0.50),
        pct(0.99),
        latencies.last().copied().unwrap_or_default(),
        errors.len(),
        errors.first().map(|e| format!(" (first: {e})")).unwrap_or_default()
    );

    // Follow until every execution is over: page through the workflow's executions.
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut url = format!("{base}/v1/executions?workflow_id={workflow}&limit=200");
            if let Some(c) = &cursor {
                url.push_str(&format!("&cursor={c}"));
            }
            let page: Value = http.get(url).bearer_auth(&token).send().await?.json().await?;
            for item in page["items"].as_array().into_iter().flatten() {
                seen.push((
                    item["id"].as_str().unwrap_or_default().to_owned(),
                    item["status"].as_str().unwrap_or_default().to_owned(),
                ));
            }
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        let unique: HashSet<&String> = seen.iter().map(|(id, _)| id).collect();
        let succeeded = seen.iter().filter(|(_, s)| s == "SUCCEEDED").count();
        let over =
            seen.iter().filter(|(_, s)| matches!(s.as_str(), "SUCCEEDED" | "FAILED" | "ABORTED" | "TIMED_OUT")).count();
        if over == seen.len() && seen.len() >= ids.len() {
            let total = started_at.elapsed();
            let all_known = ids.iter().all(|id| unique.contains(id));
            println!(
                "all over after {:.2?}: {} listed, {} unique, {} SUCCEEDED, every started id listed: {}; {:.0} executions/s end to end",
                total,
                seen.len(),
                unique.len(),
                succeeded,
                all_known,
                seen.len() as f64 / total.as_secs_f64()
            );
            anyhow::ensure!(
                seen.len() == unique.len() && all_known && succeeded == n,
                "lost, duplicated or failed executions"
            );
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "not finished: {over} of {} over", seen.len());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
