//! The `database` node function: one SQL statement on a tenant's Postgres, its rows as JSON.
//!
//! **Config** (`data` of a `database` node, templates already resolved):
//! - `connection` (required): the *name* of a tenant secret whose value is the connection URL
//!   `postgres://user:password@host:port/database?sslmode=require`. The URL never enters the
//!   graph; it is resolved per execution for the tenant owning it ([`tenant_secrets::resolve_connection`]).
//!   Accepted parameters: `sslmode` (`disable`, `allow`, `prefer` (default), `require`,
//!   `verify-ca`), `application_name`, `connect_timeout` (ignored). Refused (`Config.Invalid`):
//!   other schemes, Unix sockets (`postgres:///db`, `%2F...` hosts), `host`/`hostaddr`
//!   parameters, several hosts, certificate file parameters (they name files of this process),
//!   and `sslmode=verify-full` (see "Address guard").
//! - `query` (required): the SQL text, one statement (it is prepared, so `a; b` is refused by Postgres).
//! - `params`: values bound as `$1, $2, ...`, never spliced into the SQL: a string binds as
//!   `text`, an integer as `int8`, another number as `float8`, a boolean as `bool`, an object or
//!   array as `jsonb`, `null` as a NULL of the type Postgres infers. `WHERE id = $1` with `[5]`
//!   works against any integer or numeric column; a string compared with a non-text column needs
//!   a cast (`$1::uuid`, `$1::timestamptz`).
//! - `read_only` (default false): the statement runs in a `READ ONLY` transaction, so Postgres
//!   refuses writes (`Database.Query`, SQLSTATE 25006).
//! - `max_rows` (default 1,000, at most `WEFT_DATABASE_MAX_ROWS`, default 10,000).
//! - `timeout_seconds` (default 30, at most 900): Postgres' `statement_timeout`, set with
//!   `SET LOCAL` in the statement's transaction, plus a client-side limit 2 s longer.
//!
//! Every statement runs in its own transaction (committed when it succeeds).
//!
//! **Output**: `{"rows": [{column: value}], "row_count": n, "columns": [{"name", "type"}]}`.
//! Values are mapped as the `decode` module's table says (numeric as exact strings, timestamps
//! as RFC 3339, bytea as base64, json as JSON). A statement without a result set (INSERT or
//! UPDATE without RETURNING) has `rows: []`, `columns: []` and `row_count` = rows affected.
//! Two columns of the same name: the row object keeps the last; `columns` lists both.
//!
//! **Streaming**: rows are read off the connection one by one; at row `max_rows + 1` the
//! function stops (`Database.TooManyRows`) and closes that connection rather than draining the
//! rest of the result, so memory stays flat whatever the query returns.
//!
//! **Address guard** (`net-guard`, allow-list `WEFT_HTTP_ALLOW`): the URL's host is resolved and
//! only permitted addresses are kept; the function then connects to exactly that IP address, so
//! there is no DNS-rebinding window. Loopback, private, link-local and metadata addresses (the
//! platform's own Postgres) are `Database.ForbiddenAddress` unless allow-listed, before any
//! connection is attempted. Because the connection is made to the IP address, TLS can verify
//! the certificate chain (`verify-ca`) but not the host name; `verify-full` is refused rather
//! than silently weakened.
//!
//! **Pools**: connections are kept per connection URL and address in a warm process (see `pool`).
//! Session state a statement leaves behind (a `SET` without `LOCAL`, a temporary table) stays
//! with its connection for later statements with the same URL, as with any pool.
//!
//! **Errors**: `Database.Connect` (refused, DNS, TLS, authentication, connection lost),
//! `Database.Query` (`SQLSTATE 42P01: relation "x" does not exist`, with Postgres' detail and
//! hint), `Database.Timeout` (SQLSTATE 57014 from `statement_timeout`, the client-side limit,
//! or a connection that did not open in time), `Database.TooManyRows`,
//! `Database.ForbiddenAddress`, `Config.Invalid` (a bad field, named), `Secret.NotFound` and
//! `Secret.Unavailable` (from the secret lookup). Every outcome goes through the secret
//! scrubber, so the URL and its password never appear in an output or a message.

mod config;
mod decode;
mod params;
mod pool;
mod settings;

use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt as _;
use node_contract::{NodeError, NodeEvent, NodeFunction, error_names};
use serde_json::{Map, Value, json};
use sqlx::postgres::{PgConnection, PgRow};
use sqlx::{
    AssertSqlSafe, Column as _, Connection as _, Either, Executor as _, Row as _, SqlSafeStr as _, Statement as _,
};
use tenant_secrets::{Connected, NoSecrets, SecretResolver};

use config::{Request, Target};
use pool::{CheckoutError, Pools};
pub use settings::{Settings, SettingsError};

/// How much longer than `statement_timeout` the function waits before giving up on the server.
const CLIENT_GRACE: Duration = Duration::from_secs(2);

