//! State machines, their versions and aliases: CreateStateMachine, UpdateStateMachine,
//! DescribeStateMachine, PublishStateMachineVersion, CreateStateMachineAlias,
//! UpdateStateMachineAlias and ListStateMachines. Changes run under the service's `admin` lock,
//! which allocates version numbers. Definitions are validated here; `states:startExecution` Tasks
//! find state machines in the store, as StartExecution does (`children`).

use arn::{Qualifier, StateMachineArn};
use chrono::Utc;
use serde_json::{Map, Value, json};

use super::input::{self, ArnIn, CreateAliasIn, CreateIn, PageIn, PublishIn, RouteIn, UpdateAliasIn, UpdateIn};
use super::{Service, epoch, put_opt};
use crate::error::SfnError;
use crate::store::{AliasRecord, Route, StateMachineRecord, StoreError, VersionRecord};

/// The stored ARN of a state machine (always one [`Service::sm_arn`] built), parsed to qualify it.
fn stored_arn(sm: &StateMachineRecord) -> Result<StateMachineArn<'_>, SfnError> {
    StateMachineArn::parse(&sm.arn).map_err(|e| SfnError::Internal(format!("state machine {}: {e}", sm.name)))
}

impl Service {
    pub(super) async fn create_state_machine(&self, req: CreateIn) -> Result<Value, SfnError> {
        input::check_name(&req.name, "state machine")?;
        let kind = req.kind.unwrap_or_else(|| "STANDARD".into());
        if kind != "STANDARD" && kind != "EXPRESS" {
            return Err(SfnError::validation(format!("type must be STANDARD or EXPRESS, got '{kind}'")));
        }
        // Validated (and cached) before anything is stored.
        self.definition(&req.definition)?;
        let _g = self.admin.lock().await;
        let now = Utc::now();
        let rec = StateMachineRecord {
            name: req.name.clone(),
            arn: self.sm_arn(&req.name),
            definition: req.definition,
            role_arn: req.role_arn,
            kind,
            creation_date: now,
            update_date: None,
            revision_id: uuid::Uuid::new_v4().to_string(),
            description: req.description,
            logging_configuration: req.logging_configuration,
            tracing_configuration: req.tracing_configuration,
            last_version: 0,
        };
        if let Some(existing) = self.store.get_state_machine(&req.name).await? {
            // CreateStateMachine is idempotent for an identical machine, as in AWS.
            let same =
                existing.definition == rec.definition && existing.role_arn == rec.role_arn && existing.kind == rec.kind;
            if !same || req.publish == Some(true) {
                return Err(SfnError::new(
                    "StateMachineAlreadyExists",
                    format!("State Machine Already Exists: '{}'", existing.arn),
                ));
            }
            return Ok(json!({"stateMachineArn": existing.arn, "creationDate": epoch(existing.creation_date)}));
        }
        self.store.create_state_machine(&rec).await.map_err(|e| match e {
            StoreError::Conflict => {
                SfnError::new("StateMachineAlreadyExists", format!("State Machine Already Exists: '{}'", rec.arn))
            }
            other => other.into(),
        })?;
        let mut out = Map::new();
        out.insert("stateMachineArn".into(), rec.arn.clone().into());
        out.insert("creationDate".into(), epoch(now));
        if req.publish == Some(true) {
            let v = self.publish_locked(rec, req.version_description).await?;
            out.insert("stateMachineVersionArn".into(), v.arn.into());
        }
        Ok(Value::Object(out))
    }

    /// Publishes the current revision (returning the existing version if it is already
    /// published, as AWS does). The caller holds `admin`.
    async fn publish_locked(
        &self,
        mut sm: StateMachineRecord,
        description: Option<String>,
    ) -> Result<VersionRecord, SfnError> {
        if sm.last_version > 0
            && let Some(v) = self.store.get_version(&sm.name, sm.last_version).await?
            && v.revision_id == sm.revision_id
        {
            return Ok(v);
        }
        let version = sm.last_version + 1;
        let v = VersionRecord {
            state_machine: sm.name.clone(),
            version,
            arn: stored_arn(&sm)?.with_version(version).to_string(),
            definition: sm.definition.clone(),
            role_arn: sm.role_arn.clone(),
            kind: sm.kind.clone(),
            revision_id: sm.revision_id.clone(),
            description,
            creation_date: Utc::now(),
        };
        self.store.create_version(&v).await?;
        sm.last_version = version;
        self.store.put_state_machine(&sm).await?;
        Ok(v)
    }

