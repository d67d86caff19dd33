//! `weft serve`: the Weft API on localhost, against the Postgres and Redis of the `WEFT_*`
//! configuration (see `scripts/dev-services` for local ones). It serves exactly the router the
//! api Lambda function serves, and on a listener of its own a Step Functions-compatible endpoint
//! (`POST /` with `X-Amz-Target: AWSStepFunctions.*`, from `sfn-server`) that runs executions on
//! Weft's engine with the node functions in-process.
//!
//! The Step Functions endpoint is bound to 127.0.0.1 (`--sfn-host`, `--sfn-port`; any free port
//! by default) and answers only requests signed with AWS Signature Version 4 using the
//! credentials of `WEFT_SFN_ACCESS_KEY_ID` / `WEFT_SFN_SECRET_ACCESS_KEY`; when those are unset,
//! random credentials are generated at start, so only this process's api can call it. The API
//! listener does not answer the Step Functions protocol at all. Both addresses are printed at
//! start (the API's first).
//!
//! The api talks to that endpoint through `aws-sdk-sfn`, signing like any client, exactly as it
//! talks to AWS in the cloud; only the transport differs: its requests are handed to the
//! endpoint's router in this process (`sfn_server::sdk::InProcess`: verified and dispatched as
//! over HTTP, without a socket). Other clients use the listener. (With `WEFT_SFN_ENDPOINT` or `WEFT_SFN_ENABLED` set, the api uses that Step
//! Functions instead, with the AWS credentials of its environment; the local endpoint is still
//! served.)
//!
//! A recorder loop copies every unfinished execution's history into node-level events and final
//! statuses (`executions::Executions::run_recorder`), as the `recorder` Lambda does from
//! EventBridge in AWS.
//!
//! A relay publishes the domain events writes leave in the outbox to the Redis stream
//! `weft:domain-events` (`domain_events::spawn` with `RedisStreamSink`: at once while there are
//! any, else every 200 ms), as the Lambdas publish them to EventBridge in AWS.
//!
//! Restarts: executions RUNNING when the process died are marked FAILED with error
//! `Weft.EngineRestarted` by the endpoint at start-up (a database-only step: start-up never calls
//! this process's own listener, and every step is bounded by a timeout and logged); the recorder
//! then records that on their `executions` rows, and they can be redriven
//! (`POST /v1/executions/{id}/redrive`). Rows whose start was interrupted before Step Functions
//! answered are adopted if it did start them, or become FAILED with `Weft.StartInterrupted`: once
//! serving for what the previous process left, then every 5 s for rows older than a start can be.
//! Nothing is resumed implicitly, since Tasks may have side effects.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Port to listen on (127.0.0.1 unless --host says otherwise).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Address to bind.
    #[arg(long, default_value_t = Ipv4Addr::LOCALHOST.into())]
    pub host: std::net::IpAddr,
    /// Do not apply pending database migrations at start-up.
    #[arg(long)]
    pub no_migrate: bool,
    /// Port of the Step Functions endpoint, a listener of its own (0: any free port).
    #[arg(long, default_value_t = 0)]
    pub sfn_port: u16,
    /// Address the Step Functions endpoint binds. It verifies SigV4 signatures on any address,
    /// but only the api (and the clients you give its credentials) need to reach it.
    #[arg(long, default_value_t = Ipv4Addr::LOCALHOST.into())]
    pub sfn_host: std::net::IpAddr,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let config = match config::Config::from_env() {
        Ok(c) => c,
        Err(err) => {
            eprintln!("weft serve: {err}");
            return Ok(ExitCode::from(2));
        }
    };
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")?;
    runtime.block_on(serve(args, config))
}

/// How often the domain event relay looks at the outbox when it found nothing.
const DOMAIN_EVENTS_INTERVAL: Duration = Duration::from_millis(200);

