//! Unit tests of the typed layer: one per instruction, and the exact text
//! (headline with location) of every error kind the layer raises.

use std::time::Duration;

use super::*;
use crate::containerfile::parse;

fn stage0(text: &str) -> Vec<Instruction> {
    let cf = parse(text, "Containerfile").unwrap_or_else(|e| panic!("{e}"));
    cf.stages.into_iter().next().expect("a stage").instructions
}

fn one(text: &str) -> Instruction {
    stage0(&format!("FROM scratch\n{text}\n"))
        .into_iter()
        .next()
        .expect("an instruction")
}

/// The headline of the error for `text` placed after `FROM scratch`.
fn err(text: &str) -> String {
    parse(&format!("FROM scratch\n{text}\n"), "Containerfile")
        .unwrap_err()
        .headline()
}

#[test]
fn from_with_platform_and_name() {
    let cf = parse(
        "ARG V=1\nFROM --platform=$BUILDPLATFORM golang:$V AS Build\nFROM build\n",
        "F",
    )
    .unwrap();
    assert_eq!(
        cf.global_args[0].args[0],
        ArgDef {
            name: "V".into(),
            default: Some("1".into())
        }
    );
    let s = &cf.stages[0];
    assert_eq!(s.name.as_deref(), Some("build"));
    assert_eq!(s.from.image, "golang:$V");
    assert_eq!(s.from.platform.as_deref(), Some("$BUILDPLATFORM"));
    assert_eq!(cf.stages[1].from.image, "build");
    assert_eq!(cf.stages[1].name, None);
}

#[test]
fn run_forms_and_flags() {
    let Instruction::Run(r) =
        one("RUN --mount=type=cache,target=/c --network=none --security=insecure make all")
    else {
        panic!()
    };
    assert_eq!(r.command, Command::Shell("make all".into()));
    assert_eq!(r.mounts[0].kind, MountType::Cache);
    assert_eq!(
        (r.network, r.security),
        (NetworkMode::None, Security::Insecure)
    );
    let Instruction::Run(r) = one("RUN [\"echo\", \"a b\"]") else {
        panic!()
    };
    assert_eq!(r.command, Command::Exec(vec!["echo".into(), "a b".into()]));
    assert_eq!(
        (r.network, r.security),
        (NetworkMode::Default, Security::Sandbox)
    );
    let Instruction::Run(r) = one("RUN <<EOF\necho hi\nEOF") else {
        panic!()
    };
    assert_eq!(r.command, Command::Shell("<<EOF".into()));
    assert_eq!(r.heredocs[0].content, "echo hi\n");
}

#[test]
fn cmd_entrypoint_shell() {
    assert!(
        matches!(one("CMD echo hi"), Instruction::Cmd(Cmd { command: Command::Shell(s), .. }) if s == "echo hi")
    );
    assert!(
        matches!(one("CMD []"), Instruction::Cmd(Cmd { command: Command::Exec(v), .. }) if v.is_empty())
    );
    assert!(
        matches!(one("ENTRYPOINT [\"/bin/app\"]"), Instruction::Entrypoint(Entrypoint { command: Command::Exec(v), .. }) if v == ["/bin/app"])
    );
    assert!(
        matches!(one("SHELL [\"/bin/bash\", \"-c\"]"), Instruction::Shell(Shell { shell, .. }) if shell == ["/bin/bash", "-c"])
    );
}

#[test]
fn env_label_both_forms() {
    let Instruction::Env(e) = one("ENV A=1 B=\"two words\"") else {
        panic!()
    };
    assert_eq!(
        e.vars[1],
        KeyValue {
            key: "B".into(),
            value: "\"two words\"".into(),
            legacy: false
        }
    );
    let Instruction::Env(e) = one("ENV PATH /usr/bin:/bin") else {
        panic!()
    };
    assert_eq!(
        e.vars,
        vec![KeyValue {
            key: "PATH".into(),
            value: "/usr/bin:/bin".into(),
            legacy: true
        }]
    );
    let Instruction::Label(l) = one("LABEL org.opencontainers.image.title=\"demo\" version=1")
    else {
        panic!()
    };
    assert_eq!(l.labels.len(), 2);
}

