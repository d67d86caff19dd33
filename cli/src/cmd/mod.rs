//! One module per subcommand. Each exposes `Args` (clap) and `run(Args) -> anyhow::Result<ExitCode>`.

pub mod compile;
pub mod conformance;
pub mod exec;
pub mod migrate;
pub mod render;
pub mod run;
pub mod serve;
