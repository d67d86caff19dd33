//! Diagnostics: every problem the compiler finds, with a stable code.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One problem. JSON: `{"severity", "code", "message", "node"?, "edge"?}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnostic {
    pub severity: Severity,
    /// Stable, kebab-case (see [`codes`]); tools may match on it.
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edge: Option<String>,
}

impl Diagnostic {
    pub fn error(code: &str, message: impl Into<String>) -> Self {
        Self { severity: Severity::Error, code: code.to_owned(), message: message.into(), node: None, edge: None }
    }

    pub fn warning(code: &str, message: impl Into<String>) -> Self {
        Self { severity: Severity::Warning, ..Self::error(code, message) }
    }

    pub fn at_node(mut self, node: impl Into<String>) -> Self {
        self.node = Some(node.into());
        self
    }

    pub fn at_edge(mut self, edge: impl Into<String>) -> Self {
        self.edge = Some(edge.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{sev}[{}]", self.code)?;
        if let Some(node) = &self.node {
            write!(f, " node `{node}`")?;
        }
        if let Some(edge) = &self.edge {
            write!(f, " edge `{edge}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// The stable diagnostic codes. Each one is documented in `docs/graph-format.md` and has a test
/// in `compiler/tests/diagnostics.rs`.
pub mod codes {
    /// The text is not JSON.
    pub const INVALID_JSON: &str = "invalid-json";
    /// The JSON does not have the graph's shape (e.g. `nodes` is not an array).
    pub const INVALID_SHAPE: &str = "invalid-shape";
    /// `format` is not `weft/v1`.
    pub const UNSUPPORTED_FORMAT: &str = "unsupported-format";
    pub const MISSING_START: &str = "missing-start";
    pub const MULTIPLE_STARTS: &str = "multiple-starts";
    /// A node id is not 1 to 64 of `[A-Za-z0-9_-]` (empty, too long, or with a space, dot, quote, ...).
    pub const INVALID_NODE_ID: &str = "invalid-node-id";
    pub const DUPLICATE_NODE_ID: &str = "duplicate-node-id";
    pub const DUPLICATE_EDGE_ID: &str = "duplicate-edge-id";
    pub const UNKNOWN_NODE_TYPE: &str = "unknown-node-type";
    pub const MISSING_FIELD: &str = "missing-field";
    pub const INVALID_FIELD: &str = "invalid-field";
    /// A `data` field this node type does not know (a warning: it is ignored).
    pub const UNKNOWN_FIELD: &str = "unknown-field";
    /// An edge names a node that does not exist.
    pub const DANGLING_EDGE: &str = "dangling-edge";
    pub const UNREACHABLE_NODE: &str = "unreachable-node";
    /// A node other than `end` (or a loop body's final node) has no way on.
    pub const DEAD_END: &str = "dead-end";
    pub const CYCLE: &str = "cycle";
    /// A condition/switch out-handle has no edge.
    pub const MISSING_HANDLE: &str = "missing-handle";
    /// An edge leaves from a handle the node does not have.
    pub const UNKNOWN_HANDLE: &str = "unknown-handle";
    /// Two edges leave the same handle, or a node other than `parallel` has several ways on.
    pub const DUPLICATE_HANDLE: &str = "duplicate-handle";
    /// A `parallel` node's branches do not all meet at one `join`.
    pub const UNJOINED_FORK: &str = "unjoined-fork";
    /// A `join` that does not close exactly one `parallel`'s branches.
    pub const BAD_JOIN: &str = "bad-join";
    /// A `parallel` with fewer than two branches.
    pub const SINGLE_BRANCH_FORK: &str = "single-branch-fork";
    /// A template or expression names a node that does not exist.
    pub const UNKNOWN_NODE_REFERENCE: &str = "unknown-node-reference";
    /// A template or expression names a node that has not always run before this one.
    pub const NOT_UPSTREAM: &str = "not-upstream";
    /// `item` or `index` used outside a loop body.
    pub const ITEM_OUTSIDE_LOOP: &str = "item-outside-loop";
    /// A template uses `args` outside the config of an agent's tool.
    pub const ARGS_OUTSIDE_TOOL: &str = "args-outside-tool";
    /// A `{{ ... }}` template that does not parse or has an unknown root.
    pub const INVALID_TEMPLATE: &str = "invalid-template";
    /// A template names a node whose output is not well defined (e.g. a `delay` after a merge).
    pub const NO_OUTPUT: &str = "no-output";
    /// `parentId` names a node that is not a loop, or a node that cannot be inside a loop.
    pub const INVALID_PARENT: &str = "invalid-parent";
    /// An edge connects a loop body node with a node outside that body.
    pub const CROSS_SCOPE_EDGE: &str = "cross-scope-edge";
    pub const EMPTY_LOOP_BODY: &str = "empty-loop-body";
    pub const LOOP_BODY_ENTRIES: &str = "loop-body-entries";
    pub const LOOP_BODY_EXITS: &str = "loop-body-exits";
    /// An `error` edge or `on_error` on a node that cannot fail, or both on one node.
    pub const INVALID_ERROR_HANDLING: &str = "invalid-error-handling";
    pub const INVALID_SETTINGS: &str = "invalid-settings";
    pub const INVALID_TRIGGER: &str = "invalid-trigger";
    /// `settings.type: express` but the graph needs a STANDARD workflow.
    pub const EXPRESS_INCOMPATIBLE: &str = "express-incompatible";
    /// The function map has no function for a node type the graph uses.
    pub const MISSING_FUNCTION: &str = "missing-function";
    /// The compiled state machine exceeds a Step Functions quota (e.g. 1 MB definition).
    pub const TOO_LARGE: &str = "too-large";

    /// Every code, for documentation and tests.
    pub const ALL: &[&str] = &[
        INVALID_JSON,
        INVALID_SHAPE,
        UNSUPPORTED_FORMAT,
        MISSING_START,
        MULTIPLE_STARTS,
        INVALID_NODE_ID,
        DUPLICATE_NODE_ID,
        DUPLICATE_EDGE_ID,
        UNKNOWN_NODE_TYPE,
        MISSING_FIELD,
        INVALID_FIELD,
        UNKNOWN_FIELD,
        DANGLING_EDGE,
        UNREACHABLE_NODE,
        DEAD_END,
        CYCLE,
        MISSING_HANDLE,
        UNKNOWN_HANDLE,
        DUPLICATE_HANDLE,
        UNJOINED_FORK,
        BAD_JOIN,
        SINGLE_BRANCH_FORK,
        UNKNOWN_NODE_REFERENCE,
        NOT_UPSTREAM,
        ITEM_OUTSIDE_LOOP,
        ARGS_OUTSIDE_TOOL,
        INVALID_TEMPLATE,
        NO_OUTPUT,
        INVALID_PARENT,
        CROSS_SCOPE_EDGE,
        EMPTY_LOOP_BODY,
        LOOP_BODY_ENTRIES,
        LOOP_BODY_EXITS,
        INVALID_ERROR_HANDLING,
        INVALID_SETTINGS,
        INVALID_TRIGGER,
        EXPRESS_INCOMPATIBLE,
        MISSING_FUNCTION,
        TOO_LARGE,
    ];
}
