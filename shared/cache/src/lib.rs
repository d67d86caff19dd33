//! Redis in front of Postgres: a two-level cache (in-process L1 LRU, Redis L2) and per-tenant
//! rate limiting.
//!
//! Architecture invariant: the cache is never needed for correctness. Every Redis failure is
//! logged and treated as a miss (cache) or as "allowed" (rate limiting, failing open), so Redis
//! being down slows Weft down but does not break it. Callers put the tenant in every key.
//!
//! Staleness: a write invalidates the local L1 and Redis at once; another process's L1 may serve
//! a mutable entry for at most the L1 TTL after that. Immutable entries (published versions)
//! never go stale and have no L1 TTL.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lru::LruCache;
use redis::aio::ConnectionManager;

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cannot connect to Redis: {0}")]
    Connect(#[from] redis::RedisError),
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
}

impl Cache {
    /// `namespace` prefixes every Redis key (tests use their own so they never collide).
    pub fn new(redis: ConnectionManager, namespace: &str, l1_capacity: usize, l1_ttl: Duration, l2_ttl_seconds: u64) -> Self {
        let capacity = NonZeroUsize::new(l1_capacity).unwrap_or(NonZeroUsize::MIN);
        Self {
            redis,
            l1: Arc::new(Mutex::new(LruCache::new(capacity))),
            l1_ttl,
            l2_ttl_seconds,
            namespace: Arc::from(namespace),
        }
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
        let mut conn = self.redis.clone();
        let found: Result<Option<Vec<u8>>, _> = redis::cmd("GET").arg(self.redis_key(key)).query_async(&mut conn).await;
        match found {
            Ok(Some(bytes)) => {
                let value: Arc<[u8]> = Arc::from(bytes);
                // An L2 hit is at most as fresh as Redis, which writers invalidate.
                self.l1_put(key, value.clone(), Kind::Mutable);
                Some(value)
            }
            Ok(None) => None,
            Err(err) => {
                tracing::warn!(error = %err, "cache read failed; treating as a miss");
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
        if let Err(err) = done {
            tracing::warn!(error = %err, "cache write failed");
        }
    }

    /// Stores `value` unless Redis already holds the key; returns whether it was stored.
    ///
    /// Readers fill the cache with this and writers with [`Cache::put`], so a reader that
    /// loaded an old row just before a write cannot overwrite the writer's newer value.
    pub async fn put_if_absent(&self, key: &str, value: Vec<u8>, kind: Kind) -> bool {
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
        match done {
            Ok(Some(_)) => {
                self.l1_put(key, value, kind);
                true
            }
            Ok(None) => false,
            Err(err) => {
                tracing::warn!(error = %err, "cache write failed");
                false
            }
        }
    }

    /// Drops `key` from L1 and Redis.
    pub async fn invalidate(&self, key: &str) {
        self.l1.lock().unwrap_or_else(|p| p.into_inner()).pop(key);
        let mut conn = self.redis.clone();
        let done: Result<(), _> = redis::cmd("DEL").arg(self.redis_key(key)).query_async(&mut conn).await;
        if let Err(err) = done {
            tracing::warn!(error = %err, "cache invalidation failed");
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
        }
    }

    pub async fn check(&self, tenant: &str) -> Decision {
        if self.limit == 0 {
            return Decision::Allowed { remaining: u64::MAX };
        }
        let mut conn = self.redis.clone();
        let key = format!("{}:rl:{tenant}", self.namespace);
        let result: Result<(u64, i64), _> =
            self.script.key(key).arg(self.window_seconds).invoke_async(&mut conn).await;
        match result {
            Ok((count, _)) if count <= self.limit => Decision::Allowed { remaining: self.limit - count },
            Ok((_, ttl)) => Decision::Limited { retry_after_seconds: ttl.max(1) as u64 },
            Err(err) => {
                tracing::warn!(error = %err, "rate limiter unavailable; allowing the request");
                Decision::Allowed { remaining: self.limit }
            }
        }
    }
}
