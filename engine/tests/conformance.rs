//! Runs the whole conformance corpus (cases recorded against AWS Step Functions) and fails on any
//! failing case that is not listed, with a reason, in `conformance-exclusions.md`, on a listed case
//! that passes, and on a listed name that is no case (`engine::conformance::judge`, which
//! `weft conformance --exclusions` applies the same way).

use std::path::Path;

use engine::conformance::{Exclusions, judge, run_dir};

#[tokio::test]
async fn corpus_passes_except_documented_exclusions() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let text = std::fs::read_to_string(root.join("conformance-exclusions.md"))
        .expect("tests/conformance-exclusions.md exists");
    let exclusions = Exclusions::parse(&text).unwrap_or_else(|e| panic!("conformance-exclusions.md: {e}"));
    let results = run_dir(&root.join("conformance")).await.expect("the corpus is readable");
    assert!(results.len() >= 338, "expected the full corpus, found {} cases", results.len());
    let verdict = judge(&results, &exclusions);
    eprintln!(
        "{} passed, {} failed ({} excluded)",
        verdict.passed,
        results.len() - verdict.passed,
        verdict.excluded.len()
    );
    assert!(verdict.ok(), "{}", verdict.problems().join("\n\n"));
}
