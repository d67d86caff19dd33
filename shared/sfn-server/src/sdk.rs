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

/// A Step Functions client for the endpoint at `endpoint_url` (e.g. `http://127.0.0.1:8080/sfn`):
/// region `us-east-1`, static dummy credentials (the endpoint does not check signatures), and
/// [`StripHostPrefix`].
pub fn local_client(endpoint_url: &str) -> aws_sdk_sfn::Client {
    let config = aws_sdk_sfn::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("weft", "weft", None, None, "weft-local"))
        .endpoint_url(endpoint_url)
        .interceptor(StripHostPrefix)
        .build();
    aws_sdk_sfn::Client::from_conf(config)
}
