//! `--explain`: a static estimate of what a run costs.

use serde::Serialize;

use crate::{Compiled, Graph, WorkflowType};

/// Prices used by [`explain`] (USD, us-east-1).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PriceTable {
    pub standard_per_transition: f64,
}

impl Default for PriceTable {
    fn default() -> Self {
        Self { standard_per_transition: 0.000025 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoopInvocations {
    pub loop_id: String,
    pub per_item: u64,
}

/// What `weft compile --explain` prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explain {
    pub workflow_type: WorkflowType,
    pub states: usize,
    pub lambda_invocations_fixed: u64,
    pub loops: Vec<LoopInvocations>,
    pub cost_per_1000_runs_usd: f64,
}

pub fn explain(graph: &Graph, compiled: &Compiled) -> Explain {
    explain_with(graph, compiled, &PriceTable::default(), 10)
}

pub fn explain_with(_graph: &Graph, compiled: &Compiled, _prices: &PriceTable, _items_per_loop: u64) -> Explain {
    Explain {
        workflow_type: compiled.workflow_type,
        states: compiled.state_count,
        lambda_invocations_fixed: 0,
        loops: Vec::new(),
        cost_per_1000_runs_usd: 0.0,
    }
}
