//! Connections kept across the invocations of one warm process: a small pool per connection
//! string and address, at most [`Settings::max_pools`] of them (least recently used closed first).
//!
//! Not sqlx's `Pool`: a connection goes back only when the function *releases* it after a clean
//! end of its transaction. A connection left mid-result (`Database.TooManyRows`, a client-side
//! timeout, a lost connection) is dropped, which closes its socket, instead of being drained
//! back into the pool; and connect errors come back as they are (sqlx's pool retries a refused
//! connection until its acquire timeout and then reports only that it timed out).
//!
//! Pools are keyed by a SHA-256 of the connection URL and the address, never by the URL itself.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lru::LruCache;
use sha2::{Digest, Sha256};
use sqlx::ConnectOptions as _;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::settings::Settings;

pub(crate) type Key = [u8; 32];

pub(crate) fn key(connection: &str, addr: std::net::SocketAddr) -> Key {
    let mut h = Sha256::new();
    h.update(connection.as_bytes());
    h.update([0]);
    h.update(addr.to_string().as_bytes());
    h.finalize().into()
}

pub(crate) struct Pools {
    pools: Mutex<LruCache<Key, Arc<Pool>>>,
    per_pool: usize,
    idle_timeout: Duration,
}

impl Pools {
    pub fn new(settings: &Settings) -> Self {
        let cap = NonZeroUsize::new(settings.max_pools).unwrap_or(NonZeroUsize::MIN);
        Self {
            pools: Mutex::new(LruCache::new(cap)),
            per_pool: settings.connections_per_pool.max(1),
            idle_timeout: settings.idle_timeout,
        }
    }

    /// The pool for `key`, created with `options` when there is none.
    pub fn get(&self, key: Key, options: impl FnOnce() -> PgConnectOptions) -> Arc<Pool> {
        let mut pools = self.pools.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(p) = pools.get(&key) {
            return p.clone();
        }
        let pool = Arc::new(Pool {
            options: options(),
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(self.per_pool)),
            idle_timeout: self.idle_timeout,
        });
        // The evicted pool's idle connections close when the last lease of it is gone.
        pools.push(key, pool.clone());
        pool
    }

    /// How many pools are kept (for tests).
    pub fn len(&self) -> usize {
        self.pools.lock().unwrap_or_else(std::sync::PoisonError::into_inner).len()
    }
}

pub(crate) struct Pool {
    options: PgConnectOptions,
    idle: Mutex<Vec<(PgConnection, Instant)>>,
    permits: Arc<Semaphore>,
    idle_timeout: Duration,
}

/// Why no connection could be had.
pub(crate) enum CheckoutError {
    /// Every connection of the pool stayed busy until the deadline.
    Busy,
    /// Opening a connection did not finish in time.
    ConnectTimeout,
    Connect(sqlx::Error),
}

impl Pool {
    /// An idle connection, or a new one; waits at most `wait` for a free slot and `connect` to
    /// open a connection.
    pub async fn checkout(self: &Arc<Self>, wait: Duration, connect: Duration) -> Result<Lease, CheckoutError> {
        let permit = tokio::time::timeout(wait, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| CheckoutError::Busy)?
            .map_err(|_| CheckoutError::Busy)?;
        let reused = {
            let mut idle = self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            // Most recently used first; the stale rest are closed (dropped) here.
            let mut found = None;
            while let Some((conn, since)) = idle.pop() {
                if since.elapsed() < self.idle_timeout {
                    found = Some(conn);
                    break;
                }
            }
            found
        };
        let conn = match reused {
            Some(c) => c,
            None => tokio::time::timeout(connect, self.options.connect())
                .await
                .map_err(|_| CheckoutError::ConnectTimeout)?
                .map_err(CheckoutError::Connect)?,
        };
        Ok(Lease { conn: Some(conn), pool: self.clone(), _permit: permit })
    }
}

/// A checked-out connection. Dropping it closes the connection; [`Lease::release`] returns it.
pub(crate) struct Lease {
    conn: Option<PgConnection>,
    pool: Arc<Pool>,
    _permit: OwnedSemaphorePermit,
}

impl Lease {
    pub fn conn(&mut self) -> Option<&mut PgConnection> {
        self.conn.as_mut()
    }

    /// Back to the pool, for a connection whose transaction ended cleanly.
    pub fn release(mut self) {
        if let Some(conn) = self.conn.take() {
            let mut idle = self.pool.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            idle.push((conn, Instant::now()));
        }
    }
}
