//! `weft conformance DIR`: runs the ASL conformance corpus (cases recorded against AWS Step
//! Functions; format in `engine/tests/conformance/README.md`). Prints one block per failing case
//! with what differed, then `N passed, M failed`. Exit code 0 when every case passed, 1 otherwise.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The directory of case files (`*.json`, or `asl/*.json` inside it).
    pub dir: PathBuf,
    /// Also print a line for every passing case.
    #[arg(long, short)]
    pub verbose: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let rt =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the tokio runtime")?;
    let results = rt
        .block_on(engine::conformance::run_dir(&args.dir))
        .with_context(|| format!("reading the cases in {}", args.dir.display()))?;
    let mut passed = 0usize;
    let mut failed = 0usize;
    for r in &results {
        match &r.failure {
            None => {
                passed += 1;
                if args.verbose {
                    println!("ok   {}", r.name);
                }
            }
            Some(diff) => {
                failed += 1;
                println!("FAIL {}", r.name);
                for line in diff.lines() {
                    println!("     {line}");
                }
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
