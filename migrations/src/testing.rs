//! Test support (feature `test-util`): a fresh database per test, so tests run in parallel
//! safely. Create it here, then migrate it with [`MIGRATOR`](crate::MIGRATOR) or an owner's
//! `migrate()`.
//!
//! Tests read `WEFT_TEST_DATABASE_URL` (an admin URL, e.g. from `scripts/dev-services`). When it
//! is unset they skip (`test_skip`), unless `WEFT_TEST_STRICT=1`, when they fail.

use sqlx::Connection as _;
use uuid::Uuid;

/// `Some(value)` of a test service URL variable, or `None` when the calling test skips (see
/// `test_skip`: a `SKIPPED:` line, or a failure under `WEFT_TEST_STRICT=1`).
pub fn service_url(var: &str) -> Option<String> {
    test_skip::var(var)
}

/// Creates a new, empty database next to the one `admin_url` names and returns its URL.
pub async fn create_database(admin_url: &str) -> Result<String, sqlx::Error> {
    let name = format!("weft_test_{}", Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(admin_url).await?;
    // The name is generated above, never user input, so formatting it in is safe.
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\""))).execute(&mut conn).await?;
    conn.close().await?;
    Ok(with_database(admin_url, &name))
}

fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    // `scheme://authority/db`: replace what follows the authority's slash.
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let base = match base[after_scheme..].find('/') {
        Some(i) => &base[..after_scheme + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn database_names_are_replaced() {
        assert_eq!(super::with_database("postgres://u@h:1/weft", "x"), "postgres://u@h:1/x");
        assert_eq!(super::with_database("postgres://u@h:1", "x"), "postgres://u@h:1/x");
        assert_eq!(super::with_database("postgres://u@h/a?sslmode=disable", "x"), "postgres://u@h/x?sslmode=disable");
    }
}
