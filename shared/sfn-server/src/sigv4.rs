//! AWS Signature Version 4 (`AWS4-HMAC-SHA256` in the `Authorization` header), verified the way
//! AWS verifies requests to Step Functions, against credentials from configuration.
//!
//! [`Verifier::verify`] rebuilds the canonical request from what actually arrived: the method,
//! the path (percent-encoded once more, as the SDKs do for every service but S3), the sorted
//! query, the headers named in `SignedHeaders` and the SHA-256 of the real body (a
//! `x-amz-content-sha256` header, if sent, must match it), so a signature computed for another
//! body, target or host does not verify. `host` and `x-amz-target` must be signed. The
//! `X-Amz-Date` must be within 15 minutes of `now` (a parameter, so tests need no real clock) and
//! the credential scope must be `<date of X-Amz-Date>/<any region>/states/aws4_request`. The
//! signature is compared in constant time.
//!
//! Session tokens (`X-Amz-Security-Token`) are refused: the endpoint issues none, so any token is
//! "invalid" in AWS's words. Presigned URLs (query-string auth) are not supported.
//!
//! Failures are AWS's: [`AuthError::code`] and [`AuthError::status`] give the
//! `UnrecognizedClientException` / `InvalidSignatureException` / `IncompleteSignatureException`
//! (400) or `MissingAuthenticationTokenException` (403) that AWS sends, with AWS's messages; they
//! never contain the secret or the signature the server computed.

use std::collections::HashMap;
use std::fmt;

use axum::http::{HeaderMap, HeaderValue, Method, Request, Uri};
use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use hmac::{Hmac, Mac as _};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

/// The only signing algorithm accepted.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The service name in the credential scope of Step Functions requests.
pub const SERVICE: &str = "states";
/// How far `X-Amz-Date` may be from the server's clock, either way (AWS: 15 minutes).
pub const MAX_CLOCK_SKEW: TimeDelta = TimeDelta::minutes(15);

const AMZ_DATE_FORMAT: &str = "%Y%m%dT%H%M%SZ";

/// An access key id and its secret, as an AWS SDK is configured with. `Debug` hides the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    access_key_id: String,
    secret_access_key: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}

impl Credentials {
    pub fn new(access_key_id: impl Into<String>, secret_access_key: impl Into<String>) -> Self {
        Credentials { access_key_id: access_key_id.into(), secret_access_key: secret_access_key.into() }
    }

    /// Fresh random credentials shaped like AWS's: a 20-character key id starting `WEFT`, and a
    /// 40-character secret (238 bits from the thread's CSPRNG).
    pub fn generate() -> Self {
        use rand::Rng as _;
        const ID: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        const SECRET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut rng = rand::rng();
        let mut pick = |alphabet: &[u8], n: usize| -> String {
            (0..n).map(|_| char::from(alphabet[rng.random_range(0..alphabet.len())])).collect()
        };
        let id = format!("WEFT{}", pick(ID, 16));
        let secret = pick(SECRET, 40);
        Credentials::new(id, secret)
    }

    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    pub fn secret_access_key(&self) -> &str {
        &self.secret_access_key
    }
}

/// Why a request was refused, with AWS's error code, status and message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization` header.
    #[error("Missing Authentication Token")]
    Missing,
    /// The `Authorization` header or a header it needs is malformed or absent.
    #[error("{0}")]
    Incomplete(String),
    /// The access key id is not one of the configured ones, or a session token was sent.
    #[error("The security token included in the request is invalid.")]
    UnknownKey,
    /// The signature, scope or date does not hold.
    #[error("{0}")]
    Invalid(String),
}

const MISMATCH: &str = "The request signature we calculated does not match the signature you provided. \
     Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";

impl AuthError {
    /// AWS's error code (the part after `#` in `__type`).
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Missing => "MissingAuthenticationTokenException",
            AuthError::Incomplete(_) => "IncompleteSignatureException",
            AuthError::UnknownKey => "UnrecognizedClientException",
            AuthError::Invalid(_) => "InvalidSignatureException",
        }
    }

    /// The HTTP status AWS answers with.
    pub fn status(&self) -> u16 {
        match self {
            AuthError::Missing => 403,
            _ => 400,
        }
    }

    fn mismatch() -> Self {
        AuthError::Invalid(MISMATCH.to_owned())
    }
}

