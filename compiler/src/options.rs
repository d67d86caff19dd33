//! Compile options: which Lambda function and which state machine each Task invokes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Node type → Lambda `FunctionName`. The default maps every function node type to its SAM
/// substitution placeholder, e.g. `http` → `${HttpFunctionArn}`
/// ([`node_contract::default_function_name`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FunctionMap(pub BTreeMap<String, String>);

impl Default for FunctionMap {
    fn default() -> Self {
        let map = node_contract::FUNCTIONS
            .iter()
            .filter_map(|(node_type, _)| {
                node_contract::default_function_name(node_type).map(|name| ((*node_type).to_owned(), name))
            })
            .collect();
        Self(map)
    }
}

impl FunctionMap {
    /// The defaults overridden by the entries of a JSON object `{"http": "arn:...", ...}`
    /// (the `--functions MAP.json` file of `weft compile`).
    pub fn from_json_overrides(json: &str) -> Result<Self, String> {
        let overrides: BTreeMap<String, String> = serde_json::from_str(json)
            .map_err(|err| format!("a function map is a JSON object of node type to function name: {err}"))?;
        let mut map = Self::default();
        map.0.extend(overrides);
        Ok(map)
    }

    pub fn get(&self, node_type: &str) -> Option<&str> {
        self.0.get(node_type).map(String::as_str)
    }

    pub fn insert(&mut self, node_type: impl Into<String>, function_name: impl Into<String>) {
        self.0.insert(node_type.into(), function_name.into());
    }
}

/// Options for [`crate::compile`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CompileOptions {
    pub functions: FunctionMap,
    /// `workflow` nodes: `workflow_id` → state machine ARN. Unmapped ids compile to the
    /// placeholder `${Workflow_<workflow_id>_Arn}` (see [`workflow_placeholder`]).
    pub workflows: BTreeMap<String, String>,
}

impl CompileOptions {
    /// The `StateMachineArn` a `workflow` node with this `workflow_id` starts.
    pub fn workflow_arn(&self, workflow_id: &str) -> String {
        self.workflows.get(workflow_id).cloned().unwrap_or_else(|| workflow_placeholder(workflow_id))
    }
}

/// `${Workflow_<id>_Arn}` with every character outside `[A-Za-z0-9_]` replaced by `_`, so it
/// is a valid SAM `DefinitionSubstitutions` key.
pub fn workflow_placeholder(workflow_id: &str) -> String {
    let clean: String =
        workflow_id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
    format!("${{Workflow_{clean}_Arn}}")
}
