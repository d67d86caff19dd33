//! `weft`: compile, run and serve Weft workflows.
//!
//! Each subcommand lives in its own module under `cmd/` and returns the process exit code; this
//! file only parses arguments and dispatches.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;

// glibc's malloc was a fifth of `weft serve`'s CPU under load (contended arenas, consolidation);
// mimalloc is the allocator of every thread, QuickJS's included (see `fn_code`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(name = "weft", version, about = "Turn workflow graphs into serverless executions")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate a workflow graph and compile it to Amazon States Language.
    Compile(cmd::compile::Args),
    /// Print a workflow graph as a Mermaid flowchart.
    Render(cmd::render::Args),
    /// Run an ASL state machine definition on the local engine.
    Exec(cmd::exec::Args),
    /// Run the ASL conformance corpus in a directory.
    Conformance(cmd::conformance::Args),
    /// Compile a workflow graph and run it locally with in-process node functions.
    Run(cmd::run::Args),
    /// Serve the Weft API on localhost.
    Serve(cmd::serve::Args),
    /// Apply the pending Postgres migrations of a deployment's database.
    Migrate(cmd::migrate::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Compile(args) => cmd::compile::run(args),
        Command::Render(args) => cmd::render::run(args),
        Command::Exec(args) => cmd::exec::run(args),
        Command::Conformance(args) => cmd::conformance::run(args),
        Command::Run(args) => cmd::run::run(args),
        Command::Serve(args) => cmd::serve::run(args),
        Command::Migrate(args) => cmd::migrate::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            // Usage and IO errors: every subcommand documents 2 for these.
            ExitCode::from(2)
        }
    }
}