/// The parsed `Authorization` header.
struct Authorization<'a> {
    access_key_id: &'a str,
    scope_date: &'a str,
    region: &'a str,
    service: &'a str,
    terminator: &'a str,
    signed_headers: &'a str,
    signature: &'a str,
}

fn parse_authorization(value: &str) -> Result<Authorization<'_>, AuthError> {
    let (algorithm, params) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
    if algorithm != ALGORITHM {
        return Err(AuthError::Incomplete(format!(
            "Unsupported AWS 'algorithm': '{algorithm}' (only {ALGORITHM} is supported)."
        )));
    }
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in params.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let Some((key, value)) = part.split_once('=') else {
            return Err(AuthError::Incomplete(format!(
                "Authorization header key-value pairs must be separated by '=': '{part}'."
            )));
        };
        let slot = match key {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            _ => continue,
        };
        if slot.replace(value).is_some() {
            return Err(AuthError::Incomplete(format!("Authorization header has '{key}' more than once.")));
        }
    }
    let mut missing = Vec::new();
    for (name, v) in [("Credential", &credential), ("Signature", &signature), ("SignedHeaders", &signed_headers)] {
        if v.is_none_or(|v| v.is_empty()) {
            missing.push(format!("Authorization header requires '{name}' parameter."));
        }
    }
    let (Some(credential), Some(signed_headers), Some(signature)) = (credential, signed_headers, signature) else {
        return Err(AuthError::Incomplete(missing.join(" ")));
    };
    if !missing.is_empty() {
        return Err(AuthError::Incomplete(missing.join(" ")));
    }
    let mut scope = credential.split('/');
    let (Some(access_key_id), Some(scope_date), Some(region), Some(service), Some(terminator), None) =
        (scope.next(), scope.next(), scope.next(), scope.next(), scope.next(), scope.next())
    else {
        return Err(AuthError::Incomplete(format!(
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{credential}'."
        )));
    };
    if access_key_id.is_empty() || region.is_empty() {
        return Err(AuthError::Incomplete(format!("Credential has an empty access key id or region: '{credential}'.")));
    }
    Ok(Authorization { access_key_id, scope_date, region, service, terminator, signed_headers, signature })
}

/// The single value of header `name`, or an error if it is sent more than once.
fn single<'h>(headers: &'h HeaderMap, name: &str) -> Result<Option<&'h HeaderValue>, AuthError> {
    let mut values = headers.get_all(name).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(AuthError::Incomplete(format!("The '{name}' header must be sent once.")));
    }
    Ok(first)
}

/// Checks SigV4 signatures against a fixed set of credentials.
pub struct Verifier {
    /// Access key id → `"AWS4" + secret`, the key of the first HMAC of the signing-key chain.
    keys: HashMap<String, Vec<u8>>,
    service: &'static str,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ids: Vec<&str> = self.keys.keys().map(String::as_str).collect();
        ids.sort_unstable();
        f.debug_struct("Verifier").field("access_key_ids", &ids).field("service", &self.service).finish()
    }
}

impl Verifier {
    /// A verifier of Step Functions requests (`states` in the scope) signed with any of
    /// `credentials`. With none, every request is refused.
    pub fn new(credentials: impl IntoIterator<Item = Credentials>) -> Self {
        Self::for_service(SERVICE, credentials)
    }

    fn for_service(service: &'static str, credentials: impl IntoIterator<Item = Credentials>) -> Self {
        let keys = credentials
            .into_iter()
            .map(|c| (c.access_key_id, [b"AWS4".as_slice(), c.secret_access_key.as_bytes()].concat()))
            .collect();
        Verifier { keys, service }
    }

