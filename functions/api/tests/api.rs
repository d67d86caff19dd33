//! The API end to end through the router, against real Postgres and Redis.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::*;
use serde_json::{Value, json};

#[tokio::test]
async fn workflow_crud_keeps_the_client_interface() {
    let Some(app) = setup().await else { return };
    let t = token("acme", "editor");

    let created = app.call("POST", "/v1/workflows", Some(&t), Some(json!({"graph": graph("Ticket triage")}))).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    for field in ["id", "name", "created_at"] {
        assert!(created.body.get(field).is_some(), "missing {field}: {}", created.body);
    }
    assert_eq!(created.body["name"], "Ticket triage");
    let id = created.body["id"].as_str().expect("id").to_owned();

    let got = app.call("GET", &format!("/v1/workflows/{id}"), Some(&t), None).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body["graph"], graph("Ticket triage"));
    // The graph comes back as sent: key order and extreme numbers included (even from Postgres,
    // not only from the cache).
    let odd = json!({"zeta": 1, "format": "weft/v1", "name": "odd", "big": 1.7976931348623157e308, "tiny": 5e-324,
                     "huge_int": 2.1988759396396367e22, "nodes": [], "edges": []});
    let odd_id = app.create("acme", odd.clone()).await;
    app.state.cache().invalidate(&format!("wf:acme:{odd_id}")).await;
    let got_odd = app.call("GET", &format!("/v1/workflows/{odd_id}"), Some(&t), None).await;
    assert_eq!(got_odd.status, StatusCode::OK, "{}", got_odd.body);
    assert_eq!(got_odd.body["graph"], odd);
    let keys: Vec<&String> = got_odd.body["graph"].as_object().expect("object").keys().collect();
    assert_eq!(keys, ["zeta", "format", "name", "big", "tiny", "huge_int", "nodes", "edges"]);
    app.call("DELETE", &format!("/v1/workflows/{odd_id}"), Some(&t), None).await;
    assert_eq!(got.body["diagnostics"], json!([]));

    // Update the draft: new graph, explicit name.
    let mut g2 = graph("Ticket triage");
    g2["description"] = json!("v2");
    let updated = app
        .call("PUT", &format!("/v1/workflows/{id}"), Some(&t), Some(json!({"graph": g2, "name": "Triage v2"})))
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    assert_eq!(updated.body["name"], "Triage v2");
    assert_eq!(updated.body["description"], "v2");
    let got = app.call("GET", &format!("/v1/workflows/{id}"), Some(&t), None).await;
    assert_eq!(got.body["name"], "Triage v2", "the cache must not serve the old draft");

    let deleted = app.call("DELETE", &format!("/v1/workflows/{id}"), Some(&t), None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let gone = app.call("GET", &format!("/v1/workflows/{id}"), Some(&t), None).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(gone.body["error"]["code"], "not_found");
    let again = app.call("DELETE", &format!("/v1/workflows/{id}"), Some(&t), None).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    // Soft delete: the rows are still there.
    assert_eq!(app.count_rows("workflows").await, 2);
}

#[tokio::test]
async fn list_paginates_with_cursors_and_filters_by_name() {
    let Some(app) = setup().await else { return };
    let t = token("acme", "viewer");
    for i in 0..5 {
        app.create("acme", graph(&format!("Alpha {i}"))).await;
    }
    app.create("acme", graph("beta_1")).await;
    app.create("acme", graph("100% real")).await;

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/workflows?limit=3&cursor={c}"),
            None => "/v1/workflows?limit=3".to_owned(),
        };
        let r = app.call("GET", &path, Some(&t), None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        pages += 1;
        for item in r.body["items"].as_array().expect("items") {
            assert!(item.get("graph").is_none(), "list items are summaries");
            seen.push(item["name"].as_str().expect("name").to_owned());
        }
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 7);
    assert_eq!(seen[0], "100% real", "newest first");
    let mut dedup = seen.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(dedup.len(), 7, "no duplicates across pages: {seen:?}");

    let r = app.call("GET", "/v1/workflows?name=ALPHA", Some(&t), None).await;
    assert_eq!(r.body["items"].as_array().expect("items").len(), 5);
    // LIKE wildcards in the filter match literally.
    let r = app.call("GET", "/v1/workflows?name=%25", Some(&t), None).await;
    assert_eq!(r.body["items"].as_array().expect("items").len(), 1, "{}", r.body);
    let r = app.call("GET", "/v1/workflows?name=a_1", Some(&t), None).await;
    assert_eq!(r.body["items"].as_array().expect("items").len(), 1, "{}", r.body);

    let r = app.call("GET", "/v1/workflows?cursor=garbage", Some(&t), None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    for bad in ["limit=0", "limit=201", &format!("name={}", "x".repeat(257))] {
        let r = app.call("GET", &format!("/v1/workflows?{bad}"), Some(&t), None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.body);
    }
    let r = app.call("GET", "/v1/workflows?limit=-1", Some(&t), None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["error"]["code"], "invalid_query");
}

