//! Pointing `aws-sdk-sfn` at this endpoint.
//!
//! The SDK prepends the modeled host prefix `sync-` to the endpoint of `StartSyncExecution`, even
//! with a custom endpoint URL (`http://sync-127.0.0.1:...` does not resolve). [`StripHostPrefix`]
//! undoes that before the request is signed; [`local_client`] builds a client with it.

use aws_sdk_sfn::config::interceptors::BeforeTransmitInterceptorContextMut;
use aws_sdk_sfn::config::{BehaviorVersion, ConfigBag, Credentials, Intercept, Region, RuntimeComponents};
use aws_sdk_sfn::error::BoxError;

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