    /// Verifies the request at time `now`; returns the access key id that signed it.
    pub fn verify(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<&str, AuthError> {
        let Some(authorization) = single(headers, "authorization")? else { return Err(AuthError::Missing) };
        let authorization = authorization
            .to_str()
            .map_err(|_| AuthError::Incomplete("The Authorization header is not visible ASCII.".to_owned()))?;
        let auth = parse_authorization(authorization)?;

        let Some(amz_date) = single(headers, "x-amz-date")? else {
            return Err(AuthError::Incomplete(
                "Authorization header requires existence of a 'X-Amz-Date' header.".to_owned(),
            ));
        };
        let amz_date = amz_date.to_str().unwrap_or("");
        let signed_at = NaiveDateTime::parse_from_str(amz_date, AMZ_DATE_FORMAT)
            .ok()
            .filter(|_| amz_date.len() == 16)
            .map(|d| d.and_utc())
            .ok_or_else(|| {
                AuthError::Incomplete(format!(
                    "X-Amz-Date must be in ISO-8601 basic format (YYYYMMDD'T'HHMMSS'Z'), got '{amz_date}'."
                ))
            })?;
        if auth.scope_date != &amz_date[..8] {
            return Err(AuthError::Invalid(format!(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}', from '{amz_date}'.",
                auth.scope_date,
                &amz_date[..8]
            )));
        }
        if auth.service != self.service {
            return Err(AuthError::Invalid(format!(
                "Credential should be scoped to correct service: '{}'.",
                self.service
            )));
        }
        if auth.terminator != "aws4_request" {
            return Err(AuthError::Invalid(format!(
                "Credential should be scoped with a valid terminator: 'aws4_request', not '{}'.",
                auth.terminator
            )));
        }
        let fmt_date = |d: DateTime<Utc>| d.format(AMZ_DATE_FORMAT).to_string();
        if signed_at < now - MAX_CLOCK_SKEW {
            return Err(AuthError::Invalid(format!(
                "Signature expired: {amz_date} is now earlier than {} ({} - 15 min.)",
                fmt_date(now - MAX_CLOCK_SKEW),
                fmt_date(now)
            )));
        }
        if signed_at > now + MAX_CLOCK_SKEW {
            return Err(AuthError::Invalid(format!(
                "Signature not yet current: {amz_date} is still later than {} ({} + 15 min.)",
                fmt_date(now + MAX_CLOCK_SKEW),
                fmt_date(now)
            )));
        }

        let Some((access_key_id, key)) = self.keys.get_key_value(auth.access_key_id) else {
            return Err(AuthError::UnknownKey);
        };
        if headers.contains_key("x-amz-security-token") {
            return Err(AuthError::UnknownKey);
        }

        check_signed_headers(auth.signed_headers, headers)?;
        let payload_hash = hex(&Sha256::digest(body));
        if let Some(claimed) = single(headers, "x-amz-content-sha256")?
            && !claimed.as_bytes().eq_ignore_ascii_case(&payload_hash)
        {
            return Err(AuthError::Invalid(
                "The provided 'x-amz-content-sha256' header does not match what was computed.".to_owned(),
            ));
        }
        let canonical = canonical_request_hash(method, uri, headers, auth.signed_headers, &payload_hash);
        let expected = signature(key, amz_date, auth.scope_date, auth.region, self.service, &canonical);
        if bool::from(expected.as_slice().ct_eq(auth.signature.as_bytes())) {
            Ok(access_key_id)
        } else {
            Err(AuthError::mismatch())
        }
    }
}

/// `SignedHeaders` must be lowercase, sorted, without duplicates, and include `host` (and
/// `x-amz-target` when the request has one: it names the action).
fn check_signed_headers(signed: &str, headers: &HeaderMap) -> Result<(), AuthError> {
    let mut previous = "";
    let (mut host, mut target) = (false, false);
    for name in signed.split(';') {
        let well_formed = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_' || b == b'.')
            && name > previous;
        if !well_formed {
            return Err(AuthError::Incomplete(format!(
                "SignedHeaders must be lowercase header names, sorted and separated by ';', got '{signed}'."
            )));
        }
        host |= name == "host";
        target |= name == "x-amz-target";
        previous = name;
    }
    if !host {
        return Err(AuthError::Incomplete("'Host' must be a 'SignedHeader' in the AWS Authorization.".to_owned()));
    }
    if !target && headers.contains_key("x-amz-target") {
        return Err(AuthError::Incomplete(
            "'X-Amz-Target' must be a 'SignedHeader' in the AWS Authorization.".to_owned(),
        ));
    }
    Ok(())
}

