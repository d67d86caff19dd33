//! `weft serve`: the Weft API on localhost, against the Postgres and Redis of the `WEFT_*`
//! configuration (see `scripts/dev-services` for local ones). It serves exactly the router the
//! api Lambda function serves, plus a Step Functions-compatible endpoint (`POST /` with
//! `X-Amz-Target: AWSStepFunctions.*`, from `sfn-server`) that runs executions on Weft's engine
//! with the node functions in-process.
//!
//! The api talks to that endpoint through `aws-sdk-sfn` over HTTP, exactly as it talks to AWS in
//! the cloud: the listener is bound first so the api's client can point at its real address.
//! (With `WEFT_SFN_ENDPOINT` or `WEFT_SFN_ENABLED` set, the api uses that Step Functions instead;
//! the local endpoint is still served.)
//!
//! A recorder loop copies every unfinished execution's history into node-level events and final
//! statuses (`fn_api::executions::record_active`), as the `recorder` Lambda does from EventBridge
//! in AWS.
//!
//! Restarts: executions RUNNING when the process died are marked FAILED with error
//! `Weft.EngineRestarted` by the endpoint at start-up; the recorder then records that on their
//! `executions` rows, and they can be redriven (`POST /v1/executions/{id}/redrive`). Rows whose
//! start was interrupted before Step Functions answered become FAILED with
//! `Weft.StartInterrupted`. Nothing is resumed implicitly, since Tasks may have side effects.

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
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")?;
    runtime.block_on(serve(args, config))
}

async fn serve(args: Args, config: config::Config) -> anyhow::Result<ExitCode> {
    let addr = SocketAddr::new(args.host, args.port);
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr().unwrap_or(addr);
    // The api reaches the endpoint on loopback even when bound to all interfaces.
    let endpoint_host = if local.ip().is_unspecified() { Ipv4Addr::LOCALHOST.into() } else { local.ip() };
    let endpoint = format!("http://{}", SocketAddr::new(endpoint_host, local.port()));
    let own_client = match config.sfn {
        config::SfnConfig::Off => Some(sfn_server::sdk::local_client(&endpoint)),
        config::SfnConfig::On { .. } => None,
    };
    let state = fn_api::AppState::connect_with(&config, !args.no_migrate, own_client).await?;

    // Secrets come from the tenant owning each execution (found by its ARN), sealed with the
    // api's key: the same resolver the deployed functions use, on the api's pool.
    let secrets = local_functions::tenant_secrets::PgSecretResolver::new(
        state.store().pool().clone(),
        local_functions::tenant_secrets::SecretsKey::new(&config.secrets_key),
    );
    let invoker = local_functions::LocalFunctions::from_env()
        .context("configuring the node functions")?
        .with_secrets(Arc::new(secrets))
        .with_approval(local_functions::fn_approval::ApprovalFunction::new(state.store().pool().clone()));
    let sfn_store = Arc::new(sfn_server::PgStore::from_pool(state.store().pool().clone()));
    let (sfn, recovery) = sfn_server::SfnState::open_with_report(sfn_store, engine::EngineConfig::new(Arc::new(invoker)))
        .await
        .context("opening the Step Functions endpoint")?;
    eprintln!("weft serve: listening on http://{local} (OpenAPI at /openapi.json, Step Functions at {endpoint}/)");
    tracing::info!(?recovery, "step functions endpoint ready");
    match fn_api::executions::fail_interrupted_starts(&state).await {
        Ok(0) => {}
        Ok(n) => tracing::warn!(count = n, "executions whose start was interrupted by a restart are now FAILED"),
        Err(err) => tracing::warn!(%err, "could not check for interrupted starts"),
    }
    tokio::spawn(recorder(state.clone()));
    fn_api::schedules::spawn(state.clone());
    // No graceful shutdown: requests are short and every write is one transaction, so being
    // killed mid-request loses nothing committed; running executions are handled at restart.
    axum::serve(listener, fn_api::app(state).merge(sfn_server::router(sfn))).await.context("serving")?;
    Ok(ExitCode::SUCCESS)
}

/// Keeps `executions` rows and `execution_events` current for every unfinished execution.
/// An execution whose history did not change is looked at less and less often (250 ms doubling
/// to 5 s), so thousands of long waits (delays, approvals) cost little; readers of an execution
/// (GET, SSE) record it themselves, so they never wait for this loop.
async fn recorder(state: fn_api::AppState) {
    use futures::StreamExt as _;
    use std::collections::HashMap;
    use std::time::Instant;
    let base = Duration::from_millis(
        std::env::var("WEFT_RECORDER_INTERVAL_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(250),
    );
    let max = Duration::from_secs(5).max(base);
    let mut schedule: HashMap<uuid::Uuid, (Instant, Duration)> = HashMap::new();
    loop {
        match fn_api::executions::active_ids(&state, 10_000).await {
            Ok(ids) => {
                let now = Instant::now();
                let live: std::collections::HashSet<_> = ids.iter().copied().collect();
                schedule.retain(|id, _| live.contains(id));
                let due: Vec<_> = ids.into_iter().filter(|id| schedule.get(id).is_none_or(|(at, _)| *at <= now)).collect();
                let results: Vec<_> = futures::stream::iter(due)
                    .map(|id| {
                        let state = state.clone();
                        async move { (id, fn_api::executions::record(&state, id).await) }
                    })
                    .buffer_unordered(8)
                    .collect()
                    .await;
                for (id, result) in results {
                    let interval = match result {
                        Ok(true) => base,
                        Ok(false) => schedule.get(&id).map_or(base, |(_, i)| (*i * 2).min(max)),
                        Err(err) => {
                            tracing::warn!(%err, execution = %id, "recording failed; will retry");
                            max
                        }
                    };
                    schedule.insert(id, (Instant::now() + interval, interval));
                }
            }
            Err(err) => tracing::warn!(%err, "recorder pass failed; retrying"),
        }
        tokio::time::sleep(base).await;
    }
}
