//! The OpenAPI document, generated from the handlers' annotations and the DTO types.

use axum::response::IntoResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::{dto, error, routes};

#[derive(OpenApi)]
#[openapi(
    info(title = "Weft API", description = "Workflows, versions, secrets, executions, approvals and triggers of Weft tenants.", version = "1.0.0"),
    paths(
        routes::healthz,
        routes::compile,
        routes::create_workflow,
        routes::list_workflows,
        routes::get_workflow,
        routes::update_workflow,
        routes::delete_workflow,
        routes::publish_version,
        routes::list_versions,
        routes::get_version,
        routes::set_alias,
        routes::create_secret,
        routes::list_secrets,
        routes::delete_secret,
        routes::create_api_key,
        routes::list_api_keys,
        routes::revoke_api_key,
        crate::exec_routes::start_execution,
        crate::exec_routes::list_executions,
        crate::exec_routes::get_execution,
        crate::exec_routes::stop_execution,
        crate::exec_routes::redrive_execution,
        crate::exec_routes::execution_events,
        crate::approval_routes::list_approvals,
        crate::approval_routes::get_approval,
        crate::approval_routes::decide_approval,
        crate::trigger_routes::list_triggers,
        crate::trigger_routes::receive_webhook,
        crate::event_routes::send_event,
        crate::event_routes::list_dead_letters,
        crate::event_routes::redrive_dead_letters,
    ),
    components(schemas(error::ErrorBody, error::ErrorDetail, dto::DiagnosticDto, dto::DiagnosticsBody)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT or weft_ API key").build(),
            ),
        );
    }
}

/// `GET /openapi.json`.
pub async fn serve() -> impl IntoResponse {
    axum::Json(ApiDoc::openapi())
}