/// SHA-256 of the canonical request, fed to the hasher piece by piece (no canonical string is
/// built).
fn canonical_request_hash(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    signed_headers: &str,
    payload_hash: &[u8; 64],
) -> [u8; 64] {
    let mut h = Sha256::new();
    h.update(method.as_str());
    h.update(b"\n");
    // Canonical URI: the path as sent, percent-encoded once more ('/' kept).
    let path = uri.path();
    if path.is_empty() {
        h.update(b"/");
    } else {
        uri_encode(&mut h, path.as_bytes(), false);
    }
    h.update(b"\n");
    canonical_query(&mut h, uri.query().unwrap_or(""));
    h.update(b"\n");
    for name in signed_headers.split(';') {
        h.update(name);
        h.update(b":");
        for (i, value) in headers.get_all(name).iter().enumerate() {
            if i > 0 {
                h.update(b",");
            }
            trim_all(&mut h, value.as_bytes());
        }
        h.update(b"\n");
    }
    h.update(b"\n");
    h.update(signed_headers);
    h.update(b"\n");
    h.update(payload_hash);
    hex(&h.finalize())
}

/// A header value with leading and trailing whitespace removed and inner runs of spaces and
/// tabs collapsed to one space.
fn trim_all(h: &mut Sha256, value: &[u8]) {
    let words = value.split(|b| *b == b' ' || *b == b'\t').filter(|w| !w.is_empty());
    for (i, word) in words.enumerate() {
        if i > 0 {
            h.update(b" ");
        }
        h.update(word);
    }
}

/// The query's `name=value` pairs, decoded, re-encoded strictly and sorted.
fn canonical_query(h: &mut Sha256, query: &str) {
    if query.is_empty() {
        return;
    }
    let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (encoded(&percent_decode(k.as_bytes())), encoded(&percent_decode(v.as_bytes())))
        })
        .collect();
    pairs.sort();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            h.update(b"&");
        }
        h.update(k);
        h.update(b"=");
        h.update(v);
    }
}

fn percent_decode(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%'
            && let (Some(hi), Some(lo)) =
                (s.get(i + 1).and_then(|c| hex_value(*c)), s.get(i + 2).and_then(|c| hex_value(*c)))
        {
            out.push(hi << 4 | lo);
            i += 3;
            continue;
        }
        out.push(s[i]);
        i += 1;
    }
    out
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn encoded(bytes: &[u8]) -> Vec<u8> {
    struct Collect(Vec<u8>);
    impl Sink for Collect {
        fn put(&mut self, b: &[u8]) {
            self.0.extend_from_slice(b);
        }
    }
    let mut out = Collect(Vec::with_capacity(bytes.len()));
    uri_encode(&mut out, bytes, true);
    out.0
}

trait Sink {
    fn put(&mut self, b: &[u8]);
}

impl Sink for Sha256 {
    fn put(&mut self, b: &[u8]) {
        self.update(b);
    }
}

/// AWS's URI encoding: unreserved characters (`A-Z a-z 0-9 - . _ ~`) as they are, `/` too unless
/// `encode_slash`, every other byte as `%XX` (uppercase hex).
fn uri_encode(out: &mut impl Sink, bytes: &[u8], encode_slash: bool) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') || (b == b'/' && !encode_slash) {
            out.put(&[b]);
        } else {
            out.put(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        }
    }
}

fn hex(bytes: &[u8]) -> [u8; 64] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 64];
    for (i, b) in bytes.iter().take(32).enumerate() {
        out[2 * i] = HEX[usize::from(b >> 4)];
        out[2 * i + 1] = HEX[usize::from(b & 15)];
    }
    out
}

