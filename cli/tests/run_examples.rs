//! Every example in `examples/` whose node types all run locally runs under `weft run`, with
//! its expected outputs checked. Cases live in `cli/tests/expected/<example>.json`:
//! `{"cases": [{"name": ..., "input": ..., "output": ...}]}`; the string `$CALLBACK_URL` in an
//! input is replaced by the URL of a JSON echo server on 127.0.0.1 (allow-listed for the SSRF
//! guard). `UPDATE_EXPECT=1 cargo test -p cli --test run_examples` rewrites the outputs.
//!
//! An example that talks to services (a database, an SMTP server, Slack, a model provider,
//! Milvus) has a setup function in [`WITH_PEERS`]: it starts live peers on 127.0.0.1 and gives
//! its cases a `--secrets` file and environment pointing at them (and `$PEER_URL` in an input
//! is replaced by its HTTP peer's URL). The AI examples run against the scripted model server of
//! `model_client::testing` with an empty script, so every model call answers `You said: <the last
//! user message>` (an agent answers at once, calling no tool) and embeddings are hashed: their
//! outputs are deterministic. `cli/tests/ai_run.rs` scripts tool calls and answers. Each of its cases also has `received`: what the peers got
//! during the case (rewritten by `UPDATE_EXPECT=1` too). Those examples run in their own test,
//! which skips (`test_skip`) when a service is missing, unless `WEFT_TEST_STRICT=1`.

// Tests fail loudly on unexpected errors; that is what unwrap is for here.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

mod ai_common;

/// The examples whose node types all run locally, each run with every case of its expected file.
/// An example that starts (or stops) running locally must be added here (or removed).
const RUNNABLE: &[&str] = &[
    "batch-scoring",
    "daily-sql-report",
    "knowledge-ingest",
    "order-routing",
    "rag-answer",
    "research-report",
    "support-agent",
    "webhook-relay",
];

/// Examples whose node types all run locally but that call hosts of their own (not an input URL),
/// so no local peer can stand in for them: not run, with the reason.
const REMOTE: &[(&str, &str)] =
    &[("daily-digest", "calls https://helpdesk.example.com"), ("ticket-triage", "calls https://tracker.example.com")];

/// Starts an example's peers; `None` when a service is missing (the calling test then skips).
type Setup = fn() -> Option<Peers>;

/// The runnable examples whose cases need live peers, with the function that starts them.
const WITH_PEERS: &[(&str, Setup)] = &[
    ("daily-sql-report", daily_sql_report_peers),
    ("knowledge-ingest", knowledge_ingest_peers),
    ("rag-answer", rag_answer_peers),
    ("research-report", model_only_peers),
    ("support-agent", model_only_peers),
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn runnable(graph: &Value) -> Result<(), BTreeSet<String>> {
    let missing: BTreeSet<String> = graph["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n["type"].as_str())
        .filter(|t| {
            !compiler::NODE_TYPES.contains(t) || (compiler::is_task_type(t) && !local_functions::is_available(t))
        })
        .map(str::to_owned)
        .collect();
    if missing.is_empty() { Ok(()) } else { Err(missing) }
}

/// Reads one HTTP/1.1 request: its head (request line and headers) and as many body bytes as
/// Content-Length says. `None` when the peer hung up first.
fn read_request(socket: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let (head_end, length) = loop {
        match socket.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..i]).into_owned();
            let length = header(&head, "content-length").and_then(|v| v.parse::<usize>().ok()).unwrap_or(0);
            break (i + 4, length);
        }
    };
    while buf.len() < head_end + length {
        match socket.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let head = String::from_utf8_lossy(&buf[..head_end - 4]).into_owned();
    Some((head, buf[head_end..].to_vec()))
}

/// The value of header `name` (any case) in a request head or message header block.
fn header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
    })
}

fn respond_json(socket: &mut TcpStream, status: &str, body: &Value) {
    let body = body.to_string();
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = socket.write_all(response.as_bytes());
}

/// Answers every request with 200 and `{"received": <request body as JSON or null>}`.
fn echo_server() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut socket) = stream else { return };
            let Some((_, body)) = read_request(&mut socket) else { continue };
            let received: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            respond_json(&mut socket, "200 OK", &json!({"received": received}));
        }
    });
    format!("http://{addr}/callback")
}

/// `value` with each `(name, url)`'s name replaced by its URL in every string.
fn substitute(value: &Value, vars: &[(&str, &str)]) -> Value {
    match value {
        Value::String(s) => Value::String(vars.iter().fold(s.clone(), |s, (name, url)| s.replace(name, url))),
        Value::Array(a) => Value::Array(a.iter().map(|v| substitute(v, vars)).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), substitute(v, vars))).collect()),
        other => other.clone(),
    }
}

