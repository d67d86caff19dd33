//! `DatabaseFunction::run` against a real Postgres (`WEFT_TEST_DATABASE_URL`), a fresh database
//! per test: type mapping, parameters, read-only transactions, the row cap, timeouts, error
//! names and messages, and the address guard.

#![allow(clippy::unwrap_used)]
#![recursion_limit = "256"]

use std::sync::Arc;
use std::time::Duration;

use fn_database::{DatabaseFunction, Settings};
use node_contract::{NodeError, NodeEvent};
use serde_json::{Value, json};
use tenant_secrets::StaticSecrets;

fn event(config: Value) -> NodeEvent {
    NodeEvent::from_value(json!({"node": {"id": "q", "type": "database"},
        "execution": {"id": "arn:aws:states:us-east-1:123456789012:execution:m:e"}, "config": config}))
    .unwrap()
}

fn function(settings: Settings, url: &str) -> DatabaseFunction {
    let secrets = StaticSecrets::new([("DB".to_owned(), url.to_owned())].into());
    DatabaseFunction::new(settings).with_secrets(Arc::new(secrets))
}

/// A function allowed to reach 127.0.0.1 whose secret `DB` is a fresh database's URL.
async fn setup() -> Option<(DatabaseFunction, String)> {
    let admin = store::testing::service_url("WEFT_TEST_DATABASE_URL")?;
    let url = store::testing::create_database(&admin).await.unwrap();
    Some((function(Settings::allowing(&["127.0.0.1"]).unwrap(), &url), url))
}

async fn sql(f: &DatabaseFunction, query: &str, params: Value) -> Result<Value, NodeError> {
    f.run(event(json!({"connection": "DB", "query": query, "params": params}))).await
}

async fn ok(f: &DatabaseFunction, query: &str, params: Value) -> Value {
    sql(f, query, params).await.unwrap_or_else(|e| panic!("{query}: {e}"))
}

