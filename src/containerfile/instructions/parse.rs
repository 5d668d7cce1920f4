//! AST node → typed [`Instruction`], and instructions → stages: BuildKit's
//! `instructions/parse.go`. One dispatch on the keyword, one function per
//! instruction; flags are declared next to the instruction that takes them.

use std::collections::HashMap;

use super::duration::parse_go_duration;
use super::flags::{FlagError, FlagKind, Flags};
use super::suggest::suggest;
use super::*;
use crate::containerfile::ast::{Ast, Node};
use crate::containerfile::error::{ErrorKind, ParseError};
use crate::containerfile::heredoc::parse_heredoc_word;
use crate::containerfile::source::Source;

/// Every instruction keyword, for "did you mean".
const INSTRUCTIONS: &[&str] = &[
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// An error plus the word its caret should point at ("" = the keyword).
type Fail = (ErrorKind, String);
type R<T> = Result<T, Fail>;

fn at(kind: ErrorKind) -> Fail {
    (kind, String::new())
}

impl std::convert::From<FlagError> for Fail {
    fn from(e: FlagError) -> Fail {
        (e.kind, e.flag)
    }
}

/// Groups the AST's instructions into stages, checking each.
pub(crate) fn parse_stages(ast: Ast, src: &Source<'_>) -> Result<Containerfile, ParseError> {
    let mut global_args = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    let mut names: HashMap<String, usize> = HashMap::new();
    for node in &ast.nodes {
        let instruction = parse_instruction(node, src)?;
        match instruction {
            Instruction::Arg(arg) if stages.is_empty() => global_args.push(arg),
            Instruction::From(from) => {
                if let Some(name) = &from.name {
                    if let Some(&first_line) = names.get(name) {
                        let kind = ErrorKind::DuplicateStageName {
                            name: name.clone(),
                            first_line,
                        };
                        let needle = node.args.get(2).cloned().unwrap_or_default();
                        return Err(src.error_near(kind, &node.span, &needle));
                    }
                    names.insert(name.clone(), node.span.start.line);
                }
                stages.push(Stage {
                    name: from.name.clone(),
                    span: from.origin.span.clone(),
                    from,
                    instructions: Vec::new(),
                });
            }
            other => {
                let Some(stage) = stages.last_mut() else {
                    let kind = ErrorKind::NoStage {
                        instruction: other.name().to_string(),
                    };
                    return Err(src.error(kind, node.span.start.line, node.span.start.column));
                };
                stage.span.end = other.span().end;
                stage.instructions.push(other);
            }
        }
    }
    Ok(Containerfile {
        directives: ast.directives,
        escape: ast.escape,
        global_args,
        stages,
        warnings: ast.warnings,
    })
}

/// One node → one typed instruction, errors located in `src`.
pub(crate) fn parse_instruction(node: &Node, src: &Source<'_>) -> Result<Instruction, ParseError> {
    dispatch(node, &node.heredocs).map_err(|(kind, needle)| {
        let needle = if needle.is_empty() {
            node.keyword.clone()
        } else {
            needle
        };
        src.error_near(kind, &node.span, &needle)
    })
}

fn origin(node: &Node) -> Origin {
    Origin {
        original: node.original.clone(),
        span: node.span.clone(),
    }
}

fn flags(node: &Node, name: &str, declared: &[(&'static str, FlagKind)]) -> R<Flags> {
    Ok(Flags::parse(name, &node.flags, declared)?)
}

fn no_flags(node: &Node, name: &str) -> R<()> {
    flags(node, name, &[]).map(|_| ())
}

fn dispatch(node: &Node, heredocs: &[Heredoc]) -> R<Instruction> {
    let lower = node.keyword.to_lowercase();
    Ok(match lower.as_str() {
        "from" => Instruction::From(parse_from(node)?),
        "run" => Instruction::Run(parse_run(node, heredocs)?),
        "cmd" => Instruction::Cmd(Cmd {
            command: command(node, "CMD", false)?,
            origin: origin(node),
        }),
        "entrypoint" => Instruction::Entrypoint(Entrypoint {
            command: command(node, "ENTRYPOINT", false)?,
            origin: origin(node),
        }),
        "label" => Instruction::Label(Label {
            labels: key_values(node, "LABEL")?,
            origin: origin(node),
        }),
        "env" => Instruction::Env(Env {
            vars: key_values(node, "ENV")?,
            origin: origin(node),
        }),
        "maintainer" => Instruction::Maintainer(Maintainer {
            name: one_arg(node, "MAINTAINER")?,
            origin: origin(node),
        }),
        "user" => Instruction::User(User {
            user: one_arg(node, "USER")?,
            origin: origin(node),
        }),
        "workdir" => Instruction::Workdir(Workdir {
            path: one_arg(node, "WORKDIR")?,
            origin: origin(node),
        }),
        "stopsignal" => Instruction::StopSignal(StopSignal {
            signal: one_arg(node, "STOPSIGNAL")?,
            origin: origin(node),
        }),
        "expose" => {
            if node.args.is_empty() {
                return Err(at(ErrorKind::AtLeastOneArgument {
                    instruction: "EXPOSE".into(),
                }));
            }
            no_flags(node, "EXPOSE")?;
            let mut ports = node.args.clone();
            ports.sort();
            Instruction::Expose(Expose {
                ports,
                origin: origin(node),
            })
        }
        "volume" => {
            if node.args.is_empty() {
                return Err(at(ErrorKind::AtLeastOneArgument {
                    instruction: "VOLUME".into(),
                }));
            }
            no_flags(node, "VOLUME")?;
            let mut paths = Vec::new();
            for v in &node.args {
                let v = v.trim();
                if v.is_empty() {
                    return Err(at(ErrorKind::EmptyVolume));
                }
                paths.push(v.to_string());
            }
            Instruction::Volume(Volume {
                paths,
                origin: origin(node),
            })
        }
        "add" => Instruction::Add(parse_add(node, heredocs)?),
        "copy" => Instruction::Copy(parse_copy(node, heredocs)?),
        "arg" => Instruction::Arg(parse_arg(node)?),
        "onbuild" => Instruction::Onbuild(parse_onbuild(node)?),
        "healthcheck" => Instruction::Healthcheck(parse_healthcheck(node)?),
        "shell" => {
            no_flags(node, "SHELL")?;
            if node.args.is_empty() {
                return Err(at(ErrorKind::AtLeastOneArgument {
                    instruction: "SHELL".into(),
                }));
            }
            if !node.json {
                return Err(at(ErrorKind::ShellNotJson));
            }
            Instruction::Shell(Shell {
                shell: node.args.clone(),
                origin: origin(node),
            })
        }
        _ => {
            let suggestion = suggest(&node.keyword, INSTRUCTIONS.iter().copied());
            return Err(at(ErrorKind::UnknownInstruction {
                name: node.keyword.clone(),
                suggestion,
            }));
        }
    })
}

fn one_arg(node: &Node, name: &str) -> R<String> {
    if node.args.len() != 1 {
        return Err(at(ErrorKind::ExactlyOneArgument {
            instruction: name.into(),
        }));
    }
    no_flags(node, name)?;
    Ok(node.args[0].clone())
}

/// Shell form joins the words with spaces (there is one); exec form keeps them.
fn command(node: &Node, name: &str, allow_empty_shell: bool) -> R<Command> {
    no_flags(node, name)?;
    command_of(node, name, allow_empty_shell)
}

fn command_of(node: &Node, name: &str, allow_empty_shell: bool) -> R<Command> {
    if node.json {
        return Ok(Command::Exec(node.args.clone()));
    }
    if node.args.is_empty() && !allow_empty_shell {
        return Err(at(ErrorKind::AtLeastOneArgument {
            instruction: name.into(),
        }));
    }
    Ok(Command::Shell(node.args.join(" ")))
}

fn parse_from(node: &Node) -> R<From> {
    let args = &node.args;
    let name = match args.len() {
        3 if args[1].eq_ignore_ascii_case("as") => {
            let name = args[2].to_lowercase();
            let valid = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
            if !valid {
                return Err((
                    ErrorKind::InvalidStageName {
                        name: args[2].clone(),
                    },
                    args[2].clone(),
                ));
            }
            Some(name)
        }
        1 => None,
        _ => return Err(at(ErrorKind::FromArguments)),
    };
    let f = flags(node, "FROM", &[("platform", FlagKind::String)])?;
    Ok(From {
        image: args[0].clone(),
        platform: f.string("platform"),
        name,
        origin: origin(node),
    })
}

fn parse_run(node: &Node, heredocs: &[Heredoc]) -> R<Run> {
    let f = flags(
        node,
        "RUN",
        &[
            ("mount", FlagKind::Strings),
            ("network", FlagKind::String),
            ("security", FlagKind::String),
        ],
    )?;
    let network = match f.string("network").as_deref() {
        None | Some("default") => NetworkMode::Default,
        Some("none") => NetworkMode::None,
        Some("host") => NetworkMode::Host,
        Some(other) => {
            return Err((
                ErrorKind::InvalidNetwork {
                    value: other.into(),
                },
                format!("--network={other}"),
            ));
        }
    };
    let security = match f.string("security").as_deref() {
        None | Some("sandbox") => Security::Sandbox,
        Some("insecure") => Security::Insecure,
        Some(other) => {
            return Err((
                ErrorKind::InvalidSecurity {
                    value: other.into(),
                },
                format!("--security={other}"),
            ));
        }
    };
    let mut mounts = Vec::new();
    for spec in f.strings("mount") {
        let m = RunMount::parse(&spec).map_err(|e| (ErrorKind::Mount(e), spec.clone()))?;
        mounts.push(m);
    }
    Ok(Run {
        command: command_of(node, "RUN", false)?,
        heredocs: heredocs.to_vec(),
        mounts,
        network,
        security,
        origin: origin(node),
    })
}

fn key_values(node: &Node, name: &str) -> R<Vec<KeyValue>> {
    no_flags(node, name)?;
    if node.args.is_empty() {
        return Err(at(ErrorKind::AtLeastOneArgument {
            instruction: name.into(),
        }));
    }
    let mut out = Vec::new();
    for triple in node.args.chunks(3) {
        let [key, value, delim] = triple else {
            return Err(at(ErrorKind::AtLeastOneArgument {
                instruction: name.into(),
            }));
        };
        if key.is_empty() {
            return Err((
                ErrorKind::BlankName {
                    instruction: name.into(),
                },
                format!("={value}"),
            ));
        }
        out.push(KeyValue {
            key: key.clone(),
            value: value.clone(),
            legacy: delim.is_empty(),
        });
    }
    Ok(out)
}

fn sources_and_dest(node: &Node, name: &str, heredocs: &[Heredoc]) -> R<(Vec<CopySource>, String)> {
    let (dest, srcs) = node
        .args
        .split_last()
        .expect("checked: at least two arguments");
    if matches!(parse_heredoc_word(dest), Ok(Some(_))) {
        return Err((
            ErrorKind::HeredocDestination {
                instruction: name.into(),
            },
            dest.clone(),
        ));
    }
    let mut sources = Vec::new();
    for src in srcs {
        match parse_heredoc_word(src) {
            Ok(Some(marker)) => {
                // Bodies are matched by name, as BuildKit does; a JSON-form
                // marker has no body and becomes an empty file.
                let doc = heredocs
                    .iter()
                    .find(|h| h.name == marker.name)
                    .cloned()
                    .unwrap_or(marker);
                sources.push(CopySource::Heredoc(doc));
            }
            _ => sources.push(CopySource::Path(src.clone())),
        }
    }
    Ok((sources, dest.clone()))
}

fn parse_add(node: &Node, heredocs: &[Heredoc]) -> R<Add> {
    if node.args.len() < 2 {
        return Err(at(ErrorKind::NoDestination {
            instruction: "ADD".into(),
        }));
    }
    let f = flags(
        node,
        "ADD",
        &[
            ("chown", FlagKind::String),
            ("chmod", FlagKind::String),
            ("link", FlagKind::Bool),
            ("keep-git-dir", FlagKind::Bool),
            ("checksum", FlagKind::String),
            ("unpack", FlagKind::Bool),
            ("exclude", FlagKind::Strings),
        ],
    )?;
    let (sources, dest) = sources_and_dest(node, "ADD", heredocs)?;
    Ok(Add {
        sources,
        dest,
        chown: f.string("chown"),
        chmod: f.string("chmod"),
        link: f.bool("link").unwrap_or(false),
        checksum: f.string("checksum"),
        keep_git_dir: f.bool("keep-git-dir"),
        unpack: f.bool("unpack"),
        excludes: f.strings("exclude"),
        origin: origin(node),
    })
}

fn parse_copy(node: &Node, heredocs: &[Heredoc]) -> R<Copy> {
    if node.args.len() < 2 {
        return Err(at(ErrorKind::NoDestination {
            instruction: "COPY".into(),
        }));
    }
    let f = flags(
        node,
        "COPY",
        &[
            ("chown", FlagKind::String),
            ("from", FlagKind::String),
            ("chmod", FlagKind::String),
            ("link", FlagKind::Bool),
            ("exclude", FlagKind::Strings),
            ("parents", FlagKind::Bool),
        ],
    )?;
    let (sources, dest) = sources_and_dest(node, "COPY", heredocs)?;
    Ok(Copy {
        sources,
        dest,
        from: f.string("from"),
        chown: f.string("chown"),
        chmod: f.string("chmod"),
        link: f.bool("link").unwrap_or(false),
        parents: f.bool("parents").unwrap_or(false),
        excludes: f.strings("exclude"),
        origin: origin(node),
    })
}

fn parse_arg(node: &Node) -> R<Arg> {
    if node.args.is_empty() {
        return Err(at(ErrorKind::AtLeastOneArgument {
            instruction: "ARG".into(),
        }));
    }
    no_flags(node, "ARG")?;
    let mut args = Vec::new();
    for word in &node.args {
        let def = match word.split_once('=') {
            Some(("", _)) => {
                return Err((
                    ErrorKind::BlankName {
                        instruction: "ARG".into(),
                    },
                    word.clone(),
                ))
            }
            Some((k, v)) => ArgDef {
                name: k.to_string(),
                default: Some(v.to_string()),
            },
            None => ArgDef {
                name: word.clone(),
                default: None,
            },
        };
        args.push(def);
    }
    Ok(Arg {
        args,
        origin: origin(node),
    })
}

fn parse_onbuild(node: &Node) -> R<Onbuild> {
    let Some(trigger) = &node.trigger else {
        return Err(at(ErrorKind::AtLeastOneArgument {
            instruction: "ONBUILD".into(),
        }));
    };
    no_flags(node, "ONBUILD")?;
    let upper = trigger.keyword.trim().to_uppercase();
    match upper.as_str() {
        "ONBUILD" => return Err((ErrorKind::OnbuildChain, trigger.original.clone())),
        "MAINTAINER" | "FROM" => {
            return Err((
                ErrorKind::OnbuildTrigger {
                    trigger: upper.clone(),
                },
                trigger.original.clone(),
            ));
        }
        _ => {}
    }
    // Errors without a word of their own point at the trigger, not at ONBUILD.
    let typed = dispatch(trigger, &node.heredocs).map_err(|(kind, needle)| {
        let needle = if needle.is_empty() {
            trigger.original.clone()
        } else {
            needle
        };
        (kind, needle)
    })?;
    // The expression is the line without its ONBUILD keyword, heredocs appended.
    let original = node.original.trim_start();
    let after = original
        .get(node.keyword.len()..)
        .unwrap_or("")
        .trim_start();
    let mut expression = after.to_string();
    for doc in &node.heredocs {
        expression.push('\n');
        expression.push_str(&doc.content);
        expression.push_str(&doc.name);
    }
    Ok(Onbuild {
        trigger: Box::new(typed),
        expression,
        origin: origin(node),
    })
}

fn duration_flag(f: &Flags, name: &str) -> R<Option<std::time::Duration>> {
    let Some(value) = f.string(name) else {
        return Ok(None);
    };
    if value.is_empty() {
        return Ok(None);
    }
    let flag = format!("--{name}");
    let d = parse_go_duration(&value).map_err(|reason| {
        if reason == "negative duration" {
            (
                ErrorKind::DurationTooShort { flag: name.into() },
                flag.clone(),
            )
        } else {
            (
                ErrorKind::InvalidDuration {
                    flag: flag.clone(),
                    value: value.clone(),
                    reason,
                },
                flag.clone(),
            )
        }
    })?;
    if d.is_zero() {
        return Ok(None);
    }
    if d < std::time::Duration::from_millis(1) {
        return Err((ErrorKind::DurationTooShort { flag: name.into() }, flag));
    }
    Ok(Some(d))
}

fn parse_healthcheck(node: &Node) -> R<Healthcheck> {
    let Some(kind) = node.args.first() else {
        return Err(at(ErrorKind::AtLeastOneArgument {
            instruction: "HEALTHCHECK".into(),
        }));
    };
    let typ = kind.to_uppercase();
    let rest = &node.args[1..];
    if typ == "NONE" {
        if !rest.is_empty() {
            return Err(at(ErrorKind::HealthcheckNoneArguments));
        }
        no_flags(node, "HEALTHCHECK NONE")?;
        return Ok(Healthcheck {
            check: HealthcheckKind::None,
            origin: origin(node),
        });
    }
    let f = flags(
        node,
        "HEALTHCHECK",
        &[
            ("interval", FlagKind::String),
            ("timeout", FlagKind::String),
            ("start-period", FlagKind::String),
            ("start-interval", FlagKind::String),
            ("retries", FlagKind::String),
        ],
    )?;
    if typ != "CMD" {
        return Err((
            ErrorKind::HealthcheckType { kind: kind.clone() },
            kind.clone(),
        ));
    }
    if rest.is_empty() {
        return Err(at(ErrorKind::HealthcheckMissingCommand));
    }
    let command = if node.json {
        Command::Exec(rest.to_vec())
    } else {
        Command::Shell(rest.join(" "))
    };
    let interval = duration_flag(&f, "interval")?;
    let timeout = duration_flag(&f, "timeout")?;
    let start_period = duration_flag(&f, "start-period")?;
    let start_interval = duration_flag(&f, "start-interval")?;
    let retries = match f.string("retries") {
        None => 0,
        Some(v) if v.is_empty() => 0,
        Some(v) => {
            let n: i64 = v
                .parse::<i32>()
                .map_err(|_| {
                    (
                        ErrorKind::InvalidRetries { value: v.clone() },
                        "--retries".to_string(),
                    )
                })?
                .into();
            if n < 0 {
                return Err((ErrorKind::NegativeRetries { value: n }, "--retries".into()));
            }
            n as u32
        }
    };
    Ok(Healthcheck {
        check: HealthcheckKind::Cmd {
            command,
            interval,
            timeout,
            start_period,
            start_interval,
            retries,
        },
        origin: origin(node),
    })
}