#[tokio::test]
async fn publish_versions_and_roll_the_alias_back() {
    let Some(app) = setup().await else { return };
    let t = token("acme", "editor");
    let id = app.create("acme", graph("Flow")).await;

    let v1 = app.call("POST", &format!("/v1/workflows/{id}/versions"), Some(&t), None).await;
    assert_eq!(v1.status, StatusCode::CREATED, "{}", v1.body);
    assert_eq!(v1.body["version"], 1);
    assert_eq!(v1.body["workflow_type"], "EXPRESS");
    assert!(v1.body["content_hash"].as_str().expect("hash").starts_with("sha256:"));

    // A new draft, then version 2.
    let mut g2 = graph("Flow");
    g2["nodes"][1]["data"]["output"] = json!("{{ input.other }}");
    let r = app.call("PUT", &format!("/v1/workflows/{id}"), Some(&t), Some(json!({"graph": g2}))).await;
    assert_eq!(r.status, StatusCode::OK);
    let v2 = app.call("POST", &format!("/v1/workflows/{id}/versions"), Some(&t), None).await;
    assert_eq!(v2.body["version"], 2, "{}", v2.body);
    assert_ne!(v1.body["content_hash"], v2.body["content_hash"]);

    let wf = app.call("GET", &format!("/v1/workflows/{id}"), Some(&t), None).await;
    assert_eq!((wf.body["latest_version"].clone(), wf.body["live_version"].clone()), (json!(2), json!(2)));

    let list = app.call("GET", &format!("/v1/workflows/{id}/versions?limit=1"), Some(&t), None).await;
    assert_eq!(list.body["items"][0]["version"], 2);
    let cursor = list.body["next_cursor"].as_str().expect("cursor").to_owned();
    let list = app.call("GET", &format!("/v1/workflows/{id}/versions?limit=1&cursor={cursor}"), Some(&t), None).await;
    assert_eq!(list.body["items"][0]["version"], 1);
    assert_eq!(list.body["next_cursor"], Value::Null);

    let one = app.call("GET", &format!("/v1/workflows/{id}/versions/1"), Some(&t), None).await;
    assert_eq!(one.status, StatusCode::OK);
    assert_eq!(one.body["asl"]["StartAt"], "start");
    assert_eq!(one.body["graph"], graph("Flow"), "versions keep the graph they were published from");
    // Served again (from the cache) identically.
    let cached = app.call("GET", &format!("/v1/workflows/{id}/versions/1"), Some(&t), None).await;
    assert_eq!(cached.body, one.body);
    assert!(app.state.cache().in_l1(&format!("ver:acme:{id}:1")));
    let missing = app.call("GET", &format!("/v1/workflows/{id}/versions/9"), Some(&t), None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    // Roll back to 1.
    let alias = app.call("PUT", &format!("/v1/workflows/{id}/alias"), Some(&t), Some(json!({"version": 1}))).await;
    assert_eq!(alias.status, StatusCode::OK, "{}", alias.body);
    let wf = app.call("GET", &format!("/v1/workflows/{id}"), Some(&t), None).await;
    assert_eq!((wf.body["latest_version"].clone(), wf.body["live_version"].clone()), (json!(2), json!(1)));
    let bad = app.call("PUT", &format!("/v1/workflows/{id}/alias"), Some(&t), Some(json!({"version": 7}))).await;
    assert_eq!(bad.status, StatusCode::NOT_FOUND);

    // Versions are immutable in the database itself: the migration's trigger refuses the change.
    let pool = app.state.store().pool();
    let update = sqlx::query("UPDATE workflow_versions SET content_hash = 'x'").execute(pool).await;
    store::testing::assert_refused_as_immutable(update, "workflow_versions");
    let delete = sqlx::query("DELETE FROM workflow_versions").execute(pool).await;
    store::testing::assert_refused_as_immutable(delete, "workflow_versions");
    let changed: i64 = sqlx::query_scalar("SELECT count(*) FROM workflow_versions WHERE content_hash = 'x'")
        .fetch_one(pool)
        .await
        .expect("count");
    assert_eq!((changed, app.count_rows("workflow_versions").await), (0, 2));

    // An invalid draft: 422 with diagnostics, and no version written.
    let r = app.call("PUT", &format!("/v1/workflows/{id}"), Some(&t), Some(json!({"graph": invalid_graph()}))).await;
    assert_eq!(r.status, StatusCode::OK, "drafts may be invalid: {}", r.body);
    assert!(!r.body["diagnostics"].as_array().expect("diagnostics").is_empty());
    let refused = app.call("POST", &format!("/v1/workflows/{id}/versions"), Some(&t), None).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    let diagnostics = refused.body["diagnostics"].as_array().expect("diagnostics");
    assert!(diagnostics.iter().any(|d| d["severity"] == "error" && d["code"].is_string() && d["message"].is_string()));
    assert_eq!(refused.body["error"]["code"], "invalid_graph");
    assert_eq!(app.count_rows("workflow_versions").await, 2);

    // A deleted workflow's versions are no longer served, even from the cache.
    app.call("DELETE", &format!("/v1/workflows/{id}"), Some(&t), None).await;
    let gone = app.call("GET", &format!("/v1/workflows/{id}/versions/1"), Some(&t), None).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn compile_validates_without_saving() {
    let Some(app) = setup().await else { return };
    let t = token("acme", "viewer");
    let ok = app.call("POST", "/v1/compile", Some(&t), Some(json!({"graph": chain_graph(50)}))).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert_eq!(ok.body["asl"]["StartAt"], "start");
    assert!(ok.body["state_count"].as_u64().expect("count") >= 49);
    let mapped = app
        .call(
            "POST",
            "/v1/compile",
            Some(&t),
            Some(json!({"graph": chain_graph(3), "functions": {"code": "arn:aws:lambda:us-east-1:1:function:code"}})),
        )
        .await;
    assert!(mapped.body["asl"].to_string().contains("arn:aws:lambda:us-east-1:1:function:code"), "{}", mapped.body);

    let bad = app.call("POST", "/v1/compile", Some(&t), Some(json!({"graph": invalid_graph()}))).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!bad.body["diagnostics"].as_array().expect("diagnostics").is_empty());
    assert_eq!(app.count_rows("workflows").await, 0);
    assert_eq!(app.count_rows("tenants").await, 0, "compiling writes nothing, not even the tenant");
}

#[tokio::test]
async fn tenants_cannot_see_or_touch_each_other() {
    let Some(app) = setup().await else { return };
    let id = app.create("tenant-a", graph("A's flow")).await;
    let a = token("tenant-a", "admin");
    let r = app.call("POST", &format!("/v1/workflows/{id}/versions"), Some(&a), None).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = app.call("POST", "/v1/secrets", Some(&a), Some(json!({"name": "TOKEN", "value": "a-secret"}))).await;
    assert_eq!(r.status, StatusCode::CREATED);

    let b = token("tenant-b", "admin");
    let cases: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", format!("/v1/workflows/{id}"), None),
        ("PUT", format!("/v1/workflows/{id}"), Some(json!({"graph": graph("stolen")}))),
        ("DELETE", format!("/v1/workflows/{id}"), None),
        ("POST", format!("/v1/workflows/{id}/versions"), None),
        ("GET", format!("/v1/workflows/{id}/versions"), None),
        ("GET", format!("/v1/workflows/{id}/versions/1"), None),
        ("PUT", format!("/v1/workflows/{id}/alias"), Some(json!({"version": 1}))),
        ("DELETE", "/v1/secrets/TOKEN".to_owned(), None),
    ];
    for (method, path, body) in cases {
        let r = app.call(method, &path, Some(&b), body).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{method} {path} as tenant-b: {}", r.body);
    }
    let list = app.call("GET", "/v1/workflows", Some(&b), None).await;
    assert_eq!(list.body["items"], json!([]));
    let secrets = app.call("GET", "/v1/secrets", Some(&b), None).await;
    assert_eq!(secrets.body["items"], json!([]));

    // Tenant A's data is untouched.
    let r = app.call("GET", &format!("/v1/workflows/{id}"), Some(&a), None).await;
    assert_eq!(r.body["name"], "A's flow");
    assert_eq!(r.body["latest_version"], 1);
    let r = app.call("GET", "/v1/secrets", Some(&a), None).await;
    assert_eq!(r.body["items"][0]["name"], "TOKEN");
}

