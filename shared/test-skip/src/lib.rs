//! How a test skips when something it needs (a service, a third-party tool) is missing.
//!
//! A skipping test calls [`skip`] and returns. Under `WEFT_TEST_STRICT=1` (CI) that panics, so
//! the test fails instead. Otherwise it writes one line to stderr:
//!
//! ```text
//! SKIPPED: <test> (<test binary>): <why>
//! ```
//!
//! The line is written to the process's stderr directly, past libtest's output capture, so it
//! shows in every `cargo test` run and `scripts/test` counts skipped tests apart from passed ones
//! (libtest itself can only report them as passed).

use std::io::Write as _;

/// The marker `scripts/test` counts.
pub const MARKER: &str = "SKIPPED:";

/// Whether a missing service or tool fails the test (`WEFT_TEST_STRICT=1`) instead of skipping it.
pub fn strict() -> bool {
    std::env::var("WEFT_TEST_STRICT").is_ok_and(|v| v == "1")
}

/// Skips the calling test because of `why` (say what is missing and how to provide it); panics,
/// failing the test, under `WEFT_TEST_STRICT=1`. The caller returns right after.
pub fn skip(why: &str) {
    assert!(!strict(), "{why} (WEFT_TEST_STRICT=1: a missing service or tool fails the test)");
    let line = format!("{MARKER} {} ({}): {why}\n", test_name(), binary_name());
    // One write, so lines of tests running in parallel do not interleave.
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// The value of the environment variable `var` if it is set and not empty; else skips the
/// calling test (see [`skip`]) and returns `None`.
pub fn var(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            skip(&format!("{var} is not set (scripts/dev-services starts the services and prints the variables)"));
            None
        }
    }
}

/// libtest runs each test on a thread named after it.
fn test_name() -> String {
    match std::thread::current().name() {
        Some(name) if name != "main" => name.to_owned(),
        _ => "unknown-test".to_owned(),
    }
}

/// The test binary's name without cargo's `-<hash>` suffix.
fn binary_name() -> String {
    let stem = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_default();
    match stem.rsplit_once('-') {
        Some((name, hash)) if hash.len() == 16 && hash.chars().all(|c| c.is_ascii_hexdigit()) => name.to_owned(),
        _ => stem,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::process::Command;

    /// Run only by `skipping_prints_one_line_or_fails_under_strict`, in a child process.
    #[test]
    #[ignore = "run in a child process by skipping_prints_one_line_or_fails_under_strict"]
    fn probe() {
        super::skip("the probe service is missing");
    }

    fn run_probe(strict: Option<&str>) -> (bool, String) {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args(["--ignored", "--exact", "tests::probe", "--test-threads=1"]).env_remove("WEFT_TEST_STRICT");
        if let Some(v) = strict {
            cmd.env("WEFT_TEST_STRICT", v);
        }
        let out = cmd.output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        (out.status.success(), text)
    }

    #[test]
    fn skipping_prints_one_line_or_fails_under_strict() {
        let (passed, text) = run_probe(None);
        assert!(passed, "{text}");
        let lines: Vec<&str> = text.matches("SKIPPED: ").collect();
        assert_eq!(lines.len(), 1, "{text}");
        assert!(text.contains("SKIPPED: tests::probe (test_skip): the probe service is missing\n"), "{text}");

        // Anything but 1 is not strict (scripts/test refuses other values before running tests).
        let (passed, text) = run_probe(Some("0"));
        assert!(passed && text.contains("SKIPPED: tests::probe"), "{text}");

        let (passed, text) = run_probe(Some("1"));
        assert!(!passed, "a skip fails under WEFT_TEST_STRICT=1: {text}");
        assert!(text.contains("the probe service is missing (WEFT_TEST_STRICT=1"), "{text}");
        assert!(!text.contains("SKIPPED: "), "{text}");
    }
}
