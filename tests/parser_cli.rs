//! `rbuild parse` end to end: the real binary, real files in a temp
//! context, stdin, both formats, and the error rendering.

use assert_cmd::Command;
use predicates::prelude::*;
use tempfile::TempDir;

fn rbuild() -> Command {
    Command::cargo_bin("rbuild").expect("the rbuild binary")
}

fn context(files: &[(&str, &str)]) -> TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).expect("write file");
    }
    dir
}

#[test]
fn json_lists_typed_stages_with_spans() {
    let dir = context(&[(
        "Containerfile",
        "ARG V=1\nFROM alpine:$V AS build\nRUN <<EOF\necho hi\nEOF\nFROM build\nCMD [\"sh\"]\n",
    )]);
    let out = rbuild()
        .arg("parse")
        .arg(dir.path())
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).expect("JSON output");
    assert_eq!(v["format_version"], 1);
    assert_eq!(v["global_args"][0]["args"][0]["name"], "V");
    assert_eq!(v["stages"][0]["name"], "build");
    assert_eq!(v["stages"][0]["from"]["image"], "alpine:$V");
    let run = &v["stages"][0]["instructions"][0];
    assert_eq!(run["instruction"], "RUN");
    assert_eq!(run["command"]["shell"], "<<EOF");
    assert_eq!(run["heredocs"][0]["content"], "echo hi\n");
    assert_eq!(run["span"]["start"]["line"], 3);
    assert_eq!(run["span"]["end"]["line"], 5);
    assert!(run["span"]["file"]
        .as_str()
        .unwrap()
        .ends_with("Containerfile"));
    assert_eq!(
        v["stages"][1]["instructions"][0]["command"]["exec"][0],
        "sh"
    );
}

#[test]
fn finds_containerfile_before_dockerfile() {
    let dir = context(&[
        ("Containerfile", "FROM one\n"),
        ("Dockerfile", "FROM two\n"),
    ]);
    rbuild()
        .args(["parse", "--format", "ast"])
        .arg(dir.path())
        .assert()
        .success()
        .stdout("(from \"one\")\n");
    std::fs::remove_file(dir.path().join("Containerfile")).unwrap();
    rbuild()
        .args(["parse", "--format", "ast"])
        .arg(dir.path())
        .assert()
        .success()
        .stdout("(from \"two\")\n");
}

#[test]
fn reads_stdin_and_explicit_files() {
    rbuild()
        .args(["parse", "--format", "ast", "-f", "-"])
        .write_stdin("FROM a\nONBUILD RUN echo test\nFOO bar\n")
        .assert()
        .success()
        .stdout("(from \"a\")\n(onbuild (run \"echo test\"))\n(foo \"\")\n");
    let dir = context(&[("other.txt", "FROM x\n")]);
    rbuild()
        .args(["parse", "--format", "ast", "-f"])
        .arg(dir.path().join("other.txt"))
        .assert()
        .success()
        .stdout("(from \"x\")\n");
}

#[test]
fn errors_point_at_the_line_with_a_caret() {
    let dir = context(&[("Containerfile", "FROM a\nCOPY --form=x a b\n")]);
    let file = dir.path().join("Containerfile");
    rbuild().arg("parse").arg(dir.path()).assert().code(125).stdout("").stderr(format!(
        "Error: {}:2:6: unknown flag --form for COPY (did you mean \"--from\"?)\n 2 | COPY --form=x a b\n   |      ^\nhint: remove the flag or check which flags COPY takes\n",
        file.display()
    ));
    // The raw AST does not check flags, like BuildKit's dumper.
    rbuild()
        .args(["parse", "--format", "ast"])
        .arg(dir.path())
        .assert()
        .success()
        .stdout("(from \"a\")\n(copy [\"--form=x\"] \"a\" \"b\")\n");
}

#[test]
fn missing_and_non_utf8_files_are_explained() {
    let dir = context(&[]);
    rbuild()
        .arg("parse")
        .arg(dir.path())
        .assert()
        .code(125)
        .stderr(predicate::str::contains(
            "no Containerfile or Dockerfile in",
        ));
    std::fs::write(dir.path().join("Containerfile"), b"FROM a\nRUN \xff\n").unwrap();
    rbuild()
        .arg("parse")
        .arg(dir.path())
        .assert()
        .code(125)
        .stderr(predicate::str::contains("not valid UTF-8 at byte 11"));
}

#[test]
fn ast_format_matches_a_buildkit_result_file() {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/conformance/buildkit/parser/testfiles/docker");
    let root = if root.is_dir() {
        root
    } else {
        std::path::PathBuf::from("/work/shared/conformance/buildkit/parser/testfiles/docker")
    };
    if !root.is_dir() {
        eprintln!("SKIP: BuildKit corpus not found");
        return;
    }
    let expected = std::fs::read_to_string(root.join("result")).unwrap();
    rbuild()
        .args(["parse", "--format", "ast", "-f"])
        .arg(root.join("Dockerfile"))
        .assert()
        .success()
        .stdout(expected);
}

#[test]
fn empty_continuation_lines_warn_on_stderr() {
    let out = rbuild()
        .args(["parse", "-f", "-"])
        .write_stdin("FROM a\nRUN a \\\n\n b\n")
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "-:2:1: Empty continuation line found in: RUN a  b",
        ))
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).expect("JSON output");
    assert_eq!(v["warnings"][0]["span"]["start"]["line"], 2);
}
