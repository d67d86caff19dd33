//! Where published versions go: a [`Publisher`] creates or updates the workflow's state machine,
//! publishes a state machine version and routes the `live` alias.
//!
//! [`SfnPublisher`] does that through `aws-sdk-sfn` (against AWS, or any endpoint that speaks the
//! Step Functions API, such as the one `weft serve` will provide). [`StoreOnly`] does nothing
//! remote: the compiled version is only stored, for set-ups with no Step Functions endpoint.

use async_trait::async_trait;
use aws_sdk_sfn::types::{RoutingConfigurationListItem, StateMachineType, Tag};
use uuid::Uuid;

/// What to publish.
#[derive(Debug, Clone)]
pub struct PublishRequest<'a> {
    pub tenant: &'a str,
    pub workflow_id: Uuid,
    pub version: i32,
    /// ASL JSON text.
    pub definition: &'a str,
    pub workflow_type: compiler::WorkflowType,
    /// Set once the workflow has been published through this publisher before.
    pub state_machine_arn: Option<&'a str>,
    pub alias_arn: Option<&'a str>,
}

/// ARNs of what was created; all `None` for [`StoreOnly`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Published {
    pub state_machine_arn: Option<String>,
    pub state_machine_version_arn: Option<String>,
    pub alias_arn: Option<String>,
}

/// Routing the `live` alias to a version.
#[derive(Debug, Clone)]
pub struct AliasRequest<'a> {
    pub state_machine_arn: Option<&'a str>,
    pub state_machine_version_arn: Option<&'a str>,
    pub alias_arn: Option<&'a str>,
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// Step Functions refused the request itself (e.g. the definition): retrying will not help.
    #[error("Step Functions refused the state machine: {0}")]
    Rejected(String),
    /// Step Functions could not be reached or failed: retrying may help.
    #[error("Step Functions is unavailable: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait Publisher: Send + Sync {
    /// Creates or updates the state machine, publishes a version and routes `live` to it.
    async fn publish(&self, req: PublishRequest<'_>) -> Result<Published, PublishError>;
    /// Routes `live` to an already published version; returns the alias ARN.
    async fn route_alias(&self, req: AliasRequest<'_>) -> Result<Option<String>, PublishError>;
}

/// Stores compiled versions only.
#[derive(Debug, Clone, Default)]
pub struct StoreOnly;

#[async_trait]
impl Publisher for StoreOnly {
    async fn publish(&self, _req: PublishRequest<'_>) -> Result<Published, PublishError> {
        Ok(Published::default())
    }

    async fn route_alias(&self, req: AliasRequest<'_>) -> Result<Option<String>, PublishError> {
        Ok(req.alias_arn.map(str::to_owned))
    }
}

/// Publishes through `aws-sdk-sfn`. Built once at start; the client is reused.
#[derive(Debug, Clone)]
pub struct SfnPublisher {
    client: aws_sdk_sfn::Client,
    role_arn: String,
}

const ALIAS_NAME: &str = "live";

impl SfnPublisher {
    pub fn new(client: aws_sdk_sfn::Client, role_arn: String) -> Self {
        Self { client, role_arn }
    }

    /// Builds the client from the environment's AWS configuration, with an endpoint override
    /// (and placeholder credentials when none are configured) for local endpoints.
    pub async fn from_config(endpoint: Option<&str>, region: Option<&str>, role_arn: String) -> Self {
        Self::new(executions::sfn_client(endpoint, region).await, role_arn)
    }

    /// The client, shared with executions.
    pub fn client(&self) -> &aws_sdk_sfn::Client {
        &self.client
    }

    fn routing(version_arn: &str) -> Result<RoutingConfigurationListItem, PublishError> {
        RoutingConfigurationListItem::builder()
            .state_machine_version_arn(version_arn)
            .weight(100)
            .build()
            .map_err(|e| PublishError::Rejected(e.to_string()))
    }
}

fn sdk_error<E: aws_sdk_sfn::error::ProvideErrorMetadata + std::fmt::Debug>(err: E) -> PublishError {
    let code = err.code().unwrap_or("").to_owned();
    let message = err.message().unwrap_or("").to_owned();
    match code.as_str() {
        "InvalidDefinition"
        | "InvalidArn"
        | "InvalidName"
        | "ValidationException"
        | "StateMachineTypeNotSupported"
        | "StateMachineDeleting"
        | "ConflictException"
        | "StateMachineAlreadyExists" => PublishError::Rejected(format!("{code}: {message}")),
        _ => PublishError::Unavailable(format!("{code}: {message} ({err:?})")),
    }
}

#[async_trait]
impl Publisher for SfnPublisher {
    async fn publish(&self, req: PublishRequest<'_>) -> Result<Published, PublishError> {
        let description = format!("weft version {}", req.version);
        let (state_machine_arn, version_arn) = match req.state_machine_arn {
            None => {
                let kind = match req.workflow_type {
                    compiler::WorkflowType::Standard => StateMachineType::Standard,
                    compiler::WorkflowType::Express => StateMachineType::Express,
                };
                let tag = Tag::builder().key("weft:tenant").value(req.tenant).build();
                let out = self
                    .client
                    .create_state_machine()
                    .name(format!("weft-{}", req.workflow_id))
                    .definition(req.definition)
                    .role_arn(&self.role_arn)
                    .r#type(kind)
                    .publish(true)
                    .version_description(description)
                    .tags(tag)
                    .send()
                    .await
                    .map_err(sdk_error)?;
                (out.state_machine_arn().to_owned(), out.state_machine_version_arn().map(str::to_owned))
            }
            Some(arn) => {
                let out = self
                    .client
                    .update_state_machine()
                    .state_machine_arn(arn)
                    .definition(req.definition)
                    .publish(true)
                    .version_description(description)
                    .send()
                    .await
                    .map_err(sdk_error)?;
                (arn.to_owned(), out.state_machine_version_arn().map(str::to_owned))
            }
        };
        let version_arn = version_arn
            .ok_or_else(|| PublishError::Unavailable("Step Functions returned no state machine version ARN".into()))?;
        let alias_arn = self
            .route_alias(AliasRequest {
                state_machine_arn: Some(&state_machine_arn),
                state_machine_version_arn: Some(&version_arn),
                alias_arn: req.alias_arn,
            })
            .await?;
        Ok(Published {
            state_machine_arn: Some(state_machine_arn),
            state_machine_version_arn: Some(version_arn),
            alias_arn,
        })
    }

    async fn route_alias(&self, req: AliasRequest<'_>) -> Result<Option<String>, PublishError> {
        let Some(version_arn) = req.state_machine_version_arn else {
            // A version stored before publishing was enabled has nothing to route to.
            return Err(PublishError::Rejected("this version was never published to Step Functions".into()));
        };
        let routing = Self::routing(version_arn)?;
        match req.alias_arn {
            Some(alias) => {
                self.client
                    .update_state_machine_alias()
                    .state_machine_alias_arn(alias)
                    .routing_configuration(routing)
                    .send()
                    .await
                    .map_err(sdk_error)?;
                Ok(Some(alias.to_owned()))
            }
            None => {
                let out = self
                    .client
                    .create_state_machine_alias()
                    .name(ALIAS_NAME)
                    .routing_configuration(routing)
                    .send()
                    .await
                    .map_err(sdk_error)?;
                let _ = req.state_machine_arn;
                Ok(Some(out.state_machine_alias_arn().to_owned()))
            }
        }
    }
}
