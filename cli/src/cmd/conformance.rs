//! `weft conformance DIR [--exclusions FILE]`: runs the ASL conformance corpus (cases recorded
//! against AWS Step Functions; format in `engine/tests/conformance/README.md`). Prints one block
//! per failing case with what differed, then `N passed, M failed`. With `--exclusions` (a file
//! like `engine/tests/conformance-exclusions.md`), listed cases may fail, and a listed case that
//! passes or names no case is a problem, exactly as in the engine's test
//! (`engine::conformance::judge`). Exit code 0 when the corpus conforms, 1 otherwise.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use engine::conformance::{Exclusions, judge, run_dir};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The directory of case files (`*.json`, or `asl/*.json` inside it).
    pub dir: PathBuf,
    /// Cases allowed to fail, one Markdown list item each: "- `case name`: reason".
    #[arg(long, value_name = "FILE")]
    pub exclusions: Option<PathBuf>,
    /// Also print a line for every passing case.
    #[arg(long, short)]
    pub verbose: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let exclusions = match &args.exclusions {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            Exclusions::parse(&text).with_context(|| format!("in {}", path.display()))?
        }
        None => Exclusions::default(),
    };
    let rt =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the tokio runtime")?;
    let results =
        rt.block_on(run_dir(&args.dir)).with_context(|| format!("reading the cases in {}", args.dir.display()))?;
    if args.verbose {
        for r in results.iter().filter(|r| r.passed()) {
            println!("ok   {}", r.name);
        }
    }
    let verdict = judge(&results, &exclusions);
    for (name, reason) in &verdict.excluded {
        println!("excluded {name}: {reason}");
    }
    for problem in verdict.problems() {
        let mut lines = problem.lines();
        if let Some(first) = lines.next() {
            println!("{first}");
        }
        for line in lines {
            println!("     {line}");
        }
    }
    let failed = results.len() - verdict.passed;
    match verdict.excluded.len() {
        0 => println!("{} passed, {failed} failed", verdict.passed),
        n => println!("{} passed, {failed} failed ({n} excluded)", verdict.passed),
    }
    Ok(if verdict.ok() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
