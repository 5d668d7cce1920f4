//! BuildKit's parser corpus (`../shared/conformance/buildkit/parser`): every
//! positive case must dump byte-equal to its `result`, every negative case
//! must fail with a `file:line` error, and `testfile-line` must get
//! BuildKit's line numbers. Skips (loudly) when the corpus is absent.

use std::fs;
use std::path::PathBuf;

use rbuild::containerfile::{dump, parse_ast};

fn corpus() -> Option<PathBuf> {
    let local =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance/buildkit/parser");
    let fallback = PathBuf::from("/work/shared/conformance/buildkit/parser");
    [local, fallback].into_iter().find(|p| p.is_dir())
}

fn cases(dir: PathBuf) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    v
}

#[test]
fn positive_cases_dump_exactly() {
    let Some(root) = corpus() else {
        eprintln!(
            "SKIP: BuildKit parser corpus not found at ../shared/conformance/buildkit/parser"
        );
        return;
    };
    let mut failures = Vec::new();
    let all = cases(root.join("testfiles"));
    for case in &all {
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        let text = fs::read_to_string(case.join("Dockerfile")).expect("Dockerfile is UTF-8");
        let expected = fs::read_to_string(case.join("result")).expect("result is UTF-8");
        match parse_ast(&text, "Dockerfile") {
            Ok(ast) => {
                let got = dump(&ast);
                if got != expected {
                    failures.push(format!(
                        "{name}: dump differs\n--- expected\n{expected}--- got\n{got}"
                    ));
                }
            }
            Err(e) => failures.push(format!("{name}: unexpected error\n{e}")),
        }
    }
    eprintln!(
        "positive cases: {} of {} pass",
        all.len() - failures.len(),
        all.len()
    );
    assert!(
        all.len() >= 33,
        "expected the 33 corpus cases, found {}",
        all.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn negative_cases_fail_with_a_location() {
    let Some(root) = corpus() else {
        eprintln!("SKIP: BuildKit parser corpus not found");
        return;
    };
    let all = cases(root.join("testfiles-negative"));
    assert_eq!(all.len(), 4, "expected the 4 negative cases");
    for case in &all {
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        let text = fs::read_to_string(case.join("Dockerfile")).expect("Dockerfile is UTF-8");
        let err = parse_ast(&text, "Dockerfile").expect_err(&name);
        let head = err.headline();
        assert!(head.starts_with("Dockerfile:"), "{name}: {head}");
        let line: usize = head
            .split(':')
            .nth(1)
            .and_then(|l| l.parse().ok())
            .expect("a line number");
        assert!(line >= 1, "{name}: {head}");
    }
}

#[test]
fn line_numbers_match_buildkit() {
    let Some(root) = corpus() else {
        eprintln!("SKIP: BuildKit parser corpus not found");
        return;
    };
    let text = fs::read_to_string(root.join("testfile-line/Dockerfile")).expect("Dockerfile");
    let ast = parse_ast(&text, "Dockerfile").expect("testfile-line parses");
    let lines: Vec<(usize, usize)> = ast
        .nodes
        .iter()
        .map(|n| (n.span.start.line, n.span.end.line))
        .collect();
    assert_eq!(lines, vec![(5, 5), (11, 12), (17, 31)]);
}