fn hmac(key: &[u8], message: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// The hex signature: the string to sign, HMAC'd with the key derived from `key`
/// (`"AWS4" + secret`) through date, region, service and `aws4_request`.
fn signature(
    key: &[u8],
    amz_date: &str,
    scope_date: &str,
    region: &str,
    service: &str,
    canonical_hash: &[u8; 64],
) -> [u8; 64] {
    let k_date = hmac(key, scope_date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    let k_signing = hmac(&k_service, b"aws4_request");
    let mut to_sign =
        Vec::with_capacity(ALGORITHM.len() + amz_date.len() + scope_date.len() + region.len() + service.len() + 100);
    for part in [
        ALGORITHM.as_bytes(),
        b"\n",
        amz_date.as_bytes(),
        b"\n",
        scope_date.as_bytes(),
        b"/",
        region.as_bytes(),
        b"/",
        service.as_bytes(),
        b"/aws4_request\n",
        canonical_hash,
    ] {
        to_sign.extend_from_slice(part);
    }
    hex(&hmac(&k_signing, &to_sign))
}

/// Signs `request` as an AWS SDK would: sets `X-Amz-Date` (to `at`) and `Authorization`, signing
/// every header it already has plus `host` (taken from the URI's authority when the request has
/// no `Host` header) and `x-amz-date`. For tests, benchmarks and clients without an SDK; it
/// shares the canonicalization with [`Verifier::verify`], which the AWS test vectors pin.
pub fn sign<B: AsRef<[u8]>>(request: &mut Request<B>, credentials: &Credentials, region: &str, at: DateTime<Utc>) {
    sign_for_service(request, credentials, region, SERVICE, at);
}

fn sign_for_service<B: AsRef<[u8]>>(
    request: &mut Request<B>,
    credentials: &Credentials,
    region: &str,
    service: &str,
    at: DateTime<Utc>,
) {
    let amz_date = at.format(AMZ_DATE_FORMAT).to_string();
    let scope_date = &amz_date[..8];
    if !request.headers().contains_key("host")
        && let Some(host) = request.uri().authority().and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    {
        request.headers_mut().insert("host", host);
    }
    request.headers_mut().remove("authorization");
    if let Ok(v) = HeaderValue::from_str(&amz_date) {
        request.headers_mut().insert("x-amz-date", v);
    }
    let mut names: Vec<&str> = request.headers().keys().map(|k| k.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let signed_headers = names.join(";");
    let payload_hash = hex(&Sha256::digest(request.body().as_ref()));
    let canonical =
        canonical_request_hash(request.method(), request.uri(), request.headers(), &signed_headers, &payload_hash);
    let key = [b"AWS4".as_slice(), credentials.secret_access_key.as_bytes()].concat();
    let sig = signature(&key, &amz_date, scope_date, region, service, &canonical);
    let value = format!(
        "{ALGORITHM} Credential={}/{scope_date}/{region}/{service}/aws4_request, SignedHeaders={signed_headers}, Signature={}",
        credentials.access_key_id,
        String::from_utf8_lossy(&sig)
    );
    if let Ok(v) = HeaderValue::from_str(&value) {
        request.headers_mut().insert("authorization", v);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    // The credentials, time, region and service of AWS's SigV4 test suite
    // (https://github.com/awslabs/aws-c-auth/tree/main/tests/aws-signing-test-suite/v4).
    const AKID: &str = "AKIDEXAMPLE";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    fn suite_time() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2015-08-30T12:36:00Z").unwrap().with_timezone(&Utc)
    }

    fn suite_verifier() -> Verifier {
        Verifier::for_service("service", [Credentials::new(AKID, SECRET)])
    }

    /// A request of the test suite: method, path and query, headers (repeated names are
    /// repeated headers), body, and the suite's `SignedHeaders` and signature.
    struct Vector {
        name: &'static str,
        method: &'static str,
        uri: &'static str,
        headers: &'static [(&'static str, &'static str)],
        body: &'static str,
        signed_headers: &'static str,
        signature: &'static str,
    }

    const VECTORS: &[Vector] = &[
        Vector {
            name: "get-vanilla",
            method: "GET",
            uri: "/",
            headers: &[],
            body: "",
            signed_headers: "host;x-amz-date",
            signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        },
        Vector {
            name: "post-vanilla",
            method: "POST",
            uri: "/",
            headers: &[],
            body: "",
            signed_headers: "host;x-amz-date",
            signature: "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
        },
        Vector {
            name: "get-vanilla-query-order-key-case",
            method: "GET",
            uri: "/?Param2=value2&Param1=value1",
            headers: &[],
            body: "",
            signed_headers: "host;x-amz-date",
            signature: "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
        },
        Vector {
            name: "get-vanilla-query-order-value",
            method: "GET",
            uri: "/?Param1=value2&Param1=value1",
            headers: &[],
            body: "",
            signed_headers: "host;x-amz-date",
            signature: "5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694",
        },
        Vector {
            name: "get-header-key-duplicate",
            method: "GET",
            uri: "/",
            headers: &[("my-header1", "value2"), ("my-header1", "value2"), ("my-header1", "value1")],
            body: "",
            signed_headers: "host;my-header1;x-amz-date",
            signature: "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea",
        },
        Vector {
            name: "post-x-www-form-urlencoded",
            method: "POST",
            uri: "/",
            headers: &[("content-type", "application/x-www-form-urlencoded")],
            body: "Param1=value1",
            signed_headers: "content-type;host;x-amz-date",
            signature: "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
        },
    ];

    fn vector_request(v: &Vector) -> Request<Vec<u8>> {
        let mut req = Request::builder().method(v.method).uri(v.uri).body(v.body.as_bytes().to_vec()).unwrap();
        let headers = req.headers_mut();
        headers.insert("host", HeaderValue::from_static("example.amazonaws.com"));
        headers.insert("x-amz-date", HeaderValue::from_static("20150830T123600Z"));
        for (k, val) in v.headers {
            headers.append(*k, HeaderValue::from_static(val));
        }
        req
    }

    fn authorization(v: &Vector) -> String {
        format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders={}, Signature={}",
            v.signed_headers, v.signature
        )
    }

    fn verify(verifier: &Verifier, req: &Request<Vec<u8>>, now: DateTime<Utc>) -> Result<String, AuthError> {
        verifier.verify(req.method(), req.uri(), req.headers(), req.body(), now).map(str::to_owned)
    }

    #[test]
    fn the_aws_test_suite_verifies() {
        let verifier = suite_verifier();
        for v in VECTORS {
            let mut req = vector_request(v);
            req.headers_mut().insert("authorization", HeaderValue::from_str(&authorization(v)).unwrap());
            assert_eq!(verify(&verifier, &req, suite_time()), Ok(AKID.to_owned()), "{}", v.name);
        }
    }

    #[test]
    fn signing_reproduces_the_aws_test_suite() {
        for v in VECTORS {
            let mut req = vector_request(v);
            sign_for_service(&mut req, &Credentials::new(AKID, SECRET), "us-east-1", "service", suite_time());
            assert_eq!(req.headers()["authorization"].to_str().unwrap(), authorization(v), "{}", v.name);
        }
    }

    #[test]
    fn any_change_to_a_signed_part_breaks_the_signature() {
        let verifier = suite_verifier();
        let v = &VECTORS[5];
        let signed = || {
            let mut req = vector_request(v);
            req.headers_mut().insert("authorization", HeaderValue::from_str(&authorization(v)).unwrap());
            req
        };
        let mismatch = Err(AuthError::mismatch());
        let mut other_body = signed();
        *other_body.body_mut() = b"Param1=value2".to_vec();
        assert_eq!(verify(&verifier, &other_body, suite_time()), mismatch, "body");
        let mut other_type = signed();
        other_type.headers_mut().insert("content-type", HeaderValue::from_static("application/json"));
        assert_eq!(verify(&verifier, &other_type, suite_time()), mismatch, "signed header");
        let mut added_value = signed();
        added_value.headers_mut().append("content-type", HeaderValue::from_static("text/plain"));
        assert_eq!(verify(&verifier, &added_value, suite_time()), mismatch, "a second value of a signed header");
        let mut other_host = signed();
        other_host.headers_mut().insert("host", HeaderValue::from_static("example.com"));
        assert_eq!(verify(&verifier, &other_host, suite_time()), mismatch, "host");
        let mut other_path = signed();
        *other_path.uri_mut() = Uri::from_static("/other");
        assert_eq!(verify(&verifier, &other_path, suite_time()), mismatch, "path");
        let mut other_query = signed();
        *other_query.uri_mut() = Uri::from_static("/?a=b");
        assert_eq!(verify(&verifier, &other_query, suite_time()), mismatch, "query");
        let mut other_method = signed();
        *other_method.method_mut() = Method::PUT;
        assert_eq!(verify(&verifier, &other_method, suite_time()), mismatch, "method");
        let mut other_secret = signed();
        let wrong = Verifier::for_service("service", [Credentials::new(AKID, "not-the-secret")]);
        assert_eq!(verify(&wrong, &other_secret, suite_time()), mismatch, "secret");
        // An unsigned header may be added (SDKs add user-agent and the like after signing).
        other_secret.headers_mut().insert("user-agent", HeaderValue::from_static("x"));
        assert_eq!(verify(&verifier, &other_secret, suite_time()), Ok(AKID.to_owned()));
    }

    /// A Step Functions request as the SDK sends it, signed at `at`.
    fn sfn_request(credentials: &Credentials, at: DateTime<Utc>, body: &str) -> Request<Vec<u8>> {
        let mut req = Request::post("http://127.0.0.1:8080/")
            .header("content-type", "application/x-amz-json-1.0")
            .header("x-amz-target", "AWSStepFunctions.ListExecutions")
            .body(body.as_bytes().to_vec())
            .unwrap();
        sign(&mut req, credentials, "us-east-1", at);
        req
    }

    #[test]
    fn step_functions_requests_verify_within_the_clock_window() {
        let creds = Credentials::generate();
        let verifier = Verifier::new([Credentials::generate(), creds.clone()]);
        let at = suite_time();
        let req = sfn_request(&creds, at, "{}");
        let ok = Ok(creds.access_key_id().to_owned());
        for now in [at, at - TimeDelta::minutes(15), at + TimeDelta::minutes(15)] {
            assert_eq!(verify(&verifier, &req, now), ok, "{now}");
        }
        assert_eq!(
            verify(&verifier, &req, at + TimeDelta::minutes(16)),
            Err(AuthError::Invalid(
                "Signature expired: 20150830T123600Z is now earlier than 20150830T123700Z (20150830T125200Z - 15 min.)"
                    .to_owned()
            ))
        );
        assert_eq!(
            verify(&verifier, &req, at - TimeDelta::minutes(16)),
            Err(AuthError::Invalid("Signature not yet current: 20150830T123600Z is still later than 20150830T123500Z (20150830T122000Z + 15 min.)".to_owned()))
        );
    }

    #[test]
    fn requests_are_refused_with_aws_errors() {
        let creds = Credentials::new("AKIDWEFTTEST", "a-secret-of-forty-characters-0123456789a");
        let verifier = Verifier::new([creds.clone()]);
        let at = suite_time();
        let check = |req: &Request<Vec<u8>>, code: &str, status: u16| {
            let err = verify(&verifier, req, at).unwrap_err();
            assert_eq!((err.code(), err.status()), (code, status), "{err}");
            assert!(!err.to_string().contains(creds.secret_access_key()), "{err}");
            err.to_string()
        };

        let mut unsigned = sfn_request(&creds, at, "{}");
        unsigned.headers_mut().remove("authorization");
        assert_eq!(check(&unsigned, "MissingAuthenticationTokenException", 403), "Missing Authentication Token");

        let unknown = sfn_request(&Credentials::new("AKIDOTHER", creds.secret_access_key()), at, "{}");
        assert_eq!(
            check(&unknown, "UnrecognizedClientException", 400),
            "The security token included in the request is invalid."
        );

        let mut with_token = Request::post("http://127.0.0.1:8080/")
            .header("x-amz-target", "AWSStepFunctions.ListExecutions")
            .header("x-amz-security-token", "a-session-token")
            .body(b"{}".to_vec())
            .unwrap();
        sign(&mut with_token, &creds, "us-east-1", at);
        check(&with_token, "UnrecognizedClientException", 400);

        let wrong_secret = sfn_request(&Credentials::new(creds.access_key_id(), "guessed"), at, "{}");
        assert_eq!(check(&wrong_secret, "InvalidSignatureException", 400), MISMATCH);

        let mut replayed = sfn_request(&creds, at, r#"{"stateMachineArn": "a"}"#);
        *replayed.body_mut() = br#"{"stateMachineArn": "b"}"#.to_vec();
        assert_eq!(check(&replayed, "InvalidSignatureException", 400), MISMATCH);

        let mut retargeted = sfn_request(&creds, at, "{}");
        retargeted.headers_mut().insert("x-amz-target", HeaderValue::from_static("AWSStepFunctions.StopExecution"));
        assert_eq!(check(&retargeted, "InvalidSignatureException", 400), MISMATCH);

        let mut claimed_hash = sfn_request(&creds, at, "{}");
        claimed_hash.headers_mut().insert("x-amz-content-sha256", HeaderValue::from_static("UNSIGNED-PAYLOAD"));
        check(&claimed_hash, "InvalidSignatureException", 400);

        let header = |req: &Request<Vec<u8>>| req.headers()["authorization"].to_str().unwrap().to_owned();
        let with_auth = |value: &str| {
            let mut r = sfn_request(&creds, at, "{}");
            r.headers_mut().insert("authorization", HeaderValue::from_str(value).unwrap());
            r
        };
        let good = header(&sfn_request(&creds, at, "{}"));
        for (bad, code) in [
            (good.replace("/states/", "/lambda/"), "InvalidSignatureException"),
            (good.replace("/20150830/", "/20150831/"), "InvalidSignatureException"),
            (good.replace("aws4_request", "aws5_request"), "InvalidSignatureException"),
            (good.replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA1"), "IncompleteSignatureException"),
            (
                good.replace("SignedHeaders=content-type;host;", "SignedHeaders=content-type;"),
                "IncompleteSignatureException",
            ),
            (good.replace(";x-amz-target", ""), "IncompleteSignatureException"),
            (good.replace("content-type;host", "host;content-type"), "IncompleteSignatureException"),
            (good.split(", Signature=").next().unwrap().to_owned(), "IncompleteSignatureException"),
            (
                "AWS4-HMAC-SHA256 Credential=AKIDWEFTTEST/20150830/us-east-1/states, SignedHeaders=host, Signature=00"
                    .to_owned(),
                "IncompleteSignatureException",
            ),
            ("Bearer abc".to_owned(), "IncompleteSignatureException"),
            (String::new(), "IncompleteSignatureException"),
        ] {
            let err = verify(&verifier, &with_auth(&bad), at).unwrap_err();
            assert_eq!(err.code(), code, "{bad}: {err}");
        }
        let mut no_date = sfn_request(&creds, at, "{}");
        no_date.headers_mut().remove("x-amz-date");
        check(&no_date, "IncompleteSignatureException", 400);
        let mut bad_date = sfn_request(&creds, at, "{}");
        bad_date.headers_mut().insert("x-amz-date", HeaderValue::from_static("2015-08-30T12:36:00Z"));
        check(&bad_date, "IncompleteSignatureException", 400);
        let mut two = sfn_request(&creds, at, "{}");
        two.headers_mut().append("authorization", HeaderValue::from_static("AWS4-HMAC-SHA256 x"));
        check(&two, "IncompleteSignatureException", 400);

        // No credentials: nothing verifies.
        let none = Verifier::new([]);
        assert_eq!(verify(&none, &sfn_request(&creds, at, "{}"), at), Err(AuthError::UnknownKey));
    }

    #[test]
    fn generated_credentials_are_random_and_debug_hides_the_secret() {
        let (a, b) = (Credentials::generate(), Credentials::generate());
        assert_ne!(a, b);
        assert_eq!((a.access_key_id().len(), a.secret_access_key().len()), (20, 40));
        assert!(a.access_key_id().starts_with("WEFT"));
        let debug = format!("{a:?} {:?}", Verifier::new([a.clone()]));
        assert!(debug.contains(a.access_key_id()) && !debug.contains(a.secret_access_key()), "{debug}");
    }
}