/// How long each start-up step may take before `weft serve` gives up with a message naming it.
const STARTUP_STEP_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs one start-up step with a log line and a time bound.
async fn step<T, E: Into<anyhow::Error>>(
    what: &str,
    work: impl std::future::Future<Output = Result<T, E>>,
) -> anyhow::Result<T> {
    tracing::info!("start-up: {what}");
    match tokio::time::timeout(STARTUP_STEP_TIMEOUT, work).await {
        Ok(result) => result.map_err(Into::into).with_context(|| format!("start-up: {what}")),
        Err(_) => anyhow::bail!("start-up: {what} did not finish within {STARTUP_STEP_TIMEOUT:?}"),
    }
}

async fn serve(args: Args, config: config::Config) -> anyhow::Result<ExitCode> {
    let addr = SocketAddr::new(args.host, args.port);
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr().unwrap_or(addr);
    let sfn_addr = SocketAddr::new(args.sfn_host, args.sfn_port);
    let sfn_listener = tokio::net::TcpListener::bind(sfn_addr).await.with_context(|| {
        format!("cannot listen on {sfn_addr} for the Step Functions endpoint (--sfn-host, --sfn-port)")
    })?;
    let sfn_local = sfn_listener.local_addr().unwrap_or(sfn_addr);
    let (credentials, generated) = match &config.sfn_endpoint_credentials {
        Some(c) => (sfn_server::Credentials::new(&c.access_key_id, &c.secret_access_key), false),
        None => (sfn_server::Credentials::generate(), true),
    };
    // The api's own client reaches the endpoint in-process, once the endpoint is open (below).
    let transport = sfn_server::sdk::InProcess::new();
    let own_client = match config.sfn {
        config::SfnConfig::Off => Some(sfn_server::sdk::in_process_client(&transport, &credentials)),
        config::SfnConfig::On { .. } => None,
    };
    let state = step(
        "connecting to Postgres and Redis (and applying migrations)",
        fn_api::AppState::connect_with(&config, !args.no_migrate, own_client),
    )
    .await?;

    // One pool per role: request handlers, running executions and the recorder each have their
    // own, so none of them can exhaust the others' connections under load. The engine's and the
    // recorder's commits are deferred (nobody waits on them; see `store::Durability`); the api's
    // are flushed, and each flush makes every deferred commit before it durable too, so what a
    // client is answered (a `?wait=true` outcome, say) survives a crash.
    let engine_pool = step(
        "connecting the engine's pool",
        store::Store::connect_with(
            &config.database.url,
            config.database.engine_max_connections,
            store::Durability::Deferred,
        ),
    )
    .await?
    .pool()
    .clone();
    let recorder_store = step(
        "connecting the recorder's pool",
        store::Store::connect_with(
            &config.database.url,
            config.database.recorder_max_connections,
            store::Durability::Deferred,
        ),
    )
    .await?;
    // The row a start inserts before its execution starts is committed without waiting for the
    // flush: the start answers only after a flushed write on that row (on the api's pool).
    let start_store = step(
        "connecting the starts' pool",
        store::Store::connect_with(&config.database.url, config.database.max_connections, store::Durability::Deferred),
    )
    .await?;
    state.executions().set_deferred_store(start_store);
    // Asynchronous starts wait (at most 5 s) while 256 ended executions wait to be recorded.
    state.executions().set_backlog(executions::Backlog::new(256));
    let relay_pool = recorder_store.pool().clone();
    let recorder = state.executions().with_store(recorder_store);

    // Secrets come from the tenant owning each execution (found by its ARN), sealed with the
    // api's key: the same resolver the deployed functions use, on the api's pool.
    // The same records give the vector functions each execution's tenant (their data is scoped
    // by it), as the deployed fn-vector reads them.
    let secrets = Arc::new(local_functions::tenant_secrets::PgSecretResolver::new(
        state.store().pool().clone(),
        local_functions::tenant_secrets::SecretsKey::new(&config.secrets_key),
    ));
    // The llm and agent functions' tokens go to the execution's Redis token stream, which the
    // events endpoint forwards as `node_token` events.
    let invoker = local_functions::LocalFunctions::from_env()
        .context("configuring the node functions")?
        .with_secrets(secrets.clone())
        .with_tenants(secrets)
        .with_token_sink(Arc::new(
            local_functions::fn_llm::RedisSink::new(&config.redis.url).context("the model token stream's Redis")?,
        ))
        .with_approval(local_functions::fn_approval::ApprovalFunction::new(engine_pool.clone()));
    let sfn_store = Arc::new(sfn_server::PgStore::from_pool(engine_pool));
    // Recovery of executions a previous process left RUNNING reads and writes the database only,
    // never this process's own listener (which is not serving yet).
    let (sfn, recovery) = step(
        "opening the Step Functions endpoint (recovering interrupted executions)",
        sfn_server::SfnState::open_with_report(sfn_store, engine::EngineConfig::new(Arc::new(invoker))),
    )
    .await?;
    tracing::info!(?recovery, "step functions endpoint ready");
    sfn.set_child_namer(Arc::new(ChildRows(state.executions().clone())));
    let started_at = step("reading the database clock", state.executions().db_now()).await?;

    let api = fn_api::app(state.clone());
    let endpoint_app = sfn_server::router(sfn.clone(), sfn_server::Verifier::new([credentials.clone()]));
    transport.serve(endpoint_app.clone());
    // No graceful shutdown: requests are short and every write is one transaction, so being
    // killed mid-request loses nothing committed; running executions are handled at restart.
    let server = tokio::spawn(async move {
        tokio::try_join!(async { axum::serve(listener, api).await.context("serving the API") }, async {
            axum::serve(sfn_listener, endpoint_app).await.context("serving the Step Functions endpoint")
        },)
    });
    // One line, the API's address first (tests and scripts read it). The secret is never printed.
    let whose = if generated {
        "random credentials of this process; set WEFT_SFN_ACCESS_KEY_ID and WEFT_SFN_SECRET_ACCESS_KEY to call it yourself"
    } else {
        "credentials of WEFT_SFN_ACCESS_KEY_ID and WEFT_SFN_SECRET_ACCESS_KEY"
    };
    eprintln!(
        "weft serve: listening on http://{local} (OpenAPI at /openapi.json); Step Functions endpoint on http://{sfn_local} \
         (SigV4 with access key id {}: {whose})",
        credentials.access_key_id()
    );

    // Starts a previous process left half-done are resolved once this process serves, since
    // that needs the Step Functions endpoint (this process's own, or AWS's).
    let settings = executions::recorder::RecorderSettings::new(
        Duration::from_millis(config.recorder.interval_ms),
        state.waits().sync,
    );
    // Executions of this process's endpoint are recorded as they end (AWS's are polled).
    let ended = matches!(config.sfn, config::SfnConfig::Off).then(|| sfn.ended_executions());
    tokio::spawn(async move { recorder.run_recorder(settings, started_at, ended).await });
    executions::schedules::spawn(fn_api::trigger_routes::registry(&state), Arc::new(state.executions().clone()));
    // On the recorder's pool (deferred commits: a `published_at` an OS crash loses only means the
    // event is published again, which consumers deduplicate by id).
    match state.redis() {
        Some(redis) => {
            let sink = Arc::new(domain_events::RedisStreamSink::new(redis));
            domain_events::spawn(relay_pool, sink, DOMAIN_EVENTS_INTERVAL);
        }
        None => tracing::warn!("no Redis connection: domain events stay in the outbox"),
    }
    server.await.context("the server task")??;
    Ok(ExitCode::SUCCESS)
}

/// Child executions of `workflow` nodes get a row in their parent's tenant before they start
/// (`executions::Executions::adopt_child`), named after it, so they are listed, recorded and
/// resolve their tenant's secrets like the executions the api starts.
struct ChildRows(executions::Executions);

#[async_trait::async_trait]
impl sfn_server::ChildNamer for ChildRows {
    async fn name_child(&self, start: sfn_server::ChildStart<'_>) -> Result<Option<String>, (String, String)> {
        let child = executions::Child {
            parent_execution_arn: start.parent_execution_arn,
            state_machine_arn: start.state_machine_arn,
            version_arn: start.version_arn,
            input: start.input,
        };
        match self.0.adopt_child(child).await {
            Ok(id) => Ok(Some(id.to_string())),
            Err(e) => Err((e.error_name().to_owned(), e.to_string())),
        }
    }
}