/// The `database` function's handler; holds the connection pools for all invocations.
#[derive(Clone)]
pub struct DatabaseFunction {
    settings: Arc<Settings>,
    pools: Arc<Pools>,
    secrets: Arc<dyn SecretResolver>,
}

impl std::fmt::Debug for DatabaseFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseFunction").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl DatabaseFunction {
    pub fn new(settings: Settings) -> Self {
        let pools = Arc::new(Pools::new(&settings));
        Self { settings: Arc::new(settings), pools, secrets: Arc::new(NoSecrets) }
    }

    /// The settings from the environment (`WEFT_HTTP_ALLOW`, `WEFT_DATABASE_MAX_ROWS`), and no
    /// secret store (see [`Self::with_secrets`]).
    pub fn from_env() -> Result<Self, SettingsError> {
        Ok(Self::new(Settings::from_env()?))
    }

    /// Resolves the `connection` secret through `resolver` (the default, [`NoSecrets`], has none).
    pub fn with_secrets(mut self, resolver: Arc<dyn SecretResolver>) -> Self {
        self.secrets = resolver;
        self
    }

    /// How many connection pools this process keeps (at most `Settings::max_pools`).
    pub fn pool_count(&self) -> usize {
        self.pools.len()
    }

    pub async fn run(&self, event: NodeEvent) -> Result<Value, NodeError> {
        let Connected { config, connection, scrubber } =
            tenant_secrets::resolve_connection(&*self.secrets, &event, "connection").await?;
        let event = NodeEvent { config, ..event };
        let outcome = match event.config_object().and_then(|c| Request::parse(c, &self.settings)) {
            Ok(request) => self.execute(request, &connection).await,
            Err(e) => Err(e),
        };
        scrubber.result(outcome)
    }

    async fn execute(&self, request: Request, connection: &str) -> Result<Value, NodeError> {
        let target = Target::parse(connection)?;
        let where_ = format!("{}:{}", target.host, target.port);
        let connect_timeout = self.settings.connect_timeout.min(request.timeout + CLIENT_GRACE);
        let resolved = tokio::time::timeout(connect_timeout, self.settings.guard.resolve(&target.host, target.port))
            .await
            .map_err(|_| NodeError::new(error_names::DATABASE_TIMEOUT, format!("resolving {where_} timed out")))?;
        let addrs = resolved.map_err(|refused| match refused {
            net_guard::Refused::Forbidden(f) => NodeError::new(error_names::DATABASE_FORBIDDEN_ADDRESS, f.to_string()),
            other => NodeError::new(error_names::DATABASE_CONNECT, other.to_string()),
        })?;
        // One address, the same every time, so a name with several records keeps one pool.
        let Some(addr) = addrs.iter().min().copied() else {
            return Err(NodeError::new(error_names::DATABASE_CONNECT, format!("{where_} has no address")));
        };
        let pool = self.pools.get(pool::key(connection, addr), || target.options(addr.ip()));
        let client_timeout = request.timeout + CLIENT_GRACE;
        let mut lease = pool.checkout(client_timeout, connect_timeout).await.map_err(|e| match e {
            CheckoutError::Busy => NodeError::new(
                error_names::DATABASE_TIMEOUT,
                format!("every connection to {where_} stayed busy for {} ms", client_timeout.as_millis()),
            ),
            CheckoutError::ConnectTimeout => NodeError::new(
                error_names::DATABASE_TIMEOUT,
                format!("connecting to {where_} did not finish within {} ms", connect_timeout.as_millis()),
            ),
            CheckoutError::Connect(e) => connect_error(&e, &where_),
        })?;
        let Some(conn) = lease.conn() else {
            return Err(NodeError::new(error_names::DATABASE_CONNECT, "no connection"));
        };
        match tokio::time::timeout(client_timeout, statement(conn, &request, &where_)).await {
            Ok(Ok(output)) => {
                lease.release();
                Ok(output)
            }
            Ok(Err(Failure { error, reusable })) => {
                if reusable {
                    lease.release();
                }
                Err(error)
            }
            // The future holding the connection mid-exchange is gone: the lease closes it.
            Err(_) => Err(NodeError::new(
                error_names::DATABASE_TIMEOUT,
                format!("no result from {where_} within {} ms", client_timeout.as_millis()),
            )),
        }
    }
}

impl NodeFunction for DatabaseFunction {
    fn handle(&self, event: NodeEvent) -> impl Future<Output = Result<Value, NodeError>> + Send {
        self.run(event)
    }
}

/// A failed statement, and whether its connection is at a clean point to be reused.
struct Failure {
    error: NodeError,
    reusable: bool,
}

