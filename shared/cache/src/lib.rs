//! Redis in front of Postgres: a two-level cache (in-process L1 LRU, Redis L2) and per-tenant
//! rate limiting.
//!
//! Architecture invariant: the cache is never needed for correctness. Every Redis failure is
//! treated as a miss (cache) or as "allowed" (rate limiting, failing open), so Redis being down
//! slows Weft down but does not break it. Failures are logged at most once per
//! [`WARN_INTERVAL`] per [`Cache`] and per [`RateLimiter`] (with the number left out), not once
//! per request. After a failure, reads that may be skipped (cache reads and fills, rate-limit
//! checks) skip Redis for [`SKIP_AFTER_FAILURE`] instead of each waiting for the reconnect
//! attempts (about 300 ms); writes and invalidations always try. Callers put the tenant in every
//! key.
//!
//! Staleness: a write invalidates the local L1 and Redis at once; another process's L1 may serve
//! a mutable entry for at most the L1 TTL after that. Immutable entries (published versions)
//! never go stale and have no L1 TTL.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lru::LruCache;
use redis::aio::ConnectionManager;

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cannot connect to Redis: {0}")]
    Connect(#[from] redis::RedisError),
}

/// At most one warning per this interval about Redis failures, per cache and per limiter.
pub const WARN_INTERVAL: Duration = Duration::from_secs(30);

/// How long skippable reads leave Redis alone after one of them failed.
pub const SKIP_AFTER_FAILURE: Duration = Duration::from_secs(1);

/// What one component (a cache, a limiter) knows about Redis: when to try again, what to log.
#[derive(Debug, Default)]
struct Health {
    skip_until: Mutex<Option<Instant>>,
    warnings: WarnThrottle,
}

impl Health {
    /// Whether skippable reads should leave Redis alone right now.
    fn skipping(&self) -> bool {
        let skip_until = self.skip_until.lock().unwrap_or_else(|p| p.into_inner());
        skip_until.is_some_and(|until| Instant::now() < until)
    }

    fn failed(&self, what: &str, err: &redis::RedisError) {
        let now = Instant::now();
        *self.skip_until.lock().unwrap_or_else(|p| p.into_inner()) = Some(now + SKIP_AFTER_FAILURE);
        if let Some(suppressed) = self.warnings.allow(now, WARN_INTERVAL) {
            tracing::warn!(error = %err, suppressed, "{what}; Redis failures are logged at most every 30 s");
        }
    }

    fn succeeded(&self) {
        let mut skip_until = self.skip_until.lock().unwrap_or_else(|p| p.into_inner());
        if skip_until.is_some() {
            *skip_until = None;
        }
    }
}

/// Rate-limits the warnings of one component: with Redis down, every request fails the same way.
#[derive(Debug, Default)]
pub struct WarnThrottle {
    last: Mutex<Option<Instant>>,
    suppressed: AtomicU64,
}

impl WarnThrottle {
    /// `Some(n)` when a warning may be logged at `now` (`n` warnings were left out since the last
    /// one), `None` when this one is to be left out.
    pub fn allow(&self, now: Instant, interval: Duration) -> Option<u64> {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        match *last {
            Some(at) if now.saturating_duration_since(at) < interval => {
                self.suppressed.fetch_add(1, Ordering::Relaxed);
                None
            }
            _ => {
                *last = Some(now);
                Some(self.suppressed.swap(0, Ordering::Relaxed))
            }
        }
    }
}

/// Whether an entry can change after it is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// May be replaced by a later write (a workflow's draft): bounded by the L1 TTL.
    Mutable,
    /// Never changes once written (a published version).
    Immutable,
}

#[derive(Clone)]
struct Entry {
    value: Arc<[u8]>,
    stored: Instant,
    kind: Kind,
}

/// Connects to Redis once; clones share the connection.
pub async fn connect(url: &str) -> Result<ConnectionManager, CacheError> {
    let client = redis::Client::open(url)?;
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(3)))
        .set_response_timeout(Some(Duration::from_secs(2)))
        .set_number_of_retries(2);
    Ok(client.get_connection_manager_with_config(config).await?)
}

