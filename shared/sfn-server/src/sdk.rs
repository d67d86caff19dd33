//! Pointing `aws-sdk-sfn` at this endpoint.
//!
//! The SDK prepends the modeled host prefix `sync-` to the endpoint of `StartSyncExecution`, even
//! with a custom endpoint URL (`http://sync-127.0.0.1:...` does not resolve). [`StripHostPrefix`]
//! undoes that before the request is signed; [`local_client`] builds a client with it.
//!
//! [`in_process_client`] is the same client over [`InProcess`], a transport that hands each
//! request to the endpoint's router in this process instead of a TCP connection: the request is
//! signed, verified and dispatched exactly as over HTTP, without the sockets (`weft serve`'s api
//! uses it for its own endpoint).

use aws_sdk_sfn::config::interceptors::BeforeTransmitInterceptorContextMut;
use aws_sdk_sfn::config::{BehaviorVersion, ConfigBag, Credentials, Intercept, Region, RuntimeComponents};
use aws_sdk_sfn::error::BoxError;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_types::body::SdkBody;
use std::sync::{Arc, OnceLock};
use tower::ServiceExt as _;

/// An interceptor that removes the `sync-` host prefix from requests, for custom endpoints.
#[derive(Debug, Clone, Copy, Default)]
pub struct StripHostPrefix;

impl Intercept for StripHostPrefix {
    fn name(&self) -> &'static str {
        "StripHostPrefix"
    }

    fn modify_before_signing(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let req = context.request_mut();
        let uri = req.uri().to_owned();
        for scheme in ["http://", "https://"] {
            if let Some(rest) = uri.strip_prefix(scheme).and_then(|r| r.strip_prefix("sync-")) {
                req.set_uri(format!("{scheme}{rest}"))?;
                break;
            }
        }
        Ok(())
    }
}

/// A Step Functions client for the endpoint at `endpoint_url` (e.g. `http://127.0.0.1:8081`):
/// region `us-east-1`, requests signed with `credentials` (one of those the endpoint's
/// [`Verifier`](crate::Verifier) accepts), and [`StripHostPrefix`].
pub fn local_client(endpoint_url: &str, credentials: &crate::Credentials) -> aws_sdk_sfn::Client {
    aws_sdk_sfn::Client::from_conf(local_config(endpoint_url, credentials).build())
}

/// The configuration [`local_client`] uses, to adjust before building (e.g. a time source).
pub fn local_config(endpoint_url: &str, credentials: &crate::Credentials) -> aws_sdk_sfn::config::Builder {
    let credentials =
        Credentials::new(credentials.access_key_id(), credentials.secret_access_key(), None, None, "weft-sfn-server");
    aws_sdk_sfn::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(credentials)
        .endpoint_url(endpoint_url)
        .interceptor(StripHostPrefix)
}

/// The endpoint URL of [`in_process_client`]s: requests never leave the process, so the host is
/// only what they are signed for.
pub const IN_PROCESS_ENDPOINT: &str = "http://sfn.in-process";

/// A transport for `aws-sdk-sfn` that serves each request with this process's endpoint router
/// ([`crate::router`], signature check included) instead of sending it over TCP. Created before
/// the endpoint opens (the api's client is built first); requests fail with a connector error
/// until [`InProcess::serve`] is called.
#[derive(Debug, Clone, Default)]
pub struct InProcess {
    app: Arc<OnceLock<axum::Router>>,
}

impl InProcess {
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves requests with `app` from now on. Returns `false` (and keeps the first router) when
    /// called twice.
    pub fn serve(&self, app: axum::Router) -> bool {
        self.app.set(app).is_ok()
    }
}

impl HttpClient for InProcess {
    fn http_connector(&self, _: &HttpConnectorSettings, _: &RuntimeComponents) -> SharedHttpConnector {
        SharedHttpConnector::new(self.clone())
    }
}

impl HttpConnector for InProcess {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let app = self.app.get().cloned();
        HttpConnectorFuture::new(async move {
            let app =
                app.ok_or_else(|| ConnectorError::io("the in-process Step Functions endpoint is not open yet".into()))?;
            let request = request.try_into_http1x().map_err(|e| ConnectorError::other(e.into(), None))?;
            let (mut parts, body) = request.into_parts();
            // What hyper would send: the host the request was signed for.
            if !parts.headers.contains_key(axum::http::header::HOST)
                && let Some(host) =
                    parts.uri.authority().and_then(|a| axum::http::HeaderValue::from_str(a.as_str()).ok())
            {
                parts.headers.insert(axum::http::header::HOST, host);
            }
            // Step Functions requests are JSON documents, always in memory.
            let body = body
                .bytes()
                .map(axum::body::Bytes::copy_from_slice)
                .ok_or_else(|| ConnectorError::user("a streaming request body cannot be sent in-process".into()))?;
            let response = app
                .oneshot(axum::http::Request::from_parts(parts, axum::body::Body::from(body)))
                .await
                .unwrap_or_else(|never| match never {});
            let (parts, body) = response.into_parts();
            let body = axum::body::to_bytes(body, usize::MAX).await.map_err(|e| ConnectorError::io(e.into()))?;
            HttpResponse::try_from(axum::http::Response::from_parts(parts, SdkBody::from(body)))
                .map_err(|e| ConnectorError::other(e.into(), None))
        })
    }
}

/// A Step Functions client that calls this process's endpoint through `transport` (see
/// [`InProcess`]), signing with `credentials` like [`local_client`].
pub fn in_process_client(transport: &InProcess, credentials: &crate::Credentials) -> aws_sdk_sfn::Client {
    // The bodies never leave memory, so there is no stream that could stall: the protection
    // would only add its timers to every call.
    aws_sdk_sfn::Client::from_conf(
        local_config(IN_PROCESS_ENDPOINT, credentials)
            .http_client(transport.clone())
            .stalled_stream_protection(aws_sdk_sfn::config::StalledStreamProtectionConfig::disabled())
            .build(),
    )
}
