//! The seam that finds the tenant owning an execution: Milvus data is scoped by it, so it comes
//! from Weft's own records of the execution (never from the node's config or the graph).

use std::sync::Arc;

/// Finds the tenant owning an execution.
#[async_trait::async_trait]
pub trait TenantResolver: Send + Sync + 'static {
    /// The tenant id owning `execution_arn`; `Ok(None)` when Weft did not start it; `Err` (a
    /// message) when the records cannot be read.
    async fn tenant_of(&self, execution_arn: &str) -> Result<Option<String>, String>;
}

/// Postgres: the same lookup that resolves the tenant's secrets (`executions` joined with
/// `workflow_versions`, checking the ARN is the one Weft recorded, see
/// [`tenant_secrets::PgSecretResolver::tenant_of`]).
#[async_trait::async_trait]
impl TenantResolver for tenant_secrets::PgSecretResolver {
    async fn tenant_of(&self, execution_arn: &str) -> Result<Option<String>, String> {
        tenant_secrets::PgSecretResolver::tenant_of(self, execution_arn)
            .await
            .map_err(|e| format!("the execution's tenant cannot be read ({e})"))
    }
}

/// One tenant for every execution: `weft run` / `weft serve` (a single local tenant) and tests.
#[derive(Debug, Clone)]
pub struct StaticTenant(pub String);

impl StaticTenant {
    pub fn new(tenant: impl Into<String>) -> Self {
        Self(tenant.into())
    }
}

#[async_trait::async_trait]
impl TenantResolver for StaticTenant {
    async fn tenant_of(&self, _execution_arn: &str) -> Result<Option<String>, String> {
        Ok(Some(self.0.clone()))
    }
}

/// No tenant for any execution (the default until one is given): every call fails.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoTenants;

#[async_trait::async_trait]
impl TenantResolver for NoTenants {
    async fn tenant_of(&self, _execution_arn: &str) -> Result<Option<String>, String> {
        Ok(None)
    }
}

/// Tenants by execution ARN (tests that run two tenants through one function).
#[derive(Debug, Clone, Default)]
pub struct TenantsByExecution(pub Arc<std::collections::BTreeMap<String, String>>);

impl TenantsByExecution {
    pub fn new<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self(Arc::new(pairs.into_iter().map(|(a, t)| (a.to_owned(), t.to_owned())).collect()))
    }
}

#[async_trait::async_trait]
impl TenantResolver for TenantsByExecution {
    async fn tenant_of(&self, execution_arn: &str) -> Result<Option<String>, String> {
        Ok(self.0.get(execution_arn).cloned())
    }
}
