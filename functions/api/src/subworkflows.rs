//! `workflow` nodes at publish: each `workflow_id` is resolved to the state machine the node
//! starts, the child's `live` alias (so rolling the child back rolls its callers back too), and
//! a publish that would make workflows call each other in a circle is refused, naming the path.
//!
//! The children are looked up in the caller's tenant only: a graph naming another tenant's
//! workflow id finds nothing (`unknown-workflow`), exactly as if the id did not exist.
//!
//! The cycle check walks the live versions of the children, their children, and so on
//! (iteratively, at most [`MAX_WORKFLOWS`] workflows), looking for the workflow being published.
//! Publishing a parent checks its descendants; publishing a child later checks the graphs that
//! are live at that time, so every publish leaves the live graphs acyclic.

use std::collections::{BTreeMap, HashMap, VecDeque};

use compiler::{Diagnostic, Graph};
use uuid::Uuid;

use crate::error::ApiError;

/// The diagnostic codes of a publish refused here (the compiler's own are `compiler::codes`).
pub mod codes {
    /// A `workflow` node names a workflow this tenant does not have.
    pub const UNKNOWN_WORKFLOW: &str = "unknown-workflow";
    /// A `workflow` node names a workflow that has no published version yet.
    pub const UNPUBLISHED_WORKFLOW: &str = "unpublished-workflow";
    /// Workflows would call each other in a circle (A → B → A).
    pub const WORKFLOW_CYCLE: &str = "workflow-cycle";
}

/// How many workflows one publish may walk through when looking for cycles.
pub const MAX_WORKFLOWS: usize = 1000;

/// `workflow_id` → the alias ARN its `workflow` nodes start, for the graph of workflow `id`
/// being published; an error (422 with diagnostics) for missing or unpublished children and for
/// cycles.
pub async fn resolve(
    store: &store::Store,
    tenant: &str,
    id: Uuid,
    graph: &Graph,
) -> Result<BTreeMap<String, String>, ApiError> {
    let mut arns = BTreeMap::new();
    let mut problems = Vec::new();
    let mut children = Vec::new();
    for (node, wid) in compiler::workflow_calls(graph) {
        let Ok(child) = Uuid::parse_str(&wid) else {
            problems.push(
                Diagnostic::error(codes::UNKNOWN_WORKFLOW, format!("`data.workflow_id` {wid:?} is not a workflow id"))
                    .at_node(node),
            );
            continue;
        };
        if child == id {
            problems.push(
                Diagnostic::error(codes::WORKFLOW_CYCLE, format!("the workflow calls itself: {id} → {id}"))
                    .at_node(node),
            );
            continue;
        }
        match store.get_workflow(tenant, child).await {
            Ok(w) => match (w.live_version, w.alias_arn) {
                (Some(_), Some(alias)) => {
                    arns.insert(wid.clone(), alias);
                    children.push((node, child));
                }
                _ => problems.push(
                    Diagnostic::error(
                        codes::UNPUBLISHED_WORKFLOW,
                        format!("workflow {wid} (`{}`) has no published version yet; publish it first", w.name),
                    )
                    .at_node(node),
                ),
            },
            Err(store::StoreError::NotFound) => problems.push(
                Diagnostic::error(codes::UNKNOWN_WORKFLOW, format!("workflow {wid} does not exist in this tenant"))
                    .at_node(node),
            ),
            Err(e) => return Err(ApiError::store("workflow")(e)),
        }
    }
    if problems.is_empty()
        && let Some(problem) = find_cycle(store, tenant, id, children).await?
    {
        problems.push(problem);
    }
    if problems.is_empty() { Ok(arns) } else { Err(ApiError::invalid_graph(problems)) }
}

/// Breadth-first through the live graphs below `children`, looking for `root`.
async fn find_cycle(
    store: &store::Store,
    tenant: &str,
    root: Uuid,
    children: Vec<(String, Uuid)>,
) -> Result<Option<Diagnostic>, ApiError> {
    // Each workflow reached → the one it was reached from (the root's direct children: None).
    let mut came_from: HashMap<Uuid, Option<Uuid>> = HashMap::new();
    let mut first_node: HashMap<Uuid, String> = HashMap::new();
    let mut queue = VecDeque::new();
    for (node, child) in children {
        if came_from.insert(child, None).is_none() {
            first_node.insert(child, node);
            queue.push_back(child);
        }
    }
    while let Some(w) = queue.pop_front() {
        if came_from.len() > MAX_WORKFLOWS {
            return Err(ApiError::new(
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                "too_many_workflows",
                format!("the workflows this one calls reach more than {MAX_WORKFLOWS} others; flatten them"),
            ));
        }
        let Some(graph) = live_graph(store, tenant, w).await? else { continue };
        for (_, wid) in compiler::workflow_calls(&graph) {
            let Ok(next) = Uuid::parse_str(&wid) else { continue };
            if next == root {
                // root → ... → w → root
                let mut path = vec![root, w];
                let mut at = w;
                while let Some(Some(prev)) = came_from.get(&at) {
                    path.push(*prev);
                    at = *prev;
                }
                path.push(root);
                // `path` is root, w, parents of w ..., root: the middle part is reversed.
                let inner: Vec<Uuid> = path[1..path.len() - 1].iter().rev().copied().collect();
                let names: Vec<String> =
                    std::iter::once(root).chain(inner).chain(std::iter::once(root)).map(|u| u.to_string()).collect();
                let node = first_node.get(&at).cloned().unwrap_or_default();
                return Ok(Some(
                    Diagnostic::error(
                        codes::WORKFLOW_CYCLE,
                        format!("workflows would call each other in a circle: {}", names.join(" → ")),
                    )
                    .at_node(node),
                ));
            }
            if let std::collections::hash_map::Entry::Vacant(e) = came_from.entry(next) {
                e.insert(Some(w));
                queue.push_back(next);
            }
        }
    }
    Ok(None)
}

/// The graph of `id`'s live version, if it has one (a deleted or unpublished child calls nobody).
async fn live_graph(store: &store::Store, tenant: &str, id: Uuid) -> Result<Option<Graph>, ApiError> {
    let workflow = match store.get_workflow(tenant, id).await {
        Ok(w) => w,
        Err(store::StoreError::NotFound) => return Ok(None),
        Err(e) => return Err(ApiError::store("workflow")(e)),
    };
    let Some(live) = workflow.live_version else { return Ok(None) };
    let version = match store.get_version(tenant, id, live).await {
        Ok(v) => v,
        Err(store::StoreError::NotFound) => return Ok(None),
        Err(e) => return Err(ApiError::store("workflow")(e)),
    };
    Ok(compiler::parse_value(version.graph).ok())
}
