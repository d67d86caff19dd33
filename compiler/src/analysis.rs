//! Validation: builds the node/edge index and reports every problem at once.

use crate::{Diagnostic, Graph};

/// The result of analysing a graph: diagnostics plus everything lowering needs.
pub struct Analysis {
    pub diagnostics: Vec<Diagnostic>,
}

pub fn analyze(_graph: &Graph) -> Analysis {
    Analysis { diagnostics: Vec::new() }
}
