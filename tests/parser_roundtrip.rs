//! Property tests: for generated Containerfiles, parse → print → parse gives
//! the same typed instructions (spans and original text aside); and no
//! input, however odd, makes the parser panic.

use proptest::prelude::*;
use rbuild::containerfile::{parse, parse_ast, print, Instruction};

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-zA-Z0-9_./:-]{1,8}",
        1 => "\\$[A-Z]{1,4}",
        1 => "\\$\\{[A-Z]{1,4}(:-[a-z]{0,3})?\\}",
    ]
    .prop_filter("not a flag or heredoc", |w| {
        !w.starts_with("--") && !w.contains("<<")
    })
}

fn words(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(word(), 1..max).prop_map(|v| v.join(" "))
}

fn json_array() -> impl Strategy<Value = String> {
    prop::collection::vec("\\PC{0,6}", 0..4).prop_map(|v| serde_json::to_string(&v).unwrap())
}

fn command() -> impl Strategy<Value = String> {
    prop_oneof![
        words(5),
        json_array().prop_filter("non-empty", |j| j != "[]")
    ]
}

fn key() -> impl Strategy<Value = String> {
    "[A-Za-z_][A-Za-z0-9_.]{0,6}"
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9/:._-]{0,8}",
        "\"[a-z0-9 ]{0,8}\"",
        "'[a-z \\$]{0,6}'",
        "[a-z]{1,3}\\\\ [a-z]{1,3}",
    ]
}

fn kv_pairs() -> impl Strategy<Value = String> {
    prop::collection::vec((key(), value()), 1..4).prop_map(|v| {
        v.into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    })
}

fn flag_value() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z0-9:/]{1,6}", "\"[a-z0-9 ]{1,6}\""]
}

fn heredoc_copy() -> impl Strategy<Value = String> {
    (
        "[A-Z]{1,4}",
        any::<bool>(),
        any::<bool>(),
        prop::collection::vec("[a-z $]{0,8}", 0..3),
        word(),
    )
        .prop_map(|(name, chomp, quoted, body, dest)| {
            let marker = if quoted {
                format!("'{name}'")
            } else {
                name.clone()
            };
            let dash = if chomp { "-" } else { "" };
            let mut s = format!("COPY <<{dash}{marker} /{dest}\n");
            for line in body {
                if line != name {
                    s.push_str(&format!("\t{line}\n"));
                }
            }
            s.push_str(&name);
            s
        })
}