#[tokio::test]
async fn roles_gate_operations() {
    let Some(app) = setup().await else { return };
    let viewer = token("acme", "viewer");
    let editor = token("acme", "editor");
    let r = app.call("POST", "/v1/workflows", Some(&viewer), Some(json!({"graph": graph("x")}))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.body["error"]["code"], "forbidden");
    let id = app.create("acme", graph("x")).await;
    for (method, path) in [("DELETE", format!("/v1/workflows/{id}")), ("POST", format!("/v1/workflows/{id}/versions"))]
    {
        let r = app.call(method, &path, Some(&viewer), None).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{method} {path}");
    }
    let r = app.call("POST", "/v1/secrets", Some(&editor), Some(json!({"name": "A", "value": "b"}))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app.call("POST", "/v1/api-keys", Some(&editor), Some(json!({"name": "ci", "role": "viewer"}))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app.call("GET", &format!("/v1/workflows/{id}"), Some(&viewer), None).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn bad_input_is_refused_and_nothing_is_written() {
    let Some(app) = setup_with(Options { max_body_bytes: 4096, ..Options::default() }).await else { return };
    let t = token("acme", "editor");
    let post = |body: Body, content_type: Option<&str>| {
        let mut req =
            Request::builder().method("POST").uri("/v1/workflows").header(header::AUTHORIZATION, format!("Bearer {t}"));
        if let Some(ct) = content_type {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        req.body(body).expect("request")
    };

    let r = app.raw(post(Body::from("{\"graph\": {"), Some("application/json"))).await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_json")),
        "{}",
        r.body
    );
    assert!(r.body["error"]["message"].as_str().expect("message").contains("line 1"), "{}", r.body);

    let big = json!({"graph": {"format": "weft/v1", "name": "x".repeat(5000)}}).to_string();
    let r = app.raw(post(Body::from(big), Some("application/json"))).await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large"))
    );

    let r = app
        .raw(post(Body::from(json!({"graph": graph("x"), "colour": "red"}).to_string()), Some("application/json")))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body["error"]["message"].as_str().expect("message").contains("unknown field `colour`"), "{}", r.body);

    let r = app
        .raw(post(Body::from(r#"{"graph": {"format": "weft/v1", "name": "nul\u0000"}}"#), Some("application/json")))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "Postgres cannot store NUL: {}", r.body);
    assert!(r.body["error"]["message"].as_str().expect("message").contains("NUL"));

    let r = app.raw(post(Body::from(json!({"graph": graph("x")}).to_string()), None)).await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let r = app.raw(post(Body::from(json!({"name": "no graph"}).to_string()), Some("application/json"))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body["error"]["message"].as_str().expect("message").contains("missing field `graph`"), "{}", r.body);

    for bad_graph in [
        json!("a string"),
        json!({"format": "weft/v1", "nodes": "not a list"}),
        json!({"format": "weft/v0", "nodes": []}),
    ] {
        let r = app.raw(post(Body::from(json!({"graph": bad_graph}).to_string()), Some("application/json"))).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad_graph}: {}", r.body);
        assert!(!r.body["diagnostics"].as_array().expect("diagnostics").is_empty());
        assert_eq!(r.body["error"]["code"], "invalid_graph");
    }

    let r =
        app.raw(post(Body::from(json!({"graph": {"format": "weft/v1"}}).to_string()), Some("application/json"))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "a graph without any name: {}", r.body);

    let r = app.call("GET", "/v1/workflows/not-a-uuid", Some(&t), None).await;
    assert_eq!((r.status, r.body["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_path")));
    let r = app.call("GET", "/v1/nope", Some(&t), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app.call("PATCH", "/v1/workflows", Some(&t), None).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);

    assert_eq!(app.count_rows("workflows").await, 0);
    assert_eq!(app.count_rows("tenants").await, 0);
}

#[tokio::test]
async fn secrets_are_encrypted_and_never_returned() {
    let Some(app) = setup().await else { return };
    let t = token("acme", "admin");
    let r = app
        .call("POST", "/v1/secrets", Some(&t), Some(json!({"name": "SLACK_TOKEN", "value": "xoxb-very-secret"})))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert!(!r.body.to_string().contains("xoxb"));
    let dup = app.call("POST", "/v1/secrets", Some(&t), Some(json!({"name": "SLACK_TOKEN", "value": "other"}))).await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    let bad = app.call("POST", "/v1/secrets", Some(&t), Some(json!({"name": "no spaces", "value": "v"}))).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    let list = app.call("GET", "/v1/secrets", Some(&t), None).await;
    assert_eq!(list.body["items"].as_array().expect("items").len(), 1);
    assert!(!list.body.to_string().contains("xoxb"), "{}", list.body);

    // At rest: ciphertext only, and it opens with the key for this tenant and name only.
    let (nonce, ciphertext) = app.state.store().get_secret("acme", "SLACK_TOKEN").await.expect("stored");
    assert!(!String::from_utf8_lossy(&ciphertext).contains("xoxb"));
    let key = secrets::SecretsKey::new(&[42u8; 32]);
    let sealed = secrets::Sealed { nonce, ciphertext };
    assert_eq!(key.open("acme", "SLACK_TOKEN", &sealed).expect("opens"), b"xoxb-very-secret");
    assert!(key.open("other", "SLACK_TOKEN", &sealed).is_err());

    let del = app.call("DELETE", "/v1/secrets/SLACK_TOKEN", Some(&t), None).await;
    assert_eq!(del.status, StatusCode::NO_CONTENT);
    let del = app.call("DELETE", "/v1/secrets/SLACK_TOKEN", Some(&t), None).await;
    assert_eq!(del.status, StatusCode::NOT_FOUND);
    assert_eq!(app.count_rows("secrets").await, 0);
}

#[tokio::test]
async fn api_keys_authenticate_machines_until_revoked() {
    let Some(app) = setup().await else { return };
    let admin = token("acme", "admin");
    let r = app.call("POST", "/v1/api-keys", Some(&admin), Some(json!({"name": "ci", "role": "editor"}))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let key = r.body["secret"].as_str().expect("secret").to_owned();
    let key_id = r.body["id"].as_str().expect("id").to_owned();
    assert!(key.starts_with("weft_"));

    let created = app.call("POST", "/v1/workflows", Some(&key), Some(json!({"graph": graph("by machine")}))).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert!(created.body["created_by"].as_str().expect("created_by").starts_with("api-key:"));
    let req = Request::builder().uri("/v1/workflows").header("x-api-key", &key).body(Body::empty()).expect("request");
    let r = app.raw(req).await;
    assert_eq!(r.body["items"].as_array().expect("items").len(), 1);
    // The key's role is editor: no secrets.
    let r = app.call("POST", "/v1/secrets", Some(&key), Some(json!({"name": "A", "value": "b"}))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    let list = app.call("GET", "/v1/api-keys", Some(&admin), None).await;
    assert!(!list.body.to_string().contains(&key), "keys are listed without their secret");

    let mut wrong = key.clone();
    wrong.pop();
    wrong.push(if key.ends_with('A') { 'B' } else { 'A' });
    let r = app.call("GET", "/v1/workflows", Some(&wrong), None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    let r = app.call("DELETE", &format!("/v1/api-keys/{key_id}"), Some(&admin), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = app.call("GET", "/v1/workflows", Some(&key), None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body["error"]["code"], "unauthorized");
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after() {
    let Some(app) = setup_with(Options { rate_limit: 3, ..Options::default() }).await else { return };
    let t = token("busy", "viewer");
    for _ in 0..3 {
        let r = app.call("GET", "/v1/workflows", Some(&t), None).await;
        assert_eq!(r.status, StatusCode::OK);
    }
    let r = app.call("GET", "/v1/workflows", Some(&t), None).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.body["error"]["code"], "rate_limited");
    let retry: u64 = r.headers[header::RETRY_AFTER].to_str().expect("ascii").parse().expect("seconds");
    assert!((1..=60).contains(&retry), "{retry}");
    // Another tenant has its own budget.
    let r = app.call("GET", "/v1/workflows", Some(&token("calm", "viewer")), None).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn cache_is_shared_through_redis_and_invalidated_on_writes() {
    let Some(app) = setup().await else { return };
    let t = token("acme", "editor");
    let id = app.create("acme", graph("cached")).await;
    let other = second_instance(&app).await;

    let r = call(&other, "GET", &format!("/v1/workflows/{id}"), Some(&t), None).await;
    assert_eq!(r.body["name"], "cached");
    // The row changes behind the API's back: the cached copy is served (L2 hit in the second
    // instance), which proves the read did not go to Postgres.
    sqlx::query("UPDATE workflows SET name = 'sneaky'").execute(app.state.store().pool()).await.expect("update");
    let r = call(&other, "GET", &format!("/v1/workflows/{id}"), Some(&t), None).await;
    assert_eq!(r.body["name"], "cached");

    // Publishing through the first instance invalidates Redis; the second instance sees the
    // new version once its short L1 TTL (200 ms here) has passed.
    let r = app.call("POST", &format!("/v1/workflows/{id}/versions"), Some(&t), None).await;
    assert_eq!(r.status, StatusCode::CREATED);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let r = call(&other, "GET", &format!("/v1/workflows/{id}"), Some(&t), None).await;
    assert_eq!(r.body["latest_version"], 1, "{}", r.body);
    assert_eq!(r.body["name"], "sneaky");
}

#[tokio::test]
async fn healthz_and_openapi_need_no_token() {
    let Some(app) = setup().await else { return };
    let r = app.call("GET", "/healthz", None, None).await;
    assert_eq!((r.status, r.body["status"].as_str()), (StatusCode::OK, Some("ok")));
    let r = app.call("GET", "/openapi.json", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["openapi"], "3.1.0");
    for path in [
        "/v1/workflows",
        "/v1/workflows/{id}",
        "/v1/workflows/{id}/versions",
        "/v1/compile",
        "/v1/secrets",
        "/v1/workflows/{id}/executions",
        "/v1/executions",
        "/v1/executions/{id}",
        "/v1/executions/{id}/stop",
        "/v1/executions/{id}/redrive",
        "/v1/executions/{id}/events",
    ] {
        assert!(r.body["paths"].get(path).is_some(), "{path} missing from the OpenAPI document");
    }
    let sse = &r.body["paths"]["/v1/executions/{id}/events"]["get"]["responses"]["200"]["content"];
    assert!(sse.get("text/event-stream").is_some(), "events must be documented as text/event-stream: {sse}");
    assert!(r.body["components"]["securitySchemes"]["bearer"].is_object());
}

#[tokio::test]
async fn concurrent_publishes_get_distinct_versions() {
    let Some(app) = setup().await else { return };
    let id = app.create("acme", graph("race")).await;
    let t = token("acme", "editor");
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let router = app.router.clone();
            let (t, path) = (t.clone(), format!("/v1/workflows/{id}/versions"));
            tokio::spawn(async move {
                let r = call(&router, "POST", &path, Some(&t), None).await;
                assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
                r.body["version"].as_i64().expect("version")
            })
        })
        .collect();
    let mut versions = Vec::new();
    for task in tasks {
        versions.push(task.await.expect("task"));
    }
    versions.sort();
    assert_eq!(versions, vec![1, 2, 3, 4, 5, 6]);
}

#[tokio::test]
async fn api_keys_are_tenant_scoped_too() {
    let Some(app) = setup().await else { return };
    let r = app
        .call("POST", "/v1/api-keys", Some(&token("tenant-a", "admin")), Some(json!({"name": "a", "role": "viewer"})))
        .await;
    let key_id = r.body["id"].as_str().expect("id").to_owned();
    let key = r.body["secret"].as_str().expect("secret").to_owned();
    let b = token("tenant-b", "admin");
    let r = app.call("DELETE", &format!("/v1/api-keys/{key_id}"), Some(&b), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app.call("GET", "/v1/api-keys", Some(&b), None).await;
    assert_eq!(r.body["items"], json!([]));
    // Tenant A's key sees tenant A only, and cannot mint a key above its own role.
    app.create("tenant-b", graph("B's")).await;
    let r = app.call("GET", "/v1/workflows", Some(&key), None).await;
    assert_eq!(r.body["items"], json!([]));
    let r = app
        .call("POST", "/v1/api-keys", Some(&token("tenant-a", "admin")), Some(json!({"name": "x", "role": "root"})))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}
