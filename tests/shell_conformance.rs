//! BuildKit's shell-lexer data files (`envVarTest`, `wordsTest`), read from
//! the shared conformance corpus and run exactly as BuildKit's
//! `lex_test.go` runs them (see the corpus README, section 4).

use std::path::PathBuf;

use rbuild::containerfile::shell::{EnvList, Lexer};

fn corpus_dir() -> Option<PathBuf> {
    let near =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance/buildkit/shell");
    let fallback = PathBuf::from("/work/shared/conformance/buildkit/shell");
    [near, fallback].into_iter().find(|dir| dir.is_dir())
}

fn read(name: &str) -> Option<String> {
    let Some(dir) = corpus_dir() else {
        eprintln!(
            "SKIP: BuildKit shell conformance data not found (../shared/conformance/buildkit/shell \
             next to the crate, or /work/shared/...); {name} not checked"
        );
        return None;
    };
    let path = dir.join(name);
    Some(
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display())),
    )
}

#[test]
fn env_var_test() {
    let Some(text) = read("envVarTest") else {
        return;
    };
    let env = EnvList::from_entries(["PWD=/home", "SHELL=bash", "KOREAN=한국어", "NULL="]);
    let lexer = Lexer::new('\\');
    let (mut ran, mut failures) = (0, Vec::new());
    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.trim().split('|').collect();
        assert_eq!(
            fields.len(),
            3,
            "envVarTest:{line_no}: expected 3 fields in {line:?}"
        );
        let (platform, input, expected) = (fields[0].trim(), fields[1].trim(), fields[2].trim());
        match platform {
            "A" | "U" => {}
            "W" => continue,
            other => panic!("envVarTest:{line_no}: invalid platform tag {other:?}"),
        }
        ran += 1;
        let got = lexer.process_word(input, &env);
        let ok = match (&got, expected) {
            (Err(_), "error") => true,
            (Ok(word), expected) => expected != "error" && word == expected,
            (Err(_), _) => false,
        };
        if !ok {
            failures.push(format!(
                "envVarTest:{line_no}: {input:?}: expected {expected:?}, got {got:?}"
            ));
        }
    }
    println!("envVarTest: {} of {ran} cases pass", ran - failures.len());
    assert_eq!(ran, 228, "the corpus has 228 active cases on Unix");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn words_test() {
    let Some(text) = read("wordsTest") else {
        return;
    };
    let lexer = Lexer::new('\\');
    let mut entries: Vec<String> = Vec::new();
    let (mut ran, mut failures) = (0, Vec::new());
    // Upstream reads lines with bufio.Scanner: no blank-line skipping.
    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        if line.starts_with('#') {
            continue;
        }
        if let Some(entry) = line.strip_prefix("ENV ") {
            entries.push(entry.trim_start_matches(' ').to_string());
            continue;
        }
        let fields: Vec<&str> = line.split('|').collect();
        assert_eq!(
            fields.len(),
            2,
            "wordsTest:{line_no}: expected exactly one | in {line:?}"
        );
        let input = fields[0].trim();
        let expected: Vec<&str> = fields[1].trim_start_matches(' ').split(',').collect();
        ran += 1;
        let env = EnvList::from_entries(&entries);
        let got = lexer
            .process_words(input, &env)
            .unwrap_or_else(|_| vec!["error".to_string()]);
        if got != expected {
            failures.push(format!(
                "wordsTest:{line_no}: {input:?}: expected {expected:?}, got {got:?}"
            ));
        }
    }
    println!("wordsTest: {} of {ran} cases pass", ran - failures.len());
    assert_eq!(ran, 24, "the corpus has 24 cases");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