#[test]
fn add_and_copy_flags() {
    let Instruction::Add(a) = one(
        "ADD --chown=1:2 --chmod=644 --link --checksum=sha256:ab --keep-git-dir=true --exclude=*.md --exclude=x https://e/x.tgz /dst",
    ) else {
        panic!()
    };
    assert_eq!(
        (a.chown.as_deref(), a.chmod.as_deref()),
        (Some("1:2"), Some("644"))
    );
    assert!(a.link);
    assert_eq!(a.keep_git_dir, Some(true));
    assert_eq!(a.unpack, None);
    assert_eq!(a.excludes, vec!["*.md", "x"]);
    assert_eq!(a.sources, vec![CopySource::Path("https://e/x.tgz".into())]);
    assert_eq!(a.dest, "/dst");
    let Instruction::Copy(c) = one("COPY --from=build --parents --link=false a b /d/") else {
        panic!()
    };
    assert_eq!(c.from.as_deref(), Some("build"));
    assert!(c.parents && !c.link);
    assert_eq!(c.sources.len(), 2);
    let Instruction::Copy(c) = one("COPY <<A <<-'B' /d/\na $X\nA\n\tb\n\tB") else {
        panic!()
    };
    let CopySource::Heredoc(a) = &c.sources[0] else {
        panic!()
    };
    let CopySource::Heredoc(b) = &c.sources[1] else {
        panic!()
    };
    assert_eq!(
        (a.name.as_str(), a.content.as_str(), a.expand),
        ("A", "a $X\n", true)
    );
    assert_eq!(
        (b.name.as_str(), b.body().as_str(), b.expand, b.chomp),
        ("B", "b\n", false, true)
    );
    let Instruction::Copy(c) = one("COPY [\"a b\", \"/c d/\"]") else {
        panic!()
    };
    assert_eq!(c.dest, "/c d/");
}

#[test]
fn small_instructions() {
    assert!(
        matches!(one("USER app:app"), Instruction::User(User { user, .. }) if user == "app:app")
    );
    assert!(
        matches!(one("WORKDIR /app"), Instruction::Workdir(Workdir { path, .. }) if path == "/app")
    );
    assert!(
        matches!(one("MAINTAINER Me <me@x>"), Instruction::Maintainer(Maintainer { name, .. }) if name == "Me <me@x>")
    );
    assert!(
        matches!(one("STOPSIGNAL SIGKILL"), Instruction::StopSignal(StopSignal { signal, .. }) if signal == "SIGKILL")
    );
    assert!(
        matches!(one("EXPOSE 8080 80/udp 443"), Instruction::Expose(Expose { ports, .. }) if ports == ["443", "80/udp", "8080"])
    );
    assert!(
        matches!(one("VOLUME /a /b"), Instruction::Volume(Volume { paths, .. }) if paths == ["/a", "/b"])
    );
    assert!(
        matches!(one("VOLUME [\"/data\"]"), Instruction::Volume(Volume { paths, .. }) if paths == ["/data"])
    );
    let Instruction::Arg(a) = one("ARG a b=2 c=") else {
        panic!()
    };
    assert_eq!(
        a.args,
        vec![
            ArgDef {
                name: "a".into(),
                default: None
            },
            ArgDef {
                name: "b".into(),
                default: Some("2".into())
            },
            ArgDef {
                name: "c".into(),
                default: Some(String::new())
            },
        ]
    );
}

#[test]
fn onbuild_parses_its_trigger() {
    let Instruction::Onbuild(o) = one("ONBUILD COPY . /app") else {
        panic!()
    };
    assert_eq!(o.expression, "COPY . /app");
    assert!(matches!(*o.trigger, Instruction::Copy(_)));
    let Instruction::Onbuild(o) = one("onbuild RUN <<EOF\nx\nEOF") else {
        panic!()
    };
    assert_eq!(o.expression, "RUN <<EOF\nx\nEOF");
    let Instruction::Run(r) = *o.trigger else {
        panic!()
    };
    assert_eq!(r.heredocs[0].content, "x\n");
}

#[test]
fn healthcheck() {
    let Instruction::Healthcheck(h) = one(
        "HEALTHCHECK --interval=30s --timeout=1m30s --start-period=5s --start-interval=500ms --retries=3 CMD curl -f http://localhost/",
    ) else {
        panic!()
    };
    assert_eq!(
        h.check,
        HealthcheckKind::Cmd {
            command: Command::Shell("curl -f http://localhost/".into()),
            interval: Some(Duration::from_secs(30)),
            timeout: Some(Duration::from_secs(90)),
            start_period: Some(Duration::from_secs(5)),
            start_interval: Some(Duration::from_millis(500)),
            retries: 3,
        }
    );
    assert!(matches!(
        one("HEALTHCHECK NONE"),
        Instruction::Healthcheck(Healthcheck {
            check: HealthcheckKind::None,
            ..
        })
    ));
    let Instruction::Healthcheck(h) = one("HEALTHCHECK --interval=0s CMD [\"true\"]") else {
        panic!()
    };
    assert!(matches!(
        h.check,
        HealthcheckKind::Cmd {
            interval: None,
            command: Command::Exec(_),
            ..
        }
    ));
}

#[test]
fn stages_and_spans() {
    let cf = parse(
        "FROM a AS one\nRUN x\n\nFROM b\nCOPY --from=one / /\n",
        "Containerfile",
    )
    .unwrap();
    assert_eq!(cf.stages.len(), 2);
    let s = &cf.stages[0];
    assert_eq!((s.span.start.line, s.span.end.line), (1, 2));
    let run = &s.instructions[0];
    assert_eq!(run.span().to_string(), "Containerfile:2:1-2:6");
    assert_eq!(run.origin().original, "RUN x");
}

