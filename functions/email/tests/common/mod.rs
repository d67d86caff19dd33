//! The test SMTP server (`tests/smtp_server.py`, aiosmtpd) as a child process, and event helpers.

#![allow(clippy::unwrap_used, dead_code)]

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// A running `smtp_server.py`: killed, and its folder removed, on drop.
pub struct SmtpServer {
    child: Child,
    /// Held open: the script exits when its stdin closes, so it cannot outlive the test process.
    _stdin: ChildStdin,
    pub port: u16,
    pub dir: PathBuf,
}

impl SmtpServer {
    pub fn start(mode: &str) -> Self {
        Self::start_with(mode, &[])
    }

    pub fn start_with(mode: &str, extra: &[&str]) -> Self {
        let dir = std::env::temp_dir().join(format!("fn-email-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/smtp_server.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(mode)
            .arg(&dir)
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            // A file, not the test's stderr: aiosmtpd logs every failed TLS handshake.
            .stderr(std::fs::File::create(dir.join("stderr.log")).unwrap())
            .spawn()
            .expect("python3 must be installed, with aiosmtpd");
        let stdin = child.stdin.take().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port: u16 = line.trim().strip_prefix("PORT ").and_then(|p| p.parse().ok()).unwrap_or_else(|| {
            let stderr = std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default();
            panic!("smtp_server.py did not start (said {line:?}; stderr: {stderr}); is aiosmtpd installed?")
        });
        let server = Self { child, _stdin: stdin, port, dir };
        server.wait_ready(mode != "smtps");
        server
    }

    /// The script prints its port once listening; polled anyway, without fixed sleeps, so a
    /// slow machine only makes this slower.
    fn wait_ready(&self, logs_the_probe: bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "smtp_server.py never accepted connections");
            std::thread::yield_now();
        }
        if !logs_the_probe {
            // Implicit TLS: the server only counts connections that finish a handshake.
            return;
        }
        // That probe counted as a connection; forget it.
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.connections() == 0 && Instant::now() < deadline {
            std::thread::yield_now();
        }
        let _ = std::fs::remove_file(self.dir.join("connections.log"));
    }

    /// The CA certificate of the TLS modes.
    pub fn ca_pem(&self) -> Vec<u8> {
        std::fs::read(self.dir.join("ca.pem")).unwrap()
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// The messages received so far, in order: `{mail_from, rcpt_tos, data}`.
    pub fn messages(&self) -> Vec<Value> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("msg-")))
            .collect();
        names.sort();
        names.iter().map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()).collect()
    }

    /// TCP connections the server accepted (after its readiness probe).
    pub fn connections(&self) -> usize {
        std::fs::read_to_string(self.dir.join("connections.log")).map(|s| s.lines().count()).unwrap_or(0)
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// An `email` node event with `config`, the connection secret named `SMTP`.
pub fn event(config: Value) -> node_contract::NodeEvent {
    let mut config = config;
    if config.get("connection").is_none() {
        config["connection"] = json!("SMTP");
    }
    node_contract::NodeEvent::from_value(json!({
        "node": {"id": "notify", "type": "email"},
        "execution": {"id": "arn:aws:states:us-east-1:123456789012:execution:weft-x:1"},
        "config": config,
    }))
    .unwrap()
}

/// The headers of a raw message (up to the blank line), unfolded, as (lower-case name, value).
pub fn headers(raw: &str) -> Vec<(String, String)> {
    let head = raw.split("\r\n\r\n").next().unwrap_or(raw);
    let head = head.split("\n\n").next().unwrap_or(head);
    let mut out: Vec<(String, String)> = Vec::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = out.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            out.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    out
}

pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

/// `s` with its RFC 2047 `=?utf-8?b?...?=` encoded words decoded (what lettre writes for
/// non-ASCII header text; adjacent encoded words are joined without the space between them).
pub fn decode_words(s: &str) -> String {
    use base64::Engine as _;
    let mut out = String::new();
    let mut rest = s;
    let mut after_word = false;
    while let Some(start) = rest.to_ascii_lowercase().find("=?utf-8?b?") {
        let Some(len) = rest[start + 10..].find("?=") else { break };
        let before = &rest[..start];
        if !(after_word && before.trim().is_empty()) {
            out.push_str(before);
        }
        after_word = true;
        let word = base64::engine::general_purpose::STANDARD.decode(&rest[start + 10..start + 10 + len]).unwrap();
        out.push_str(&String::from_utf8(word).unwrap());
        rest = &rest[start + 10 + len + 2..];
    }
    out.push_str(rest);
    out
}