/// What an example's cases run against besides the graph.
#[derive(Default)]
struct Peers {
    /// Environment for `weft run` (besides `WEFT_HTTP_ALLOW=127.0.0.1`, which every case gets).
    env: Vec<(&'static str, String)>,
    /// The `--secrets` file.
    secrets: Option<PathBuf>,
    /// The URL `$PEER_URL` in a case's input stands for.
    peer_url: Option<String>,
    /// What the peers received during the case that just ran, forgetting it (so the next case
    /// starts from nothing): compared with the case's `received`.
    received: Option<Box<dyn Fn() -> Value>>,
    /// What must live until the example's cases are done (servers, their folders).
    _guards: Vec<Box<dyn std::any::Any>>,
}

/// How the cases of one example went.
#[derive(Default)]
struct Outcome {
    ran: usize,
    cases: usize,
    problems: Vec<String>,
}

/// Runs every case of example `name` (at `path`) against `peers`, comparing (or, when `update`,
/// rewriting) outputs and what the peers received.
fn run_example(name: &str, path: &Path, peers: &Peers, callback: &str, update: bool) -> Outcome {
    let mut outcome = Outcome::default();
    let expected_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/expected").join(format!("{name}.json"));
    let Ok(text) = std::fs::read_to_string(&expected_path) else {
        outcome.problems.push(format!("{name}: runs locally but has no {} with cases", expected_path.display()));
        return outcome;
    };
    let mut expected: Value = serde_json::from_str(&text).expect("expected file is JSON");
    let cases = expected["cases"].as_array_mut().expect("`cases` array");
    assert!(!cases.is_empty(), "{name}: {} has no cases", expected_path.display());
    outcome.cases = cases.len();
    for case in cases.iter_mut() {
        let case_name = case["name"].as_str().unwrap_or("?").to_owned();
        let mut vars = vec![("$CALLBACK_URL", callback)];
        if let Some(url) = &peers.peer_url {
            vars.push(("$PEER_URL", url.as_str()));
        }
        let input = substitute(&case["input"], &vars);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_weft"));
        cmd.args([
            "run",
            path.to_str().expect("utf-8 path"),
            "--fast-timers",
            "--quiet",
            "--input",
            &input.to_string(),
        ]);
        if let Some(secrets) = &peers.secrets {
            cmd.arg("--secrets").arg(secrets);
        }
        cmd.env("WEFT_HTTP_ALLOW", "127.0.0.1").envs(peers.env.iter().map(|(k, v)| (*k, v)));
        let out = cmd.output().expect("run weft");
        let received = peers.received.as_ref().map(|r| r());
        if !out.status.success() {
            outcome.problems.push(format!(
                "{name}/{case_name}: exit {:?}\n{}",
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
            ));
            continue;
        }
        let actual: Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
        outcome.ran += 1;
        if update {
            case["output"] = actual;
            if let Some(received) = received {
                case["received"] = received;
            }
            continue;
        }
        if actual != case["output"] {
            outcome.problems.push(format!(
                "{name}/{case_name}: output differs\n  expected {}\n  actual   {}",
                case["output"], actual
            ));
        }
        if let Some(received) = received
            && received != case["received"]
        {
            outcome.problems.push(format!(
                "{name}/{case_name}: the peers received something else\n  expected {}\n  actual   {}",
                case["received"], received
            ));
        }
    }
    if update {
        std::fs::write(&expected_path, serde_json::to_string_pretty(&expected).expect("json") + "\n")
            .expect("write expected");
    }
    outcome
}

fn examples() -> Vec<(String, PathBuf, Value)> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(root().join("examples"))
        .expect("examples/ exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_owned();
            let graph: Value =
                serde_json::from_str(&std::fs::read_to_string(&path).expect("read example")).expect("example is JSON");
            (name, path, graph)
        })
        .collect()
}