    pub(super) async fn update_state_machine(&self, req: UpdateIn) -> Result<Value, SfnError> {
        let name = match input::state_machine_arn(&req.state_machine_arn)? {
            StateMachineArn { name, qualifier: None, .. } => name,
            _ => {
                return Err(SfnError::validation(
                    "UpdateStateMachine takes an unqualified state machine ARN, not a version or alias ARN",
                ));
            }
        };
        if req.definition.is_none()
            && req.role_arn.is_none()
            && req.logging_configuration.is_none()
            && req.tracing_configuration.is_none()
            && req.publish != Some(true)
        {
            return Err(SfnError::new(
                "MissingRequiredParameter",
                "Update requires at least one of definition, roleArn, loggingConfiguration or tracingConfiguration",
            ));
        }
        if let Some(d) = &req.definition {
            self.definition(d)?;
        }
        let _g = self.admin.lock().await;
        let mut sm = self.machine(name, &req.state_machine_arn).await?;
        let changed = req.definition.as_ref().is_some_and(|d| *d != sm.definition)
            || req.role_arn.as_ref().is_some_and(|r| *r != sm.role_arn)
            || req.logging_configuration.is_some()
            || req.tracing_configuration.is_some();
        let now = Utc::now();
        if changed {
            if let Some(d) = req.definition {
                sm.definition = d;
            }
            if let Some(r) = req.role_arn {
                sm.role_arn = r;
            }
            if req.logging_configuration.is_some() {
                sm.logging_configuration = req.logging_configuration;
            }
            if req.tracing_configuration.is_some() {
                sm.tracing_configuration = req.tracing_configuration;
            }
            sm.revision_id = uuid::Uuid::new_v4().to_string();
            sm.update_date = Some(now);
            self.store.put_state_machine(&sm).await?;
        }
        let mut out = Map::new();
        out.insert("updateDate".into(), epoch(sm.update_date.unwrap_or(now)));
        out.insert("revisionId".into(), sm.revision_id.clone().into());
        if req.publish == Some(true) {
            let v = self.publish_locked(sm, req.version_description).await?;
            out.insert("stateMachineVersionArn".into(), v.arn.into());
        }
        Ok(Value::Object(out))
    }

    pub(super) async fn describe_state_machine(&self, req: ArnIn) -> Result<Value, SfnError> {
        let r = input::state_machine_arn(&req.state_machine_arn)?;
        let sm = self.machine(r.name, &req.state_machine_arn).await?;
        let mut out = Map::new();
        match r.qualifier {
            None => {
                out.insert("stateMachineArn".into(), sm.arn.clone().into());
                out.insert("definition".into(), sm.definition.clone().into());
                out.insert("roleArn".into(), sm.role_arn.clone().into());
                out.insert("creationDate".into(), epoch(sm.creation_date));
                out.insert("revisionId".into(), sm.revision_id.clone().into());
                put_opt(&mut out, "description", sm.description.clone().map(Value::from));
            }
            Some(Qualifier::Version(n)) => {
                let v = self
                    .store
                    .get_version(r.name, n)
                    .await?
                    .ok_or_else(|| SfnError::state_machine_does_not_exist(&req.state_machine_arn))?;
                out.insert("stateMachineArn".into(), v.arn.into());
                out.insert("definition".into(), v.definition.into());
                out.insert("roleArn".into(), v.role_arn.into());
                out.insert("creationDate".into(), epoch(v.creation_date));
                out.insert("revisionId".into(), v.revision_id.into());
                put_opt(&mut out, "description", v.description.map(Value::from));
            }
            Some(Qualifier::Alias(_)) => {
                return Err(SfnError::invalid_arn(&req.state_machine_arn));
            }
        }
        out.insert("name".into(), sm.name.into());
        out.insert("status".into(), "ACTIVE".into());
        out.insert("type".into(), sm.kind.into());
        out.insert(
            "loggingConfiguration".into(),
            sm.logging_configuration.unwrap_or_else(|| json!({"level": "OFF", "includeExecutionData": false})),
        );
        out.insert(
            "tracingConfiguration".into(),
            sm.tracing_configuration.unwrap_or_else(|| json!({"enabled": false})),
        );
        Ok(Value::Object(out))
    }

    pub(super) async fn publish(&self, req: PublishIn) -> Result<Value, SfnError> {
        let name = match input::state_machine_arn(&req.state_machine_arn)? {
            StateMachineArn { name, qualifier: None, .. } => name,
            _ => return Err(SfnError::validation("PublishStateMachineVersion takes an unqualified state machine ARN")),
        };
        let _g = self.admin.lock().await;
        let sm = self.machine(name, &req.state_machine_arn).await?;
        if let Some(r) = &req.revision_id
            && *r != sm.revision_id
        {
            return Err(SfnError::new(
                "ConflictException",
                format!("The revisionId '{r}' is not the state machine's current revision '{}'", sm.revision_id),
            ));
        }
        let v = self.publish_locked(sm, req.description).await?;
        Ok(json!({"creationDate": epoch(v.creation_date), "stateMachineVersionArn": v.arn}))
    }

