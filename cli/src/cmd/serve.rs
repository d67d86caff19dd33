//! `weft serve`: the Weft API on localhost, against the Postgres and Redis of the `WEFT_*`
//! configuration (see `scripts/dev-services` for local ones). It serves exactly the router the
//! api Lambda function serves.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;

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
    let state = fn_api::AppState::connect(&config, !args.no_migrate).await?;
    let addr = SocketAddr::new(args.host, args.port);
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr().unwrap_or(addr);
    eprintln!("weft serve: listening on http://{local} (OpenAPI at /openapi.json)");
    // No graceful shutdown: requests are short and every write is one transaction, so being
    // killed mid-request loses nothing committed.
    axum::serve(listener, fn_api::app(state)).await.context("serving")?;
    Ok(ExitCode::SUCCESS)
}