#[test]
fn runnable_examples_produce_their_expected_outputs() {
    let update = std::env::var_os("UPDATE_EXPECT").is_some();
    let callback = echo_server();
    let (mut skipped, mut problems) = (Vec::new(), Vec::new());
    let (mut runnable_examples, mut ran, mut case_count) = (BTreeSet::new(), 0, 0);
    for (name, path, graph) in examples() {
        if let Err(missing) = runnable(&graph) {
            skipped.push(format!("{name} (needs {})", missing.into_iter().collect::<Vec<_>>().join(", ")));
            continue;
        }
        runnable_examples.insert(name.clone());
        if let Some((_, why)) = REMOTE.iter().find(|(n, _)| *n == name) {
            skipped.push(format!("{name} ({why})"));
            continue;
        }
        if WITH_PEERS.iter().any(|(n, _)| *n == name) {
            // Run by `examples_with_live_peers_produce_their_expected_outputs`.
            continue;
        }
        let outcome = run_example(&name, &path, &Peers::default(), &callback, update);
        (ran, case_count) = (ran + outcome.ran, case_count + outcome.cases);
        problems.extend(outcome.problems);
    }
    eprintln!(
        "{ran} example case(s) ran; not runnable: {}",
        if skipped.is_empty() { "none".to_owned() } else { skipped.join(", ") }
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_eq!(
        runnable_examples,
        RUNNABLE.iter().chain(REMOTE.iter().map(|(n, _)| n)).map(|s| (*s).to_owned()).collect::<BTreeSet<_>>(),
        "the examples that run (RUNNABLE) and those whose node types run but that call remote hosts (REMOTE)"
    );
    assert_eq!(ran, case_count, "every case of every runnable example ran");
}

#[test]
fn examples_with_live_peers_produce_their_expected_outputs() {
    let update = std::env::var_os("UPDATE_EXPECT").is_some();
    let callback = echo_server();
    let all = examples();
    let (mut problems, mut ran, mut case_count) = (Vec::new(), 0, 0);
    for (name, setup) in WITH_PEERS {
        assert!(RUNNABLE.contains(name), "{name} has peers but is not among RUNNABLE");
        let (_, path, _) = all.iter().find(|(n, ..)| n == name).unwrap_or_else(|| panic!("no examples/{name}.json"));
        let Some(peers) = setup() else { continue };
        let outcome = run_example(name, path, &peers, &callback, update);
        eprintln!("{name}: {} case(s) ran", outcome.ran);
        (ran, case_count) = (ran + outcome.ran, case_count + outcome.cases);
        problems.extend(outcome.problems);
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_eq!(ran, case_count, "every case of every example with peers ran");
}

#[test]
fn the_compiler_tests_know_which_functions_run_locally() {
    // compiler/tests/examples.rs cannot depend on local-functions, so it keeps a copy.
    let text = std::fs::read_to_string(root().join("compiler/tests/examples.rs")).unwrap();
    let start = text.find("const LOCAL_FUNCTIONS: &[&str] =").expect("LOCAL_FUNCTIONS in compiler/tests/examples.rs");
    let list = &text[start..start + text[start..].find(';').unwrap()];
    let list = list.split_once('=').unwrap().1;
    let list = &list[list.find("&[").unwrap() + 2..list.rfind(']').unwrap()];
    let names: BTreeSet<&str> = list.split(',').map(|s| s.trim().trim_matches('"')).filter(|s| !s.is_empty()).collect();
    assert_eq!(names, local_functions::AVAILABLE.iter().copied().collect::<BTreeSet<_>>());
}

// ---- the AI examples: the scripted model server, milvus-lite, an HTTP source and Slack ----

/// A multi-threaded runtime for async peers, kept in the guards while the cases run.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap()
}

/// The scripted model server (echoing, 256-dimensional hashed embeddings) and its environment.
fn model(rt: &tokio::runtime::Runtime) -> (Vec<(&'static str, String)>, Box<dyn std::any::Any>) {
    let server = rt.block_on(model_client::testing::ScriptedServer::start());
    server.set_embedding_dim(256);
    let env = vec![("OPENAI_BASE_URL", server.base_url()), ("OPENAI_API_KEY", "sk-test".to_owned())];
    (env, Box::new(server))
}

/// research-report and support-agent: the model alone (its agents answer at once).
fn model_only_peers() -> Option<Peers> {
    let rt = runtime();
    let (env, server) = model(&rt);
    Some(Peers { env, _guards: vec![server, Box::new(rt)], ..Peers::default() })
}

/// rag-answer: the model and milvus-lite.
fn rag_answer_peers() -> Option<Peers> {
    let milvus = ai_common::MilvusLite::start()?;
    let rt = runtime();
    let (mut env, server) = model(&rt);
    env.push(("WEFT_MILVUS_URL", milvus.url()));
    Some(Peers { env, _guards: vec![server, Box::new(milvus), Box::new(rt)], ..Peers::default() })
}

/// knowledge-ingest: the model, milvus-lite, the wiki's API (`$PEER_URL`: two changed pages) and
/// Slack; `received` is what the wiki was asked and what Slack was sent.
fn knowledge_ingest_peers() -> Option<Peers> {
    let milvus = ai_common::MilvusLite::start()?;
    let rt = runtime();
    let (mut env, server) = model(&rt);
    let pages = json!({"count": 2, "pages": [
        {"id": "deploys", "title": "Deploying", "text": "Deploys run from the main branch through the pipeline. ".repeat(20)},
        {"id": "oncall", "title": "On call", "text": "The on-call engineer answers pages within 15 minutes."}]});
    let wiki = rt.block_on(ai_common::Peer::start(&[("/api/pages", pages)]));
    let slack = SlackServer::start();
    let dir = scratch_dir("knowledge-ingest");
    let secrets = dir.join("secrets.json");
    std::fs::write(&secrets, json!({"slack": "xoxb-test-token"}).to_string()).unwrap();
    env.push(("WEFT_MILVUS_URL", milvus.url()));
    env.push(("WEFT_SLACK_API_URL", slack.url.clone()));
    let (asked, posts) = (wiki.clone(), slack.posts.clone());
    Some(Peers {
        env,
        secrets: Some(secrets),
        peer_url: Some(wiki.url.clone()),
        received: Some(Box::new(move || {
            let wiki: Vec<String> = asked.take().into_iter().map(|r| format!("{} {}", r.method, r.uri)).collect();
            json!({"wiki": wiki, "slack": take(&posts)})
        })),
        _guards: vec![server, Box::new(milvus), Box::new(slack), Box::new(Scratch(dir)), Box::new(rt)],
    })
}

// ---- daily-sql-report: Postgres, an SMTP server and Slack ----

/// A fresh database with an `orders` table (a big 2026-11-30 over three regions, a small
/// 2026-11-29, nothing on 2026-12-01), the SMTP server of fn-email's tests in store mode, and
/// a Slack API on 127.0.0.1 that answers `chat.postMessage`.
fn daily_sql_report_peers() -> Option<Peers> {
    let admin = store::testing::service_url("WEFT_TEST_DATABASE_URL")?;
    let database = match orders_database(&admin) {
        Ok(url) => url,
        Err(e) => {
            test_skip::skip(&format!("Postgres at WEFT_TEST_DATABASE_URL is not reachable: {e}"));
            return None;
        }
    };
    let smtp = SmtpServer::start()?;
    let slack = SlackServer::start();
    let dir = scratch_dir("daily-sql-report");
    let secrets = dir.join("secrets.json");
    let values =
        json!({"reports_db": database, "smtp": format!("smtp://127.0.0.1:{}", smtp.port), "slack": "xoxb-test-token"});
    std::fs::write(&secrets, values.to_string()).unwrap();
    let (mail_dir, posts) = (smtp.dir.clone(), slack.posts.clone());
    Some(Peers {
        env: vec![("WEFT_SLACK_API_URL", slack.url.clone())],
        secrets: Some(secrets),
        peer_url: None,
        received: Some(Box::new(move || json!({"mail": take_mail(&mail_dir), "slack": take(&posts)}))),
        _guards: vec![Box::new(smtp), Box::new(slack), Box::new(Scratch(dir))],
    })
}

/// Creates a fresh database with the example's `orders` table and returns its URL.
fn orders_database(admin: &str) -> Result<String, sqlx::Error> {
    use sqlx::Connection as _;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio");
    runtime.block_on(async {
        let url = store::testing::create_database(admin).await?;
        let mut conn = sqlx::PgConnection::connect(&url).await?;
        sqlx::raw_sql(
            "CREATE TABLE orders (region text, amount numeric(12,2), created_at timestamptz);
             INSERT INTO orders VALUES
               ('north', 600.00, '2026-11-30 09:15:00+00'),
               ('south', 300.25, '2026-11-30 10:00:00+00'),
               ('north', 450.50, '2026-11-30 13:30:00+00'),
               ('west',   99.99, '2026-11-30 16:45:00+00'),
               ('south',  42.50, '2026-11-29 12:00:00+00'),
               ('west',   17.00, '2026-11-29 12:30:00+00'),
               ('north', 5000.00, '2026-11-28 12:00:00+00');",
        )
        .execute(&mut conn)
        .await?;
        conn.close().await?;
        Ok(url)
    })
}

fn scratch_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("weft-examples-{}-{what}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Removes its folder when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn take(records: &Mutex<Vec<Value>>) -> Value {
    Value::Array(std::mem::take(&mut *records.lock().unwrap()))
}

/// `functions/email/tests/smtp_server.py store DIR`: each message it accepts is a file in DIR.
/// It exits when its stdin closes (when this is dropped, or the test process ends).
struct SmtpServer {
    port: u16,
    dir: PathBuf,
    child: Child,
    _stdin: ChildStdin,
    _scratch: Scratch,
}

impl SmtpServer {
    /// `None` (the test skips) when python3 with aiosmtpd is not there.
    fn start() -> Option<SmtpServer> {
        let dir = scratch_dir("smtp");
        let script = root().join("functions/email/tests/smtp_server.py");
        let spawned = Command::new("python3")
            .arg(&script)
            .arg("store")
            .arg(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) => {
                test_skip::skip(&format!("python3 is needed for the SMTP server ({e})"));
                return None;
            }
        };
        let stdin = child.stdin.take().unwrap();
        let mut line = String::new();
        let _ = BufReader::new(child.stdout.take().unwrap()).read_line(&mut line);
        let Some(port) = line.trim().strip_prefix("PORT ").and_then(|p| p.parse().ok()) else {
            let _ = child.kill();
            let _ = child.wait();
            test_skip::skip("the SMTP server did not start (python3 with aiosmtpd is needed; see its stderr above)");
            return None;
        };
        Some(SmtpServer { port, dir: dir.clone(), child, _stdin: stdin, _scratch: Scratch(dir) })
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The messages the SMTP server stored since the last call (removing them), oldest first, each
/// as `{mail_from, rcpt_tos, from, to, subject, content_type, body}`.
fn take_mail(dir: &Path) -> Value {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("msg-")))
        .collect();
    files.sort();
    let mut messages = Vec::new();
    for file in files {
        let stored: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        std::fs::remove_file(&file).unwrap();
        let data = stored["data"].as_str().unwrap().replace("\r\n", "\n");
        let (head, body) = data.split_once("\n\n").unwrap_or((&data, ""));
        // Unfold continued header lines.
        let head = head.replace("\n ", " ").replace("\n\t", " ");
        let body = match header(&head, "content-transfer-encoding").as_deref() {
            None | Some("7bit" | "8bit") => body.to_owned(),
            Some("quoted-printable") => quoted_printable(body),
            Some(other) => panic!("a message body in {other}, which this test does not decode:\n{data}"),
        };
        messages.push(json!({
            "mail_from": stored["mail_from"],
            "rcpt_tos": stored["rcpt_tos"],
            "from": header(&head, "from"),
            "to": header(&head, "to"),
            "subject": header(&head, "subject"),
            "content_type": header(&head, "content-type"),
            "body": body.trim_end_matches('\n'),
        }));
    }
    Value::Array(messages)
}

/// Decodes a quoted-printable body (soft line breaks and `=XX` escapes).
fn quoted_printable(text: &str) -> String {
    let text = text.replace("=\n", "");
    let mut bytes = Vec::new();
    let mut rest = text.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        match (b, tail) {
            (b'=', [h, l, tail @ ..]) if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => {
                bytes.push(u8::from_str_radix(std::str::from_utf8(&[*h, *l]).unwrap(), 16).unwrap());
                rest = tail;
            }
            _ => {
                bytes.push(b);
                rest = tail;
            }
        }
    }
    String::from_utf8(bytes).unwrap()
}

