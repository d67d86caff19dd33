//! A [`TaskInvoker`] that calls functions through the Lambda Invoke HTTP API
//! (`POST /2015-03-31/functions/NAME/invocations`), as served by `cargo lambda watch`,
//! LocalStack or any Lambda-compatible endpoint. Requests are not SigV4-signed, so real AWS
//! endpoints need a signing proxy.

use serde_json::Value;

use crate::task::{TaskCall, TaskFailure, TaskInvoker};

/// Invokes functions on `endpoint` (e.g. `http://127.0.0.1:9000`).
#[derive(Debug, Clone)]
pub struct LambdaHttpInvoker {
    client: reqwest::Client,
    endpoint: String,
}

impl LambdaHttpInvoker {
    pub fn new(endpoint: impl Into<String>) -> Self {
        LambdaHttpInvoker { client: reqwest::Client::new(), endpoint: endpoint.into().trim_end_matches('/').to_owned() }
    }

    /// The function name in the URL: the name part of an ARN, percent-encoded.
    fn function_path(name: &str) -> String {
        let short = arn::FunctionArn::parse(name).map_or(name, |f| f.name);
        short
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    }
}

fn service_error(error: &str, cause: impl Into<String>) -> TaskFailure {
    TaskFailure { error: error.to_owned(), cause: cause.into() }
}

#[async_trait::async_trait]
impl TaskInvoker for LambdaHttpInvoker {
    async fn invoke(&self, call: TaskCall) -> Result<Value, TaskFailure> {
        let url =
            format!("{}/2015-03-31/functions/{}/invocations", self.endpoint, Self::function_path(&call.function_name));
        let body = serde_json::to_vec(&call.payload)
            .map_err(|e| service_error("Lambda.InvalidRequestContentException", e.to_string()))?;
        let resp = self
            .client
            .post(&url)
            .header("content-type", "application/json")
            .header("x-amz-invocation-type", "RequestResponse")
            .body(body)
            .send()
            .await
            .map_err(|e| service_error("Lambda.ServiceException", format!("could not reach {url}: {e}")))?;
        let status = resp.status();
        let function_error = resp.headers().get("x-amz-function-error").is_some();
        let bytes = resp.bytes().await.map_err(|e| {
            service_error("Lambda.ServiceException", format!("reading the response from {url} failed: {e}"))
        })?;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if !status.is_success() {
            let error = match status.as_u16() {
                404 => "Lambda.ResourceNotFoundException",
                429 => "Lambda.TooManyRequestsException",
                400 => "Lambda.InvalidRequestContentException",
                _ => "Lambda.ServiceException",
            };
            return Err(service_error(error, format!("HTTP {status} from {url}: {text}")));
        }
        if function_error {
            // The body is the function's error document: {"errorType", "errorMessage", "trace"?}.
            let doc: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            let error = doc.get("errorType").and_then(Value::as_str).unwrap_or("Lambda.Unknown").to_owned();
            return Err(TaskFailure { error, cause: text });
        }
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text)
            .map_err(|e| service_error("Lambda.ServiceException", format!("the function returned invalid JSON: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names_come_from_arns_and_are_encoded() {
        assert_eq!(LambdaHttpInvoker::function_path("arn:aws:lambda:us-east-1:1:function:my-fn:3"), "my-fn");
        assert_eq!(LambdaHttpInvoker::function_path("a b"), "a%20b");
    }
}
