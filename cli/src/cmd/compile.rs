//! `weft compile GRAPH [--out FILE] [--functions MAP.json] [--format text|json] [--explain]`.
//!
//! Exit 0: compiled (ASL on stdout or in `--out`; warnings on stderr). Exit 1: the graph is
//! invalid (diagnostics on stderr, or as a JSON array on stdout with `--format json`). Exit 2:
//! usage or IO errors. With `--explain`, stdout gets the explanation instead of the ASL (write
//! the ASL with `--out` to have both).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use compiler::{CompileOptions, Diagnostic, FunctionMap};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The workflow graph (weft/v1 JSON); `-` reads standard input.
    pub graph: PathBuf,
    /// Write the ASL here instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// A JSON object of node type to Lambda function name, overriding the `${<Type>FunctionArn}`
    /// placeholders.
    #[arg(long, value_name = "MAP.json")]
    pub functions: Option<PathBuf>,
    /// How to print diagnostics (and the explanation).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Print the workflow type, state count, Lambda invocations per run and estimated cost.
    #[arg(long)]
    pub explain: bool,
    /// Items assumed per loop run for `--explain` totals.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub loop_items: u64,
}

/// Reads a file, or standard input for `-`.
pub fn read_input(path: &std::path::Path) -> anyhow::Result<String> {
    if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).context("reading standard input")?;
        Ok(s)
    } else {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
    }
}

/// Prints diagnostics as the format asks; JSON goes to stdout as one array.
pub fn report(diags: &[Diagnostic], format: Format) -> anyhow::Result<()> {
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(diags)?),
        Format::Text => {
            for d in diags {
                eprintln!("{d}");
            }
            let errors = diags.iter().filter(|d| d.is_error()).count();
            if errors > 0 {
                eprintln!("{errors} error(s); the graph was not compiled");
            }
        }
    }
    Ok(())
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let text = read_input(&args.graph)?;
    let mut options = CompileOptions::default();
    if let Some(path) = &args.functions {
        let map = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        options.functions =
            FunctionMap::from_json_overrides(&map).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    }
    let graph = match compiler::parse(&text) {
        Ok(g) => g,
        Err(diags) => {
            report(&diags, args.format)?;
            return Ok(ExitCode::from(1));
        }
    };
    let compiled = match compiler::compile(&graph, &options) {
        Ok(c) => c,
        Err(diags) => {
            report(&diags, args.format)?;
            return Ok(ExitCode::from(1));
        }
    };
    for w in &compiled.warnings {
        eprintln!("{w}");
    }
    let asl = serde_json::to_string_pretty(&compiled.asl)? + "\n";
    if let Some(out) = &args.out {
        std::fs::write(out, &asl).with_context(|| format!("writing {}", out.display()))?;
    }
    if args.explain {
        let explain = compiler::explain_with(&graph, &compiled, &compiler::PriceTable::default(), args.loop_items);
        match args.format {
            Format::Json => println!("{}", serde_json::to_string_pretty(&explain)?),
            Format::Text => print!("{explain}"),
        }
    } else if args.out.is_none() {
        print!("{asl}");
    }
    Ok(ExitCode::SUCCESS)
}