/// A Slack Web API on 127.0.0.1: `POST /chat.postMessage` answers
/// `{"ok":true,"channel":"C123","ts":"1700000000.000100"}`, anything else `unknown_method`;
/// every request is recorded as `{method, path, authorization, body}`.
struct SlackServer {
    url: String,
    posts: Arc<Mutex<Vec<Value>>>,
}

impl SlackServer {
    fn start() -> SlackServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let posts = Arc::new(Mutex::new(Vec::new()));
        let record = posts.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut socket) = stream else { return };
                let Some((head, body)) = read_request(&mut socket) else { continue };
                let mut request_line = head.lines().next().unwrap_or_default().split(' ');
                let (method, path) = (request_line.next().unwrap_or_default(), request_line.next().unwrap_or_default());
                let body: Value = serde_json::from_slice(&body)
                    .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
                record.lock().unwrap().push(json!({
                    "method": method, "path": path, "authorization": header(&head, "authorization"), "body": body,
                }));
                if (method, path) == ("POST", "/chat.postMessage") {
                    respond_json(
                        &mut socket,
                        "200 OK",
                        &json!({"ok": true, "channel": "C123", "ts": "1700000000.000100"}),
                    );
                } else {
                    respond_json(&mut socket, "200 OK", &json!({"ok": false, "error": "unknown_method"}));
                }
            }
        });
        SlackServer { url: format!("http://{addr}"), posts }
    }
}