/// The two-level cache. Cheap to clone.
#[derive(Clone)]
pub struct Cache {
    redis: ConnectionManager,
    l1: Arc<Mutex<LruCache<String, Entry>>>,
    l1_ttl: Duration,
    l2_ttl_seconds: u64,
    namespace: Arc<str>,
    health: Arc<Health>,
}

impl Cache {
    /// `namespace` prefixes every Redis key (tests use their own so they never collide).
    pub fn new(
        redis: ConnectionManager,
        namespace: &str,
        l1_capacity: usize,
        l1_ttl: Duration,
        l2_ttl_seconds: u64,
    ) -> Self {
        let capacity = NonZeroUsize::new(l1_capacity).unwrap_or(NonZeroUsize::MIN);
        Self {
            redis,
            l1: Arc::new(Mutex::new(LruCache::new(capacity))),
            l1_ttl,
            l2_ttl_seconds,
            namespace: Arc::from(namespace),
            health: Arc::default(),
        }
    }

    /// Notes a failed Redis operation (logged at most once per [`WARN_INTERVAL`]).
    fn warn(&self, what: &str, err: &redis::RedisError) {
        self.health.failed(what, err);
    }

    fn redis_key(&self, key: &str) -> String {
        format!("{}:c:{key}", self.namespace)
    }

    fn l1_get(&self, key: &str) -> Option<Arc<[u8]>> {
        let mut l1 = self.l1.lock().unwrap_or_else(|p| p.into_inner());
        let fresh = match l1.get(key) {
            None => return None,
            Some(e) => e.kind == Kind::Immutable || e.stored.elapsed() < self.l1_ttl,
        };
        if fresh {
            l1.get(key).map(|e| e.value.clone())
        } else {
            l1.pop(key);
            None
        }
    }

    fn l1_put(&self, key: &str, value: Arc<[u8]>, kind: Kind) {
        let mut l1 = self.l1.lock().unwrap_or_else(|p| p.into_inner());
        l1.put(key.to_owned(), Entry { value, stored: Instant::now(), kind });
    }

    /// L1, then L2 (filling L1 on a hit).
    pub async fn get(&self, key: &str) -> Option<Arc<[u8]>> {
        if let Some(v) = self.l1_get(key) {
            return Some(v);
        }
        if self.health.skipping() {
            return None;
        }
        let mut conn = self.redis.clone();
        let found: Result<Option<Vec<u8>>, _> = redis::cmd("GET").arg(self.redis_key(key)).query_async(&mut conn).await;
        if found.is_ok() {
            self.health.succeeded();
        }
        match found {
            Ok(Some(bytes)) => {
                let value: Arc<[u8]> = Arc::from(bytes);
                // An L2 hit is at most as fresh as Redis, which writers invalidate.
                self.l1_put(key, value.clone(), Kind::Mutable);
                Some(value)
            }
            Ok(None) => None,
            Err(err) => {
                self.warn("cache read failed; treating as a miss", &err);
                None
            }
        }
    }

    /// Whether `key` is in this process's L1 (for tests and metrics).
    pub fn in_l1(&self, key: &str) -> bool {
        self.l1_get(key).is_some()
    }

    pub async fn put(&self, key: &str, value: Vec<u8>, kind: Kind) {
        let value: Arc<[u8]> = Arc::from(value);
        self.l1_put(key, value.clone(), kind);
        let mut conn = self.redis.clone();
        let done: Result<(), _> = redis::cmd("SET")
            .arg(self.redis_key(key))
            .arg(&*value)
            .arg("EX")
            .arg(self.l2_ttl_seconds)
            .query_async(&mut conn)
            .await;
        match done {
            Ok(()) => self.health.succeeded(),
            Err(err) => self.warn("cache write failed", &err),
        }
    }