fn instruction() -> impl Strategy<Value = String> {
    prop_oneof![
        (
            prop::option::of("(none|host|default)"),
            prop::option::of("[a-z]{1,5}"),
            command()
        )
            .prop_map(|(net, cache, cmd)| {
                let mut s = String::from("RUN");
                if let Some(n) = net {
                    s.push_str(&format!(" --network={n}"));
                }
                if let Some(c) = cache {
                    s.push_str(&format!(" --mount=type=cache,target=/{c}"));
                }
                format!("{s} {cmd}")
            }),
        command().prop_map(|c| format!("CMD {c}")),
        command().prop_map(|c| format!("ENTRYPOINT {c}")),
        kv_pairs().prop_map(|p| format!("ENV {p}")),
        (key(), words(4)).prop_map(|(k, v)| format!("ENV {k} {v}")),
        kv_pairs().prop_map(|p| format!("LABEL {p}")),
        prop::collection::vec((key(), prop::option::of(value())), 1..4).prop_map(|v| {
            let w: Vec<String> = v
                .into_iter()
                .map(|(k, d)| match d {
                    Some(d) => format!("{k}={d}"),
                    None => k,
                })
                .collect();
            format!("ARG {}", w.join(" "))
        }),
        prop::collection::vec("[0-9]{1,5}(/(tcp|udp))?", 1..4)
            .prop_map(|p| format!("EXPOSE {}", p.join(" "))),
        words(4).prop_map(|w| format!("VOLUME {w}")),
        json_array()
            .prop_filter("non-empty paths", |j| {
                let v: Vec<String> = serde_json::from_str(j).unwrap();
                !v.is_empty() && v.iter().all(|p| !p.trim().is_empty())
            })
            .prop_map(|j| format!("VOLUME {j}")),
        word().prop_map(|w| format!("USER {w}")),
        words(3).prop_map(|w| format!("WORKDIR {w}")),
        word().prop_map(|w| format!("STOPSIGNAL {w}")),
        words(3).prop_map(|w| format!("MAINTAINER {w}")),
        (
            prop::option::of(flag_value()),
            any::<bool>(),
            any::<bool>(),
            words(4),
            word()
        )
            .prop_map(|(chown, link, parents, srcs, dest)| {
                let mut s = String::from("COPY");
                if let Some(c) = chown {
                    s.push_str(&format!(" --chown={c}"));
                }
                if link {
                    s.push_str(" --link");
                }
                if parents {
                    s.push_str(" --parents=true");
                }
                format!("{s} {srcs} {dest}")
            }),
        (
            prop::option::of(flag_value()),
            prop::option::of(any::<bool>()),
            words(3),
            word()
        )
            .prop_map(|(checksum, keep, srcs, dest)| {
                let mut s = String::from("ADD --exclude=*.tmp");
                if let Some(c) = checksum {
                    s.push_str(&format!(" --checksum={c}"));
                }
                if let Some(k) = keep {
                    s.push_str(&format!(" --keep-git-dir={k}"));
                }
                format!("{s} {srcs} {dest}")
            }),
        heredoc_copy(),
        Just("HEALTHCHECK NONE".to_string()),
        (0u32..120, 0u32..5, command()).prop_map(|(secs, retries, c)| {
            format!(
                "HEALTHCHECK --interval={secs}s --timeout=1m{secs}s --retries={retries} CMD {c}"
            )
        }),
        json_array()
            .prop_filter("non-empty", |j| j != "[]")
            .prop_map(|j| format!("SHELL {j}")),
        command().prop_map(|c| format!("ONBUILD RUN {c}")),
        words(3).prop_map(|w| format!("ONBUILD WORKDIR {w}")),
    ]
}

/// Splits some lines with continuations, to exercise the joiner too.
fn with_continuations(line: String, split: bool) -> String {
    if !split || line.contains('\n') {
        return line;
    }
    match line.find(' ') {
        Some(i) => format!("{} \\\n  {}", &line[..i], &line[i + 1..]),
        None => line,
    }
}

fn containerfile() -> impl Strategy<Value = String> {
    (
        "[a-z]{1,6}",
        prop::option::of("[a-z]{1,6}"),
        prop::collection::vec((instruction(), any::<bool>()), 0..12),
    )
        .prop_map(|(image, name, body)| {
            let mut s = String::from("# syntax=docker/dockerfile:1\nARG BASE=x\n");
            s.push_str(&format!("FROM {image}"));
            if let Some(n) = name {
                s.push_str(&format!(" AS {n}"));
            }
            s.push('\n');
            for (line, split) in body {
                s.push_str(&with_continuations(line, split));
                s.push('\n');
            }
            s
        })
}

fn meaning(text: &str) -> Vec<Instruction> {
    let cf = parse(text, "Containerfile").unwrap_or_else(|e| panic!("{e}\n--- text\n{text}"));
    let mut out: Vec<Instruction> = cf
        .global_args
        .into_iter()
        .map(|a| Instruction::Arg(a).without_origin())
        .collect();
    for s in cf.stages {
        out.push(Instruction::From(s.from).without_origin());
        out.extend(s.instructions.iter().map(Instruction::without_origin));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn print_then_parse_gives_the_same_instructions(text in containerfile()) {
        let first = meaning(&text);
        let cf = parse(&text, "Containerfile").unwrap();
        let printed = print(&cf);
        let second = meaning(&printed);
        prop_assert_eq!(first, second, "printed:\n{}", printed);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "(FROM|RUN|COPY|ENV|ONBUILD|#|\\\\|`|<<|EOF|\\[|\\]|\"|'|=|--|[ \t\r\n]|[a-z]|\\PC){0,64}") {
        let _ = parse(&text, "F").map_err(|e| e.to_string());
        let _ = parse_ast(&text, "F").map(|a| rbuild::containerfile::dump(&a));
    }
}
