//! Runs the whole conformance corpus (cases recorded against AWS Step Functions) and fails on any
//! failing case that is not listed, with a reason, in `conformance-exclusions.md`.

use std::collections::BTreeMap;
use std::path::Path;

fn exclusions() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance-exclusions.md"))
        .expect("tests/conformance-exclusions.md exists");
    text.lines()
        .filter_map(|l| l.strip_prefix("- `"))
        .filter_map(|l| l.split_once("`:"))
        .map(|(name, reason)| (name.to_owned(), reason.trim().to_owned()))
        .collect()
}

#[tokio::test]
async fn corpus_passes_except_documented_exclusions() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance");
    let results = engine::conformance::run_dir(&dir).await.expect("the corpus is readable");
    assert!(results.len() >= 338, "expected the full corpus, found {} cases", results.len());
    let excluded = exclusions();
    let mut problems = Vec::new();
    for r in &results {
        match (&r.failure, excluded.get(&r.name)) {
            (Some(diff), None) => problems.push(format!("FAIL {}\n{diff}", r.name)),
            (None, Some(_)) => {
                problems.push(format!("{} passes now: remove it from conformance-exclusions.md", r.name))
            }
            _ => {}
        }
    }
    let passed = results.iter().filter(|r| r.passed()).count();
    eprintln!("{passed} passed, {} failed", results.len() - passed);
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}
