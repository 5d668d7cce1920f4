//! Unit tests of the lexer: each modifier, each error message, the options.

use std::collections::HashMap;

use super::*;
use crate::containerfile::shell::{EnvList, NoEnv};

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn word(input: &str, pairs: &[(&str, &str)]) -> Result<String, LexError> {
    Lexer::new('\\').process_word(input, &env(pairs))
}

fn kind(input: &str, pairs: &[(&str, &str)]) -> LexErrorKind {
    word(input, pairs).expect_err(input).kind
}

fn set<const N: usize>(names: [&str; N]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[test]
fn default_and_alternative_values() {
    let e = [("FOO", "xxx"), ("BAR", "")];
    assert_eq!(
        word("${FOO-aaa} ${BAR-bbb} ${BAZ-ccc}", &e).unwrap(),
        "xxx  ccc"
    );
    assert_eq!(
        word("${FOO:-aaa} ${BAR:-bbb} ${BAZ:-ccc}", &e).unwrap(),
        "xxx bbb ccc"
    );
    assert_eq!(
        word("${FOO+aaa} ${BAR+bbb} ${BAZ+ccc}", &e).unwrap(),
        "aaa bbb "
    );
    assert_eq!(
        word("${FOO:+aaa} ${BAR:+bbb} ${BAZ:+ccc}", &e).unwrap(),
        "aaa  "
    );
    assert_eq!(word("${BAZ:-}", &e).unwrap(), "");
    assert_eq!(word("${BAZ:-${FOO}/${BAR:-d}}", &e).unwrap(), "xxx/d");
}

#[test]
fn required_values_and_their_messages() {
    let set_env = [("VAR", "plain"), ("ARG", "x")];
    let empty_env = [("VAR", ""), ("ARG", "x")];
    let unset_env = [("ARG", "x")];
    assert_eq!(word("${VAR:?message here$ARG}", &set_env).unwrap(), "plain");
    assert_eq!(word("${VAR?message here$ARG}", &empty_env).unwrap(), "");
    let err = word("${VAR:?message here$ARG}", &empty_env).unwrap_err();
    assert_eq!(
        err.to_string(),
        "failed to process \"${VAR:?message here$ARG}\": VAR: message herex"
    );
    let err = word("${VAR?message here$ARG}", &unset_env).unwrap_err();
    assert_eq!(
        err.to_string(),
        "failed to process \"${VAR?message here$ARG}\": VAR: message herex"
    );
    assert_eq!(
        kind("${VAR?}", &[]).to_string(),
        "VAR: is not allowed to be unset"
    );
    assert_eq!(
        kind("${VAR:?}", &empty_env).to_string(),
        "VAR: is not allowed to be empty"
    );
    assert_eq!(
        kind("${VAR:?}", &[]).to_string(),
        "VAR: is not allowed to be unset"
    );
}

#[test]
fn prefix_and_suffix_removal() {
    let cases: &[(&str, &str, &str)] = &[
        ("${FOO#()[]{\\}^$.\\*\\?|\\\\}", "()[]{}^$.*?|\\x", "x"),
        ("${FOO%%\\**}", "xx**", "xx"),
        ("${FOO#*x*y}", "xxyy", "y"),
        ("${FOO#*}", "xxyy", "xxyy"),
        ("${FOO#}", "xxyy", "xxyy"),
        ("${FOO##*x}", "xxyy", "yy"),
        ("${FOO##}", "xxyy", "xxyy"),
        ("${FOO#?\\?}", "???y", "?y"),
        ("${FOO%%\\**\\*}", "a***yy*", "a"),
        ("${FOO%}", "xxyy", "xxyy"),
        ("${FOO%y}", "xxyy", "xxy"),
        ("${FOO%%y*}", "xyxy", "x"),
        ("${FOO%y*}", "xyxy", "xyx"),
    ];
    for (input, value, expected) in cases {
        assert_eq!(
            &word(input, &[("FOO", value)]).unwrap(),
            expected,
            "{input}"
        );
    }
    assert_eq!(
        word("${FOO#$BAR}", &[("FOO", "xxyy"), ("BAR", "x")]).unwrap(),
        "xyy"
    );
    assert_eq!(
        word("${ABC:-.}${FOO%x}${ABC:-.}", &[("FOO", "xxyy")]).unwrap(),
        ".xxyy."
    );
    assert_eq!(word("${NOPE#x}", &[]).unwrap(), "");
}

#[test]
fn pattern_substitution() {
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        (
            "${FOO/$NEEDLE/.} - ${FOO//$NEEDLE/.}",
            &[("FOO", "/foo*/*/*.txt"), ("NEEDLE", "\\*/")],
            "/foo.*/*.txt - /foo..*.txt",
        ),
        (
            "${FOO/$NEEDLE/} - ${FOO//$NEEDLE/}",
            &[("FOO", "/tmp/tmp/bar.txt"), ("NEEDLE", "/tmp")],
            "/tmp/bar.txt - /bar.txt",
        ),
        (
            "${FOO/$N/$R} - ${FOO//$N/$R}",
            &[("FOO", "/a/foo/b/c.txt"), ("N", "/?/"), ("R", "/")],
            "/foo/b/c.txt - /foo/c.txt",
        ),
        (
            "${FOO/$N/$R}",
            &[
                ("FOO", "http://google.de"),
                ("N", "http://"),
                ("R", "https://"),
            ],
            "https://google.de",
        ),
        (
            "${FOO//\\//\\/}",
            &[("FOO", "/tmp/foo.txt")],
            "\\/tmp\\/foo.txt",
        ),
        ("${FOO/$BAR/ww}", &[("FOO", "xxyy"), ("BAR", "")], "wwxxyy"),
        ("${FOO///}", &[("FOO", "xxyy")], "xxyy"),
        ("${FOO///}", &[], ""),
        ("${FOO//y*/z}", &[("FOO", "xxyy")], "xxz"),
    ];
    for (input, pairs, expected) in cases {
        assert_eq!(&word(input, pairs).unwrap(), expected, "{input}");
    }
}