#[tokio::test]
async fn every_type_maps_to_exact_json() {
    let Some((f, _)) = setup().await else { return };
    ok(&f, "CREATE TYPE mood AS ENUM ('happy', 'sad')", json!(null)).await;
    ok(&f, "CREATE DOMAIN posint AS int4 CHECK (VALUE > 0)", json!(null)).await;
    let out = ok(
        &f,
        r#"SELECT 1::int2 AS i2, 2::int4 AS i4, 9007199254740993::int8 AS i8,
            12345678901234567890.123456789::numeric AS n, -12345678901234567890.123456789::numeric AS nneg,
            42::numeric(10,0) AS nint, 'NaN'::numeric AS nnan, 1.50::numeric(5,2) AS nscale, 0::numeric AS nzero,
            0.000012::numeric AS nsmall, 'Infinity'::numeric AS ninf,
            1.5::float4 AS f4, 0.1::float4 AS f4b, 0.1::float8 AS f8, 'NaN'::float8 AS fnan, '-Infinity'::float8 AS fninf,
            'text'::text AS t, 'vc'::varchar(10) AS vc, 'ch'::char(4) AS ch, 'nm'::name AS nm, 'x'::"char" AS c1,
            true AS b, false AS bf,
            '2024-01-02 03:04:05.123456+02'::timestamptz AS tz, '2024-01-02 03:04:05'::timestamp AS ts,
            'infinity'::timestamptz AS tzinf, '2024-01-02'::date AS d, '-infinity'::date AS dinf,
            '03:04:05.5'::time AS tm, '03:04:05+05:30'::timetz AS ttz,
            '1 year 2 mons 3 days 04:05:06.5'::interval AS iv,
            'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS u,
            '{"a": [1, 2], "z": "ü"}'::json AS j, '{"b": null, "a": 1.5}'::jsonb AS jb,
            ARRAY[1, 2, NULL]::int4[] AS ai, ARRAY['x', 'y']::text[] AS atext, '{{1,2},{3,4}}'::int8[] AS a2,
            '{}'::int4[] AS aempty, ARRAY[1.25, -3]::numeric[] AS an, ARRAY['2024-01-02']::date[] AS ad,
            '\xdeadbeef'::bytea AS bytes, NULL::text AS nul, NULL::int4[] AS nularr,
            '192.168.0.1/24'::inet AS ip, '10.0.0.0/8'::cidr AS net, '::1'::inet AS ip6,
            'happy'::mood AS mood, ARRAY['sad']::mood[] AS moods, 7::posint AS dom,
            12.34::money AS cash, point(1, 2) AS pt"#,
        json!(null),
    )
    .await;
    assert_eq!(out["row_count"], 1);
    let expected = json!({
        "i2": 1, "i4": 2, "i8": 9007199254740993i64,
        "n": "12345678901234567890.123456789", "nneg": "-12345678901234567890.123456789",
        "nint": "42", "nnan": "NaN", "nscale": "1.50", "nzero": "0", "nsmall": "0.000012", "ninf": "Infinity",
        "f4": 1.5, "f4b": 0.1, "f8": 0.1, "fnan": "NaN", "fninf": "-Infinity",
        "t": "text", "vc": "vc", "ch": "ch  ", "nm": "nm", "c1": "x",
        "b": true, "bf": false,
        "tz": "2024-01-02T01:04:05.123456Z", "ts": "2024-01-02T03:04:05",
        "tzinf": "infinity", "d": "2024-01-02", "dinf": "-infinity",
        "tm": "03:04:05.500", "ttz": "03:04:05+05:30",
        "iv": "P1Y2M3DT4H5M6.5S",
        "u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "j": {"a": [1, 2], "z": "ü"}, "jb": {"a": 1.5, "b": null},
        "ai": [1, 2, null], "atext": ["x", "y"], "a2": [[1, 2], [3, 4]],
        "aempty": [], "an": ["1.25", "-3"], "ad": ["2024-01-02"],
        "bytes": "3q2+7w==", "nul": null, "nularr": null,
        "ip": "192.168.0.1/24", "net": "10.0.0.0/8", "ip6": "::1",
        "mood": "happy", "moods": ["sad"], "dom": 7,
        "cash": "(unsupported type money)", "pt": "(unsupported type point)",
    });
    assert_eq!(out["rows"], json!([expected]), "{:#}", out["rows"][0]);
    let types: Vec<(String, String)> = out["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap().to_owned(), c["type"].as_str().unwrap().to_owned()))
        .collect();
    for (name, ty) in
        [("i8", "int8"), ("n", "numeric"), ("tz", "timestamptz"), ("ai", "int4[]"), ("jb", "jsonb"), ("mood", "mood")]
    {
        assert!(types.contains(&(name.to_owned(), ty.to_owned())), "{name}: {types:?}");
    }
}

#[tokio::test]
async fn params_are_bound_never_spliced() {
    let Some((f, _)) = setup().await else { return };
    ok(&f, "CREATE TABLE t (id int4 PRIMARY KEY, v text, n numeric, at timestamptz)", json!(null)).await;
    let evil = "'; DROP TABLE t; --";
    let inserted = ok(&f, "INSERT INTO t (id, v) VALUES ($1, $2), ($3, $4)", json!([1, evil, 2, "two"])).await;
    assert_eq!(inserted, json!({"rows": [], "row_count": 2, "columns": []}));
    let rows = ok(&f, "SELECT v FROM t WHERE id = $1", json!([1])).await;
    assert_eq!(rows["rows"], json!([{"v": evil}]));
    assert_eq!(ok(&f, "SELECT count(*) AS c FROM t", json!(null)).await["rows"], json!([{"c": 2}]));

    // The same SQL with other parameter types is prepared again, not bound in the old types.
    assert_eq!(ok(&f, "SELECT $1 AS v", json!([5])).await["rows"], json!([{"v": 5}]));
    assert_eq!(ok(&f, "SELECT $1 AS v", json!(["abcdefgh"])).await["rows"], json!([{"v": "abcdefgh"}]));
    assert_eq!(ok(&f, "SELECT $1 AS v", json!([2.5])).await["rows"], json!([{"v": 2.5}]));
    assert_eq!(ok(&f, "SELECT $1 AS v", json!([true])).await["rows"], json!([{"v": true}]));
    assert_eq!(ok(&f, "SELECT $1 AS v", json!([{"a": [1]}])).await["rows"], json!([{"v": {"a": [1]}}]));
    // NULL takes the type the statement gives it; floats compare with integer columns.
    assert_eq!(
        ok(&f, "SELECT id FROM t WHERE id = $1 OR $2::int4 IS NULL ORDER BY id", json!([2.0, null])).await["rows"],
        json!([{"id": 1}, {"id": 2}])
    );
    // Strings against non-text columns need a cast, and then work.
    ok(&f, "UPDATE t SET n = $1::numeric, at = $2::timestamptz WHERE id = 2", json!(["1.10", "2024-05-06T07:08:09Z"]))
        .await;
    assert_eq!(
        ok(&f, "SELECT n, at FROM t WHERE id = 2", json!(null)).await["rows"],
        json!([{"n": "1.10", "at": "2024-05-06T07:08:09Z"}])
    );
    let e = sql(&f, "SELECT v FROM t WHERE id = $1", json!(["1"])).await.unwrap_err();
    assert_eq!(e.name, "Database.Query");
    assert!(e.message.contains("SQLSTATE 42883"), "{e}");
}

#[tokio::test]
async fn read_only_nodes_cannot_write_and_errors_carry_sqlstate() {
    let Some((f, _)) = setup().await else { return };
    ok(&f, "CREATE TABLE t (id int4 PRIMARY KEY)", json!(null)).await;
    let e = f
        .run(event(json!({"connection": "DB", "query": "INSERT INTO t VALUES (1)", "read_only": true})))
        .await
        .unwrap_err();
    assert_eq!(e.name, "Database.Query");
    assert!(e.message.starts_with("SQLSTATE 25006: cannot execute INSERT in a read-only transaction"), "{e}");
    let read =
        f.run(event(json!({"connection": "DB", "query": "SELECT count(*) AS c FROM t", "read_only": true}))).await;
    assert_eq!(read.unwrap()["rows"], json!([{"c": 0}]));

    let e = sql(&f, "SELECT * FROM missing_table", json!(null)).await.unwrap_err();
    assert_eq!(e.name, "Database.Query");
    assert_eq!(e.message, "SQLSTATE 42P01: relation \"missing_table\" does not exist");
    ok(&f, "INSERT INTO t VALUES (1)", json!(null)).await;
    let e = sql(&f, "INSERT INTO t VALUES ($1)", json!([1])).await.unwrap_err();
    assert!(
        e.message.starts_with("SQLSTATE 23505: duplicate key value") && e.message.contains("(detail: Key (id)=(1)"),
        "{e}"
    );
    // Two statements cannot be smuggled into one (the statement is prepared).
    let e = sql(&f, "SELECT 1; DROP TABLE t", json!(null)).await.unwrap_err();
    assert!(e.message.contains("SQLSTATE 42601"), "{e}");
    assert_eq!(ok(&f, "SELECT count(*) AS c FROM t", json!(null)).await["rows"], json!([{"c": 1}]));
    // A failed statement rolls back its own transaction only.
    let e = sql(&f, "INSERT INTO t SELECT g FROM generate_series(2, 5) g UNION ALL SELECT 1", json!(null)).await;
    assert_eq!(e.unwrap_err().name, "Database.Query");
    assert_eq!(ok(&f, "SELECT count(*) AS c FROM t", json!(null)).await["rows"], json!([{"c": 1}]));
    // A constraint checked at COMMIT fails the statement too, and the next one runs.
    ok(&f, "CREATE TABLE c (pid int4 REFERENCES t DEFERRABLE INITIALLY DEFERRED)", json!(null)).await;
    let e = sql(&f, "INSERT INTO c VALUES (99)", json!(null)).await.unwrap_err();
    assert!(e.name == "Database.Query" && e.message.starts_with("SQLSTATE 23503"), "{e}");
    assert_eq!(ok(&f, "SELECT count(*) AS c FROM c", json!(null)).await["rows"], json!([{"c": 0}]));
}

#[tokio::test]
async fn too_many_rows_stops_reading_and_closes_that_connection() {
    let Some((f, _)) = setup().await else { return };
    let query = "SELECT generate_series(1, 10000000) AS n";
    let e = f.run(event(json!({"connection": "DB", "query": query, "max_rows": 1000}))).await.unwrap_err();
    assert_eq!(e.name, "Database.TooManyRows");
    assert!(e.message.contains("max_rows = 1000"), "{e}");
    // The pool still answers, and the abandoned backend goes away (its socket was closed, not drained).
    let probe = "SELECT count(*) AS c FROM pg_stat_activity WHERE query LIKE 'SELECT generate_series(1, 10000000)%'";
    let mut left = json!(null);
    for _ in 0..300 {
        left = ok(&f, probe, json!(null)).await["rows"][0]["c"].clone();
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(left, 0, "the server is still running the abandoned query");
    // Exactly max_rows is fine.
    let out =
        f.run(event(json!({"connection": "DB", "query": "SELECT generate_series(1, 5) AS n", "max_rows": 5}))).await;
    assert_eq!(out.unwrap()["row_count"], 5);
}

#[tokio::test]
async fn statement_timeouts_are_database_timeout() {
    let Some((f, _)) = setup().await else { return };
    let e = f
        .run(event(json!({"connection": "DB", "query": "SELECT pg_sleep(5)", "timeout_seconds": 1})))
        .await
        .unwrap_err();
    assert_eq!(e.name, "Database.Timeout");
    assert!(e.message.contains("SQLSTATE 57014"), "{e}");
    assert_eq!(ok(&f, "SELECT 1 AS one", json!(null)).await["rows"], json!([{"one": 1}]));
    // The timeout is the statement's own: the next one on the same connection has the default.
    let shown = ok(&f, "SELECT current_setting('statement_timeout') AS s", json!(null)).await;
    assert_eq!(shown["rows"], json!([{"s": "30s"}]));
}

#[tokio::test]
async fn connection_failures_never_show_the_password() {
    let Some(admin) = store::testing::service_url("WEFT_TEST_DATABASE_URL") else { return };
    let password = "Pa55-w0rd_never-shown";
    let settings = || Settings::allowing(&["127.0.0.1"]).unwrap();
    // The dev server trusts 127.0.0.1, so a wrong password is accepted there; a missing role is
    // the authentication failure it reports.
    let url = url::Url::parse(&admin).unwrap();
    let port = url.port().unwrap_or(5432);
    let no_role = format!("postgres://weft_no_such_role:{password}@127.0.0.1:{port}/weft");
    let f = function(settings(), &no_role);
    let e = sql(&f, "SELECT 1", json!(null)).await.unwrap_err();
    assert_eq!(e.name, "Database.Connect");
    assert!(e.message.contains("SQLSTATE 28000") && e.message.contains("weft_no_such_role"), "{e}");
    assert!(!e.message.contains(password), "{e}");

    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let refused = format!("postgres://u:{password}@127.0.0.1:{closed_port}/db");
    let e = sql(&function(settings(), &refused), "SELECT 1", json!(null)).await.unwrap_err();
    assert_eq!(e.name, "Database.Connect");
    assert!(!e.message.contains(password) && !e.message.contains("Pa55"), "{e}");

    // A password echoed back by the query itself is scrubbed from the output.
    let db = store::testing::create_database(&admin).await.unwrap();
    let with_password = db.replacen("postgres@", &format!("postgres:{password}@"), 1);
    assert_ne!(with_password, db, "the test URL is expected to name the postgres user");
    let f = function(settings(), &with_password);
    let out = sql(&f, "SELECT $1 AS echoed", json!([password])).await.unwrap();
    assert_eq!(out["rows"], json!([{"echoed": "***"}]));
}

#[tokio::test]
async fn the_guard_refuses_internal_hosts_before_connecting() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    for host in ["127.0.0.1", "localhost", "169.254.169.254", "[::ffff:127.0.0.1]", "10.0.0.1"] {
        let f = function(Settings::default(), &format!("postgres://u:p@{host}:{port}/db"));
        let e = sql(&f, "SELECT 1", json!(null)).await.unwrap_err();
        assert_eq!(e.name, "Database.ForbiddenAddress", "{host}: {e}");
    }
    // Nothing ever reached the listener.
    let accepted = tokio::time::timeout(Duration::from_millis(300), listener.accept()).await;
    assert!(accepted.is_err(), "a connection was attempted");

    for url in [
        "postgres:///db?host=/var/run/postgresql",
        "postgres://%2Fvar%2Frun%2Fpostgresql/db",
        "postgres://u@h/db?host=/tmp",
        "mysql://u@example.com/db",
        "postgres://u@example.com/db?sslcert=/etc/ssl/private/key.pem",
    ] {
        let e = sql(&function(Settings::default(), url), "SELECT 1", json!(null)).await.unwrap_err();
        assert_eq!(e.name, "Config.Invalid", "{url}: {e}");
        assert!(e.message.starts_with("config.connection:"), "{e}");
    }
}

#[tokio::test]
async fn config_errors_name_the_field() {
    let f = function(Settings::default(), "postgres://u@example.com/db");
    let e = f.run(event(json!({"query": "SELECT 1"}))).await.unwrap_err();
    assert_eq!((e.name.as_str(), e.message.starts_with("config.connection:")), ("Config.Invalid", true), "{e}");
    let e = f.run(event(json!({"connection": "NOPE", "query": "SELECT 1"}))).await.unwrap_err();
    assert_eq!(e.name, "Secret.NotFound");
    let e = f.run(event(json!({"connection": "DB"}))).await.unwrap_err();
    assert!(e.message.starts_with("config.query:"), "{e}");
    let e = f.run(event(json!({"connection": "DB", "query": "SELECT 1", "max_rows": 1_000_000}))).await.unwrap_err();
    assert!(e.message.starts_with("config.max_rows:"), "{e}");
}

#[tokio::test]
async fn pools_are_bounded_and_reused() {
    let Some(admin) = store::testing::service_url("WEFT_TEST_DATABASE_URL") else { return };
    let settings = Settings { max_pools: 2, ..Settings::allowing(&["127.0.0.1"]).unwrap() };
    let mut urls = Vec::new();
    for _ in 0..3 {
        urls.push(store::testing::create_database(&admin).await.unwrap());
    }
    let secrets: std::collections::BTreeMap<String, String> =
        urls.iter().enumerate().map(|(i, u)| (format!("DB{i}"), u.clone())).collect();
    let f = DatabaseFunction::new(settings).with_secrets(Arc::new(StaticSecrets::new(secrets)));
    for round in 0..2 {
        for (i, url) in urls.iter().enumerate() {
            let out = f
                .run(event(json!({"connection": format!("DB{i}"), "query": "SELECT current_database() AS d"})))
                .await
                .unwrap();
            let name = url.rsplit('/').next().unwrap();
            assert_eq!(out["rows"], json!([{"d": name}]), "round {round}");
        }
    }
    assert_eq!(f.pool_count(), 2);
    // Concurrent calls on one pool share its few connections.
    let calls = (0..12).map(|_| {
        let f = f.clone();
        async move { f.run(event(json!({"connection": "DB0", "query": "SELECT pg_sleep(0.05)"}))).await }
    });
    for r in futures::future::join_all(calls).await {
        r.unwrap();
    }
}
