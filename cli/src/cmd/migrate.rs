//! `weft migrate [--database-url URL]`: applies Weft's pending Postgres migrations and exits.
//!
//! `weft serve` migrates at start; a deployment (the SAM stack's functions never migrate at cold
//! start) runs this once per release, before or right after `sam deploy`, with the stack's
//! database. The URL comes from `--database-url` or `WEFT_DATABASE_URL`.
//!
//! Exit 0: up to date. Exit 1: the database refused or is unreachable (the error on stderr).
//! Exit 2: no URL.

use std::process::ExitCode;

use anyhow::Context as _;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The Postgres URL (default: `WEFT_DATABASE_URL`).
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let url =
        match args.database_url.or_else(|| std::env::var("WEFT_DATABASE_URL").ok()).filter(|u| !u.trim().is_empty()) {
            Some(u) => u,
            None => {
                eprintln!("weft migrate: give --database-url or set WEFT_DATABASE_URL");
                return Ok(ExitCode::from(2));
            }
        };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting tokio")?;
    let done = runtime.block_on(async {
        let store = store::Store::connect(&url, 1).await.context("connecting to the database")?;
        store.migrate().await.context("applying the migrations")
    });
    match done {
        Ok(()) => {
            eprintln!("weft migrate: {} is up to date", config::redact_url(&url));
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("weft migrate: {e:#}");
            Ok(ExitCode::from(1))
        }
    }
}