#[test]
fn error_messages_name_the_variable_and_word() {
    let e = [("FOO", "xxyy")];
    let cases: &[(&str, &str)] = &[
        ("he${PWD", "syntax error: missing '}' (the expansion of ${PWD… is never closed)"),
        ("${", "syntax error: missing '}' (the expansion of ${… is never closed)"),
        ("${aaa:-bbb ${foo}", "syntax error: missing '}' (the expansion of ${aaa… is never closed)"),
        ("${FOO//}", "syntax error: missing '/' in ${} (${FOO/pattern/replacement} needs a second '/')"),
        ("${FOO//ww}", "syntax error: missing '/' in ${} (${FOO/pattern/replacement} needs a second '/')"),
        ("${}", "syntax error: bad substitution (a variable name must follow \"${\", found '}')"),
        ("${:-x}", "syntax error: bad substitution (a variable name must follow \"${\", found ':')"),
        ("${{a}", "syntax error: bad substitution (a variable name must follow \"${\", found '{')"),
        ("${.}", "unsupported modifier (.) in substitution of ${}: use one of - + ? # ## % %% / // with or without ':' (':' not before # or %)"),
        ("${FOO=x}", "unsupported modifier (=) in substitution of ${FOO}: use one of - + ? # ## % %% / // with or without ':' (':' not before # or %)"),
        ("${FOO:=x}", "unsupported modifier (:=) in substitution of ${FOO}: use one of - + ? # ## % %% / // with or without ':' (':' not before # or %)"),
        ("${FOO:#x}", "unsupported modifier (:#) in substitution of ${FOO}: use one of - + ? # ## % %% / // with or without ':' (':' not before # or %)"),
        ("${FOO:%%x}", "unsupported modifier (:%) in substitution of ${FOO}: use one of - + ? # ## % %% / // with or without ':' (':' not before # or %)"),
        ("${FOO#\\x}", "invalid pattern (\\x) in substitution of ${FOO}: invalid escape '\\x'"),
        ("${FOO/\\a/b}", "invalid pattern (\\a) in substitution of ${FOO}: invalid escape '\\a'"),
        ("'abc", "unexpected end of statement while looking for matching single-quote"),
        ("\"abc", "unexpected end of statement while looking for matching double-quote"),
    ];
    for (input, message) in cases {
        let err = word(input, &e).expect_err(input);
        assert_eq!(
            err.to_string(),
            format!("failed to process {input:?}: {message}"),
            "{input}"
        );
        assert_eq!(err.word, *input);
    }
}

#[test]
fn error_offsets_point_into_the_word() {
    let err = word("ab'cd", &[]).unwrap_err();
    assert_eq!(err.offset, 5);
    let err = word("x${}y", &[]).unwrap_err();
    assert_eq!(err.offset, 3);
}

