//! Lowering to ASL (in progress).

use crate::analysis::Analysis;
use crate::{CompileOptions, Compiled, Diagnostic, Graph};

pub fn lower(_graph: &Graph, _analysis: &Analysis, _options: &CompileOptions) -> Result<Compiled, Vec<Diagnostic>> {
    Err(vec![Diagnostic::error("unimplemented", "the compiler is being built")])
}
