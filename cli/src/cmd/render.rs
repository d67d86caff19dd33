//! `weft render GRAPH`: the graph as a Mermaid flowchart on stdout.
//!
//! Renders any graph that parses, valid or not (validation problems go to stderr as warnings of
//! the picture's accuracy). Exit 1 if the file is not a graph, 2 on IO errors.

use std::path::PathBuf;
use std::process::ExitCode;

use super::compile::{Format, read_input, report};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The workflow graph (weft/v1 JSON); `-` reads standard input.
    pub graph: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let text = read_input(&args.graph)?;
    match compiler::parse(&text) {
        Ok(graph) => {
            print!("{}", compiler::render_mermaid(&graph));
            Ok(ExitCode::SUCCESS)
        }
        Err(diags) => {
            report(&diags, Format::Text)?;
            Ok(ExitCode::from(1))
        }
    }
}