    /// Stores `value` unless Redis already holds the key; returns whether it was stored.
    ///
    /// Readers fill the cache with this and writers with [`Cache::put`], so a reader that
    /// loaded an old row just before a write cannot overwrite the writer's newer value.
    pub async fn put_if_absent(&self, key: &str, value: Vec<u8>, kind: Kind) -> bool {
        // A reader's fill may be skipped: the next reader loads the row again.
        if self.health.skipping() {
            return false;
        }
        let value: Arc<[u8]> = Arc::from(value);
        let mut conn = self.redis.clone();
        let done: Result<Option<String>, _> = redis::cmd("SET")
            .arg(self.redis_key(key))
            .arg(&*value)
            .arg("NX")
            .arg("EX")
            .arg(self.l2_ttl_seconds)
            .query_async(&mut conn)
            .await;
        if done.is_ok() {
            self.health.succeeded();
        }
        match done {
            Ok(Some(_)) => {
                self.l1_put(key, value, kind);
                true
            }
            Ok(None) => false,
            Err(err) => {
                self.warn("cache write failed", &err);
                false
            }
        }
    }

    /// Drops `key` from L1 and Redis.
    pub async fn invalidate(&self, key: &str) {
        self.l1.lock().unwrap_or_else(|p| p.into_inner()).pop(key);
        let mut conn = self.redis.clone();
        let done: Result<(), _> = redis::cmd("DEL").arg(self.redis_key(key)).query_async(&mut conn).await;
        match done {
            Ok(()) => self.health.succeeded(),
            Err(err) => self.warn("cache invalidation failed", &err),
        }
    }
}

/// The answer of [`RateLimiter::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed { remaining: u64 },
    Limited { retry_after_seconds: u64 },
}

/// A fixed-window counter per tenant in Redis, shared by every process.
#[derive(Clone)]
pub struct RateLimiter {
    redis: ConnectionManager,
    script: Arc<redis::Script>,
    limit: u64,
    window_seconds: u64,
    namespace: Arc<str>,
    health: Arc<Health>,
}

// INCR and EXPIRE in one atomic step, so a counter can never be left without an expiry.
const WINDOW_SCRIPT: &str = r"
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('TTL', KEYS[1])
if ttl < 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {n, ttl}
";

impl RateLimiter {
    /// `limit` requests per `window_seconds` per tenant; a `limit` of 0 disables limiting.
    pub fn new(redis: ConnectionManager, namespace: &str, limit: u64, window_seconds: u64) -> Self {
        Self {
            redis,
            script: Arc::new(redis::Script::new(WINDOW_SCRIPT)),
            limit,
            window_seconds: window_seconds.max(1),
            namespace: Arc::from(namespace),
            health: Arc::default(),
        }
    }

    pub async fn check(&self, tenant: &str) -> Decision {
        if self.limit == 0 {
            return Decision::Allowed { remaining: u64::MAX };
        }
        // Failing open: while Redis is failing, do not make every request wait for it.
        if self.health.skipping() {
            return Decision::Allowed { remaining: self.limit };
        }
        let mut conn = self.redis.clone();
        let key = format!("{}:rl:{tenant}", self.namespace);
        let result: Result<(u64, i64), _> = self.script.key(key).arg(self.window_seconds).invoke_async(&mut conn).await;
        if result.is_ok() {
            self.health.succeeded();
        }
        match result {
            Ok((count, _)) if count <= self.limit => Decision::Allowed { remaining: self.limit - count },
            Ok((_, ttl)) => Decision::Limited { retry_after_seconds: ttl.max(1) as u64 },
            Err(err) => {
                self.health.failed("rate limiter unavailable; allowing requests", &err);
                Decision::Allowed { remaining: self.limit }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_are_let_through_once_per_interval_with_the_count_left_out() {
        let throttle = WarnThrottle::default();
        let t0 = Instant::now();
        let interval = Duration::from_secs(30);
        assert_eq!(throttle.allow(t0, interval), Some(0), "the first failure is logged");
        for i in 1..=100 {
            assert_eq!(throttle.allow(t0 + Duration::from_millis(i * 100), interval), None, "failure {i} is left out");
        }
        assert_eq!(throttle.allow(t0 + interval, interval), Some(100), "then one line says how many were left out");
        assert_eq!(throttle.allow(t0 + interval + Duration::from_secs(1), interval), None);
        assert_eq!(throttle.allow(t0 + interval * 3, interval), Some(1));
    }
}
