//! The response as the function returns it: headers as JSON, the body read up to its size limit
//! and decoded by the requested format, and transport failures named by their cause.

use node_contract::{NodeError, error_names};
use reqwest::header::HeaderMap;
use reqwest::{Method, Url};
use serde_json::{Map, Value};

use crate::request::Format;

/// Response headers as a JSON object with lower-case names; repeated headers are joined with `, `
/// (as RFC 9110 allows), except `set-cookie`, which becomes an array.
pub(crate) fn headers_json(headers: &HeaderMap) -> Value {
    let mut out = Map::new();
    for name in headers.keys() {
        let values: Vec<String> =
            headers.get_all(name).iter().map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()).collect();
        let value = if name == reqwest::header::SET_COOKIE && values.len() > 1 {
            Value::Array(values.into_iter().map(Value::String).collect())
        } else {
            Value::String(values.join(", "))
        };
        out.insert(name.as_str().to_owned(), value);
    }
    Value::Object(out)
}

pub(crate) async fn read_capped(
    mut response: reqwest::Response,
    max: usize,
    method: &Method,
    url: &Url,
) -> Result<Vec<u8>, NodeError> {
    let too_large = || {
        NodeError::new(
            error_names::HTTP_BODY_TOO_LARGE,
            format!("{method} {url}: the response body is larger than {max} bytes"),
        )
    };
    if response.content_length().is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| transport_error(&e, method, url))? {
        if bytes.len() + chunk.len() > max {
            return Err(too_large());
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

pub(crate) fn decode_body(
    bytes: &[u8],
    content_type: &str,
    format: Format,
    method: &Method,
    url: &Url,
) -> Result<Value, NodeError> {
    let text = || Value::String(String::from_utf8_lossy(bytes).into_owned());
    match format {
        Format::Text => Ok(text()),
        Format::Json if bytes.iter().all(u8::is_ascii_whitespace) => Ok(Value::Null),
        Format::Json => serde_json::from_slice(bytes).map_err(|e| {
            NodeError::new(
                error_names::HTTP_INVALID_RESPONSE,
                format!("{method} {url}: the response body is not JSON: {e}"),
            )
        }),
        Format::Auto if content_type.contains("json") => Ok(serde_json::from_slice(bytes).unwrap_or_else(|_| text())),
        Format::Auto => Ok(text()),
    }
}

/// Names a transport failure: forbidden address (from the resolver), timeout, or connection.
pub(crate) fn transport_error(e: &reqwest::Error, method: &Method, url: &Url) -> NodeError {
    let mut chain = String::new();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut forbidden = false;
    while let Some(err) = source {
        if net_guard::is_forbidden_host(err) {
            forbidden = true;
        }
        if !chain.is_empty() {
            chain.push_str(": ");
        }
        chain.push_str(&err.to_string());
        source = err.source();
    }
    let name = if forbidden {
        error_names::HTTP_FORBIDDEN_ADDRESS
    } else if e.is_timeout() {
        error_names::HTTP_TIMEOUT
    } else {
        error_names::HTTP_CONNECT
    };
    NodeError::new(name, format!("{method} {url}: {chain}"))
}
