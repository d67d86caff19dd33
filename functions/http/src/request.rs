//! A node's config read into a [`Request`]: method, URL with its query, headers, body, and the
//! options (timeout, redirects, response size and format, failing on 4xx/5xx), each bad value
//! reported as a config error naming its field, before anything is sent.

use std::time::Duration;

use node_contract::{NodeError, kind_of};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Url};
use serde_json::{Map, Value};

use crate::settings::Settings;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Auto,
    Json,
    Text,
}

pub(crate) struct Request {
    pub(crate) method: Method,
    pub(crate) url: Url,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Option<Vec<u8>>,
    pub(crate) timeout: Duration,
    pub(crate) follow_redirects: bool,
    pub(crate) max_redirects: u32,
    pub(crate) max_bytes: usize,
    pub(crate) format: Format,
    pub(crate) fail_on_status: bool,
}

impl Request {
    pub(crate) fn parse(config: &Map<String, Value>, settings: &Settings) -> Result<Self, NodeError> {
        let get = |k: &str| config.get(k).filter(|v| !v.is_null());
        let method = match get("method") {
            None => Method::GET,
            Some(Value::String(m)) => Method::from_bytes(m.trim().to_ascii_uppercase().as_bytes())
                .map_err(|_| NodeError::config("method", format!("`{m}` is not an HTTP method")))?,
            Some(other) => {
                return Err(NodeError::config("method", format!("expected a string, got {}", kind_of(other))));
            }
        };
        let url = match get("url") {
            Some(Value::String(u)) => Url::parse(u.trim())
                .map_err(|e| NodeError::config("url", format!("`{u}` is not an absolute URL: {e}")))?,
            Some(other) => {
                return Err(NodeError::config("url", format!("expected a string, got {}", kind_of(other))));
            }
            None => return Err(NodeError::config("url", "missing")),
        };
        if !matches!(url.scheme(), "http" | "https") {
            return Err(NodeError::config("url", format!("`{url}`: only http and https are supported")));
        }
        let mut url = url;
        match get("query") {
            None => {}
            Some(Value::Object(query)) => {
                let mut pairs = url.query_pairs_mut();
                for (k, v) in query {
                    let values = match v {
                        Value::Array(vs) => vs.iter().collect(),
                        one => vec![one],
                    };
                    for v in values {
                        match scalar_text(v) {
                            Some(text) => {
                                pairs.append_pair(k, &text);
                            }
                            None if v.is_null() => {}
                            None => {
                                return Err(NodeError::config(
                                    &format!("query.{k}"),
                                    "expected a string, number or boolean",
                                ));
                            }
                        }
                    }
                }
            }
            Some(other) => {
                return Err(NodeError::config("query", format!("expected an object, got {}", kind_of(other))));
            }
        }
        if url.query() == Some("") {
            url.set_query(None);
        }
        let mut headers = HeaderMap::new();
        match get("headers") {
            None => {}
            Some(Value::Object(hs)) => {
                for (k, v) in hs {
                    let Some(text) = scalar_text(v) else {
                        if v.is_null() {
                            continue;
                        }
                        return Err(NodeError::config(&format!("headers.{k}"), "expected a string, number or boolean"));
                    };
                    let name = HeaderName::from_bytes(k.as_bytes())
                        .map_err(|_| NodeError::config(&format!("headers.{k}"), "not a valid header name"))?;
                    let value = HeaderValue::from_str(&text)
                        .map_err(|_| NodeError::config(&format!("headers.{k}"), "not a valid header value"))?;
                    headers.append(name, value);
                }
            }
            Some(other) => {
                return Err(NodeError::config("headers", format!("expected an object, got {}", kind_of(other))));
            }
        }
        let body = match get("body") {
            None => None,
            Some(Value::String(text)) => {
                headers
                    .entry(reqwest::header::CONTENT_TYPE)
                    .or_insert(HeaderValue::from_static("text/plain; charset=utf-8"));
                Some(text.clone().into_bytes())
            }
            Some(json) => {
                headers.entry(reqwest::header::CONTENT_TYPE).or_insert(HeaderValue::from_static("application/json"));
                Some(serde_json::to_vec(json).map_err(|e| NodeError::config("body", e))?)
            }
        };
        let timeout = match get("timeout_seconds") {
            None => settings.default_timeout,
            Some(v) => match v.as_f64() {
                Some(s) if s > 0.0 && s <= 900.0 => Duration::from_secs_f64(s),
                _ => {
                    return Err(NodeError::config("timeout_seconds", "must be a number of seconds in (0, 900]"));
                }
            },
        };
        let flag = |k: &str, default: bool| match get(k) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(NodeError::config(k, format!("expected a boolean, got {}", kind_of(other)))),
        };
        let count = |k: &str, default: u64, max: u64| match get(k) {
            None => Ok(default),
            Some(v) => v
                .as_u64()
                .filter(|n| *n <= max)
                .ok_or_else(|| NodeError::config(k, format!("must be an integer from 0 to {max}"))),
        };
        let format = match get("response_format").map(|v| v.as_str()) {
            None | Some(Some("auto")) => Format::Auto,
            Some(Some("json")) => Format::Json,
            Some(Some("text")) => Format::Text,
            Some(_) => {
                return Err(NodeError::config("response_format", "must be `auto`, `json` or `text`"));
            }
        };
        let max_bytes = settings.max_response_bytes as u64;
        Ok(Self {
            method,
            url,
            headers,
            body,
            timeout,
            follow_redirects: flag("follow_redirects", true)?,
            max_redirects: count("max_redirects", u64::from(settings.default_max_redirects), 50)? as u32,
            max_bytes: count("max_response_bytes", max_bytes, max_bytes)? as usize,
            format,
            fail_on_status: flag("fail_on_status", true)?,
        })
    }
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}