#[test]
fn error_texts() {
    let cases: &[(&str, &str)] = &[
        ("RUNN echo hi", "Containerfile:2:1: unknown instruction \"RUNN\" (did you mean \"RUN\"?)"),
        ("FOOBAR x", "Containerfile:2:1: unknown instruction \"FOOBAR\""),
        ("COPY --form=a b c", "Containerfile:2:6: unknown flag --form for COPY (did you mean \"--from\"?)"),
        ("COPY --from=a --from=b c d", "Containerfile:2:15: duplicate flag specified: --from"),
        ("COPY --chown x y", "Containerfile:2:6: missing a value on flag: --chown"),
        ("COPY --link=maybe x y", "Containerfile:2:6: expecting boolean value for flag --link, not: maybe"),
        ("USER", "Containerfile:2:1: USER requires exactly one argument"),
        ("EXPOSE", "Containerfile:2:1: EXPOSE requires at least one argument"),
        ("COPY a", "Containerfile:2:1: COPY requires at least two arguments, but only one was provided. Destination could not be determined"),
        ("FROM a b", "Containerfile:2:1: FROM requires either one or three arguments"),
        ("FROM a AS 1st", "Containerfile:2:11: invalid name for build stage: \"1st\", name can't start with a number or contain symbols"),
        ("ONBUILD ONBUILD RUN x", "Containerfile:2:9: Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"),
        ("ONBUILD FROM x", "Containerfile:2:9: FROM isn't allowed as an ONBUILD trigger"),
        ("ONBUILD MAINTAINER x", "Containerfile:2:9: MAINTAINER isn't allowed as an ONBUILD trigger"),
        ("HEALTHCHECK NONE x", "Containerfile:2:1: HEALTHCHECK NONE takes no arguments"),
        ("HEALTHCHECK FOO x", "Containerfile:2:13: Unknown type \"FOO\" in HEALTHCHECK (try CMD)"),
        ("HEALTHCHECK CMD", "Containerfile:2:1: Missing command after HEALTHCHECK CMD"),
        ("HEALTHCHECK --interval=5 CMD x", "Containerfile:2:13: invalid duration \"5\" for --interval: missing unit"),
        ("HEALTHCHECK --timeout=1ns CMD x", "Containerfile:2:13: Interval \"timeout\" cannot be less than 1ms"),
        ("HEALTHCHECK --retries=x CMD x", "Containerfile:2:13: invalid value \"x\" for --retries: not a 32-bit integer"),
        ("HEALTHCHECK --retries=-1 CMD x", "Containerfile:2:13: --retries cannot be negative (-1)"),
        ("SHELL /bin/sh -c", "Containerfile:2:1: SHELL requires the arguments to be in JSON form"),
        ("VOLUME [\" \"]", "Containerfile:2:1: VOLUME specified can not be an empty string"),
        ("ARG =x", "Containerfile:2:5: ARG names can not be blank"),
        ("ENV =x", "Containerfile:2:5: ENV names can not be blank"),
        ("COPY a <<EOF\nx\nEOF", "Containerfile:2:8: COPY cannot accept a heredoc as a destination"),
        ("RUN --network=bridge x", "Containerfile:2:5: invalid network mode \"bridge\""),
        ("RUN --security=root x", "Containerfile:2:5: security \"root\" is not valid"),
        ("RUN --mount=type=nope x", "Containerfile:2:13: invalid --mount: unsupported mount type \"nope\""),
        ("RUN", "Containerfile:2:1: RUN requires at least one argument"),
        ("ONBUILD RUNN x", "Containerfile:2:9: unknown instruction \"RUNN\" (did you mean \"RUN\"?)"),
        ("ONBUILD", "Containerfile:2:1: ONBUILD requires at least one argument"),
        ("FROM a AS x\nFROM b AS X", "Containerfile:3:11: duplicate stage name \"x\", first used on line 2"),
    ];
    for (text, want) in cases {
        assert_eq!(&err(text), want, "for {text:?}");
    }
    let e = parse("RUN x\n", "Containerfile").unwrap_err();
    assert_eq!(
        e.headline(),
        "Containerfile:1:1: RUN comes before the first FROM"
    );
}

#[test]
fn full_rendering_has_caret_and_hint() {
    let e = parse("FROM a\nCOPY --form=x a b\n", "Containerfile").unwrap_err();
    assert_eq!(
        e.to_string(),
        "Containerfile:2:6: unknown flag --form for COPY (did you mean \"--from\"?)\n 2 | COPY --form=x a b\n   |      ^\nhint: remove the flag or check which flags COPY takes"
    );
}