    /// Checks an alias routing configuration: 1 or 2 existing versions of `sm`, weights 0..=100
    /// summing to 100.
    async fn routes(&self, sm: &str, routes: Vec<RouteIn>) -> Result<Vec<Route>, SfnError> {
        if routes.is_empty() || routes.len() > 2 {
            return Err(SfnError::validation("routingConfiguration must have 1 or 2 entries"));
        }
        let mut out = Vec::new();
        let mut total = 0i64;
        for r in routes {
            if !(0..=100).contains(&r.weight) {
                return Err(SfnError::validation(format!("weight must be between 0 and 100, got {}", r.weight)));
            }
            total += r.weight;
            match input::state_machine_arn(&r.state_machine_version_arn)? {
                StateMachineArn { name, qualifier: Some(Qualifier::Version(n)), .. } if name == sm => {
                    if self.store.get_version(name, n).await?.is_none() {
                        return Err(SfnError::new(
                            "ResourceNotFound",
                            format!("Resource not found: '{}'", r.state_machine_version_arn),
                        ));
                    }
                }
                _ => {
                    return Err(SfnError::validation(format!(
                        "'{}' is not a version ARN of state machine '{sm}'",
                        r.state_machine_version_arn
                    )));
                }
            }
            if out.iter().any(|o: &Route| o.version_arn == r.state_machine_version_arn) {
                return Err(SfnError::validation("routingConfiguration names the same version twice"));
            }
            out.push(Route { version_arn: r.state_machine_version_arn, weight: r.weight as u32 });
        }
        if total != 100 {
            return Err(SfnError::validation(format!("routing weights must add up to 100, got {total}")));
        }
        Ok(out)
    }

    pub(super) async fn create_alias(&self, req: CreateAliasIn) -> Result<Value, SfnError> {
        input::check_name(&req.name, "alias")?;
        if req.name.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SfnError::new(
                "InvalidName",
                format!("Invalid Name: '{}' (an alias name cannot be a number)", req.name),
            ));
        }
        let sm_name =
            match req.routing_configuration.first().map(|r| input::state_machine_arn(&r.state_machine_version_arn)) {
                Some(Ok(r)) => r.name.to_owned(),
                Some(Err(e)) => return Err(e),
                None => return Err(SfnError::validation("routingConfiguration must have 1 or 2 entries")),
            };
        let _g = self.admin.lock().await;
        let sm = self.machine(&sm_name, &self.sm_arn(&sm_name)).await?;
        let routing = self.routes(&sm.name, req.routing_configuration).await?;
        let arn = stored_arn(&sm)?.with_alias(&req.name).to_string();
        if let Some(existing) = self.store.get_alias(&sm.name, &req.name).await? {
            if existing.routing == routing && existing.description == req.description {
                return Ok(
                    json!({"stateMachineAliasArn": existing.arn, "creationDate": epoch(existing.creation_date)}),
                );
            }
            return Err(SfnError::new(
                "ConflictException",
                format!("An alias named '{}' already exists with another configuration", req.name),
            ));
        }
        let now = Utc::now();
        let rec = AliasRecord {
            state_machine: sm.name,
            name: req.name,
            arn: arn.clone(),
            description: req.description,
            routing,
            creation_date: now,
            update_date: None,
        };
        self.store.put_alias(&rec).await?;
        Ok(json!({"stateMachineAliasArn": arn, "creationDate": epoch(now)}))
    }

    pub(super) async fn update_alias(&self, req: UpdateAliasIn) -> Result<Value, SfnError> {
        let (sm, alias) = match input::state_machine_arn(&req.state_machine_alias_arn)? {
            StateMachineArn { name, qualifier: Some(Qualifier::Alias(a)), .. } => (name, a),
            _ => return Err(SfnError::invalid_arn(&req.state_machine_alias_arn)),
        };
        if req.description.is_none() && req.routing_configuration.is_none() {
            return Err(SfnError::validation("UpdateStateMachineAlias needs a description or a routingConfiguration"));
        }
        let _g = self.admin.lock().await;
        let mut rec = self.store.get_alias(sm, alias).await?.ok_or_else(|| {
            SfnError::new("ResourceNotFound", format!("Resource not found: '{}'", req.state_machine_alias_arn))
        })?;
        if let Some(r) = req.routing_configuration {
            rec.routing = self.routes(sm, r).await?;
        }
        if req.description.is_some() {
            rec.description = req.description;
        }
        let now = Utc::now();
        rec.update_date = Some(now);
        self.store.put_alias(&rec).await?;
        Ok(json!({"updateDate": epoch(now)}))
    }

    pub(super) async fn list_state_machines(&self, req: PageIn) -> Result<Value, SfnError> {
        let size = input::page_size(req.max_results)?;
        let from = input::token(req.next_token.as_deref())?.unwrap_or(0) as usize;
        let all = self.store.list_state_machines().await?;
        let items: Vec<Value> = all
            .iter()
            .skip(from)
            .take(size)
            .map(|sm| json!({"stateMachineArn": sm.arn, "name": sm.name, "type": sm.kind, "creationDate": epoch(sm.creation_date)}))
            .collect();
        let mut out = json!({"stateMachines": items});
        if from + size < all.len() {
            out["nextToken"] = (from + size).to_string().into();
        }
        Ok(out)
    }
}