/// Runs the request in its own transaction on `conn`.
async fn statement(conn: &mut PgConnection, request: &Request, where_: &str) -> Result<Value, Failure> {
    // One round trip: the simple protocol runs both; the timeout is a number formatted by us.
    let begin = format!(
        "BEGIN{}; SET LOCAL statement_timeout = {}",
        if request.read_only { " READ ONLY" } else { "" },
        request.timeout.as_millis().max(1)
    );
    let mut tx = conn
        .begin_with(AssertSqlSafe(begin))
        .await
        .map_err(|e| Failure { reusable: false, error: query_error(&e, where_, request) })?;
    let outcome = rows(&mut tx, request, where_).await;
    match outcome {
        Ok(output) => match tx.commit().await {
            Ok(()) => Ok(output),
            // A failed COMMIT (a deferred constraint) leaves sqlx's transaction bookkeeping to the
            // transaction's drop; the connection is not worth trusting afterwards.
            Err(e) => Err(Failure { reusable: false, error: query_error(&e, where_, request) }),
        },
        Err(failure) if failure.reusable => {
            // After a Postgres error the connection waits, in a failed transaction, for this.
            let reusable = tx.rollback().await.is_ok();
            Err(Failure { reusable, ..failure })
        }
        // Mid-result: dropping the transaction only queues its ROLLBACK; the lease then closes
        // the connection without reading the rest.
        Err(failure) => Err(failure),
    }
}

async fn rows(conn: &mut PgConnection, request: &Request, where_: &str) -> Result<Value, Failure> {
    let sql = params::signed_sql(&request.sql, &request.params);
    let types: Vec<_> = request.params.iter().map(params::Param::type_info).collect();
    let failed = |e: sqlx::Error| Failure {
        // A Postgres error leaves the connection in step; anything else (IO, protocol) may not.
        reusable: e.as_database_error().is_some(),
        error: query_error(&e, where_, request),
    };
    let stmt = (&mut *conn).prepare_with(AssertSqlSafe(sql).into_sql_str(), &types).await.map_err(failed)?;
    let columns: Vec<Value> =
        stmt.columns().iter().map(|c| json!({"name": c.name(), "type": decode::type_name(c.type_info())})).collect();
    let names: Vec<String> = stmt.columns().iter().map(|c| c.name().to_owned()).collect();
    let mut query = stmt.query();
    for p in &request.params {
        query = query.bind(p.clone());
    }
    let mut stream = (&mut *conn).fetch_many(query);
    let mut rows = Vec::new();
    let mut affected = 0u64;
    while let Some(item) = stream.try_next().await.map_err(failed)? {
        match item {
            Either::Left(done) => affected += done.rows_affected(),
            Either::Right(row) => {
                if rows.len() == request.max_rows {
                    return Err(Failure {
                        reusable: false,
                        error: NodeError::new(
                            error_names::DATABASE_TOO_MANY_ROWS,
                            format!(
                                "the query returned more than max_rows = {} rows (stopped reading at row {}); \
                                 add a LIMIT or raise max_rows",
                                request.max_rows,
                                request.max_rows + 1
                            ),
                        ),
                    });
                }
                rows.push(row_json(&row, &names));
            }
        }
    }
    drop(stream);
    let row_count = if columns.is_empty() { affected } else { rows.len() as u64 };
    Ok(json!({"rows": rows, "row_count": row_count, "columns": columns}))
}

fn row_json(row: &PgRow, names: &[String]) -> Value {
    let mut map = Map::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let value = row.try_get_raw(i).map(decode::value).unwrap_or(Value::Null);
        map.insert(name.clone(), value);
    }
    Value::Object(map)
}

/// `SQLSTATE 23505: duplicate key value violates unique constraint "t_pkey" (detail: ...)`.
fn database_text(db: &dyn sqlx::error::DatabaseError) -> (String, String) {
    let code = db.code().map(|c| c.into_owned()).unwrap_or_else(|| "?????".into());
    let mut text = format!("SQLSTATE {code}: {}", db.message());
    if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
        if let Some(detail) = pg.detail() {
            text.push_str(&format!(" (detail: {detail})"));
        }
        if let Some(hint) = pg.hint() {
            text.push_str(&format!(" (hint: {hint})"));
        }
    }
    (code, text)
}

fn query_error(e: &sqlx::Error, where_: &str, request: &Request) -> NodeError {
    match e {
        sqlx::Error::Database(db) => {
            let (code, text) = database_text(db.as_ref());
            if code == "57014" {
                NodeError::new(
                    error_names::DATABASE_TIMEOUT,
                    format!("the statement ran past timeout_seconds = {}: {text}", request.timeout.as_secs_f64()),
                )
            } else {
                NodeError::new(error_names::DATABASE_QUERY, text)
            }
        }
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) => {
            NodeError::new(error_names::DATABASE_CONNECT, format!("the connection to {where_} failed: {e}"))
        }
        other => NodeError::new(error_names::DATABASE_QUERY, format!("{where_}: {other}")),
    }
}

fn connect_error(e: &sqlx::Error, where_: &str) -> NodeError {
    let detail = match e {
        sqlx::Error::Database(db) => database_text(db.as_ref()).1,
        other => other.to_string(),
    };
    NodeError::new(error_names::DATABASE_CONNECT, format!("connecting to {where_}: {detail}"))
}
