//! The cache and the rate limiter against a real Redis (`WEFT_TEST_REDIS_URL`).

use std::time::Duration;

use cache::{Cache, Decision, Kind, RateLimiter};

async fn redis() -> Option<redis::aio::ConnectionManager> {
    let url = test_skip::var("WEFT_TEST_REDIS_URL")?;
    Some(cache::connect(&url).await.expect("redis"))
}

fn namespace() -> String {
    format!(
        "cache-test-{}-{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
    )
}

#[tokio::test]
async fn two_levels_with_ttl_and_write_through() {
    let Some(conn) = redis().await else { return };
    let ns = namespace();
    // An L1 TTL far above a Redis round trip, so "still stale before the TTL" holds on a loaded
    // machine too.
    let a = Cache::new(conn.clone(), &ns, 2, Duration::from_millis(1500), 60);
    let b = Cache::new(conn.clone(), &ns, 2, Duration::from_millis(1500), 60);

    assert_eq!(a.get("k").await, None);
    assert!(a.put_if_absent("k", b"one".to_vec(), Kind::Mutable).await);
    assert!(!b.put_if_absent("k", b"stale".to_vec(), Kind::Mutable).await, "a reader cannot overwrite");
    assert_eq!(b.get("k").await.as_deref(), Some(&b"one"[..]), "b reads a's value from Redis");
    assert!(b.in_l1("k"));

    a.put("k", b"two".to_vec(), Kind::Mutable).await;
    assert_eq!(a.get("k").await.as_deref(), Some(&b"two"[..]));
    // b's L1 still has the old value until its TTL passes, then reads Redis again.
    assert_eq!(b.get("k").await.as_deref(), Some(&b"one"[..]));
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_eq!(b.get("k").await.as_deref(), Some(&b"two"[..]));

    // Immutable entries stay in L1 past the TTL; the LRU evicts beyond capacity.
    a.put("v1", b"x".to_vec(), Kind::Immutable).await;
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert!(a.in_l1("v1"));
    a.put("v2", b"y".to_vec(), Kind::Immutable).await;
    a.put("v3", b"z".to_vec(), Kind::Immutable).await;
    assert!(!a.in_l1("v1"), "capacity 2 evicts the least recently used");

    a.invalidate("k").await;
    assert_eq!(a.get("k").await, None);
}

#[tokio::test]
async fn fixed_window_per_tenant() {
    let Some(conn) = redis().await else { return };
    let ns = namespace();
    let limiter = RateLimiter::new(conn.clone(), &ns, 2, 1);
    assert_eq!(limiter.check("t").await, Decision::Allowed { remaining: 1 });
    assert_eq!(limiter.check("t").await, Decision::Allowed { remaining: 0 });
    assert_eq!(limiter.check("t").await, Decision::Limited { retry_after_seconds: 1 });
    assert_eq!(limiter.check("u").await, Decision::Allowed { remaining: 1 });
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(limiter.check("t").await, Decision::Allowed { remaining: 1 }, "a new window");
    let off = RateLimiter::new(conn, &ns, 0, 1);
    assert!(matches!(off.check("t").await, Decision::Allowed { .. }));
}