#[test]
fn reports_matched_and_unmatched() {
    let lexer = Lexer::new('\\');
    let e = env(&[("FOO", "xxx"), ("BAR", "")]);
    let got = lexer
        .process_word_with_matches("x ${FOO:-a} $BAR ${BAZ+q}", &e)
        .unwrap();
    assert_eq!(got.result, "x xxx  ");
    assert_eq!(got.matched, set(["FOO", "BAR"]));
    assert_eq!(got.unmatched, set(["BAZ"]));
    assert_eq!(got.words, ["x", "xxx"]);
    let got = lexer.process_word_with_matches("plain", &e).unwrap();
    assert!(got.matched.is_empty() && got.unmatched.is_empty());
    let release = "s-${V}.${OS}-${ARCH}${VARIANT:+-${VARIANT}}.tgz";
    let full = env(&[
        ("V", "1"),
        ("OS", "linux"),
        ("ARCH", "arm"),
        ("VARIANT", "v7"),
    ]);
    assert_eq!(
        lexer.process_word(release, &full).unwrap(),
        "s-1.linux-arm-v7.tgz"
    );
    let none = env(&[("V", "1"), ("OS", "linux"), ("ARCH", "arm64")]);
    assert_eq!(
        lexer.process_word(release, &none).unwrap(),
        "s-1.linux-arm64.tgz"
    );
}

#[test]
fn splitting_keeps_quoted_and_escaped_spaces() {
    let lexer = Lexer::new('\\');
    let e = EnvList::from_entries(["P=80 443/udp", "E="]);
    assert_eq!(
        lexer.process_words("$P 8080", &e).unwrap(),
        ["80", "443/udp", "8080"]
    );
    assert_eq!(
        lexer.process_words("\"$P\" a\\ b", &e).unwrap(),
        ["80 443/udp", "a b"]
    );
    assert!(lexer.process_words("$E", &e).unwrap().is_empty());
    assert!(lexer.process_words("\"\"", &e).unwrap().is_empty());
    // Differs from BuildKit on purpose: the text before a nested ${…} is kept.
    assert_eq!(lexer.process_words("a${X:-b} c", &e).unwrap(), ["ab", "c"]);
    assert_eq!(
        lexer.process_words("cat << EOF", &NoEnv).unwrap(),
        ["cat", "<< EOF"]
    );
}

#[test]
fn backtick_escape() {
    assert_eq!(Lexer::default().escape(), '\\');
    let lexer = Lexer::new('`');
    let e = env(&[("A", "1")]);
    assert_eq!(lexer.process_word("C:\\dir`$A", &e).unwrap(), "C:\\dir$A");
    assert_eq!(lexer.process_word("\"a`\"b\\c\"", &e).unwrap(), "a\"b\\c");
    assert_eq!(lexer.process_word("$A`", &e).unwrap(), "1");
}

#[test]
fn raw_options_for_heredoc_detection() {
    let e = NoEnv;
    let raw = Lexer::new('\\')
        .raw_quotes(true)
        .raw_escapes(true)
        .skip_unset_env(true);
    assert_eq!(
        raw.process_words("<<\"EOF\" $X ${Y:-z} a\\ b", &e).unwrap(),
        ["<<\"EOF\"", "$X", "${Y:-z}", "a\\ b"]
    );
    let skip = Lexer::new('\\').skip_unset_env(true);
    assert_eq!(
        skip.process_word("${X} $X ${X//a/b} ${X:+y}", &e).unwrap(),
        "${X} $X ${X//a/b} ${X:+y}"
    );
    let verbatim_quotes = Lexer::new('\\').skip_process_quotes(true);
    assert_eq!(
        verbatim_quotes
            .process_word("'$A' \"b\"", &env(&[("A", "1")]))
            .unwrap(),
        "'1' \"b\""
    );
}

#[test]
fn parameters_and_byte_order_mark() {
    assert_eq!(word("\u{feff}$1$@x$$", &[]).unwrap(), "x");
    assert_eq!(word("$", &[]).unwrap(), "$");
    assert_eq!(word("a$ b", &[]).unwrap(), "a$ b");
    assert_eq!(word("${한:-k}$한", &[("한", "v")]).unwrap(), "vv");
    // `²` is not a Go digit, so it ends the name.
    assert_eq!(word("$A²", &[("A", "1")]).unwrap(), "1²");
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let deep = "${A:-".repeat(MAX_NESTING + 5) + &"}".repeat(MAX_NESTING + 5);
    assert_eq!(
        kind(&deep, &[]),
        LexErrorKind::TooDeep { limit: MAX_NESTING }
    );
    let fine = "${A:-".repeat(MAX_NESTING - 1) + "x" + &"}".repeat(MAX_NESTING - 1);
    assert_eq!(word(&fine, &[]).unwrap(), "x");
}
