//! The typed instruction layer: every instruction as its own struct with
//! checked flags and arguments, grouped into stages. This is what the build
//! executor reads; it never sees raw tokens. Words stay unexpanded
//! (`$VAR` kept): the executor expands them with the stage's ARG/ENV using
//! the word lexer in `shell/`.

pub mod duration;
pub mod flags;
pub mod mount;
mod parse;
pub mod suggest;

use std::time::Duration;

use serde::Serialize;

pub use mount::{CacheSharing, MountError, MountType, RunMount};
pub(crate) use parse::parse_stages;

use super::ast::{Directive, Warning};
use super::heredoc::Heredoc;
use super::span::Span;

/// Where an instruction came from: its logical line and its location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Origin {
    /// The instruction's logical line (continuations joined), heredoc bodies excluded.
    pub original: String,
    /// File, start and end.
    pub span: Span,
}

impl Default for Origin {
    fn default() -> Self {
        Origin {
            original: String::new(),
            span: Span {
                file: std::sync::Arc::from(""),
                start: super::span::Position::new(0, 0),
                end: super::span::Position::new(0, 0),
            },
        }
    }
}

/// A parsed Containerfile: what the build plans from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Containerfile {
    /// Parser directives (`# syntax=`, `# escape=`, `# check=`).
    pub directives: Vec<Directive>,
    /// The escape character in effect.
    pub escape: char,
    /// ARG instructions before the first FROM (usable in FROM lines).
    pub global_args: Vec<Arg>,
    /// The stages, in file order.
    pub stages: Vec<Stage>,
    /// Non-fatal findings.
    pub warnings: Vec<Warning>,
}

/// One build stage: a FROM and what follows it up to the next FROM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stage {
    /// The `AS` name, lower-cased as BuildKit does.
    pub name: Option<String>,
    /// The stage's FROM.
    pub from: From,
    /// The instructions after FROM.
    pub instructions: Vec<Instruction>,
    /// From the FROM line to the end of the stage's last instruction.
    pub span: Span,
}

/// Shell form (run through the stage's SHELL) or exec form (a JSON array).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Command {
    /// `RUN echo hi`: one string for `SHELL` (default `/bin/sh -c`).
    Shell(String),
    /// `RUN ["echo", "hi"]`: argv as given.
    Exec(Vec<String>),
}

/// A typed instruction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "instruction", rename_all = "UPPERCASE")]
pub enum Instruction {
    From(From),
    Run(Run),
    Cmd(Cmd),
    Label(Label),
    Maintainer(Maintainer),
    Expose(Expose),
    Env(Env),
    Add(Add),
    Copy(Copy),
    Entrypoint(Entrypoint),
    Volume(Volume),
    User(User),
    Workdir(Workdir),
    Arg(Arg),
    Onbuild(Onbuild),
    #[serde(rename = "STOPSIGNAL")]
    StopSignal(StopSignal),
    Healthcheck(Healthcheck),
    Shell(Shell),
}

/// `FROM [--platform=P] IMAGE [AS NAME]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct From {
    /// The image (or earlier stage) name, unexpanded.
    pub image: String,
    /// `--platform`.
    pub platform: Option<String>,
    /// `AS name`, lower-cased.
    pub name: Option<String>,
    #[serde(flatten)]
    pub origin: Origin,
}

/// RUN's network mode (`--network`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// As configured for the build (host networking in rbuild).
    #[default]
    Default,
    /// No network.
    None,
    /// The host's network.
    Host,
}

/// RUN's security mode (`--security`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// The normal sandbox.
    #[default]
    Sandbox,
    /// Extra privileges (needs the build to allow it).
    Insecure,
}

/// `RUN [--mount=...] [--network=...] [--security=...] command`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Run {
    pub command: Command,
    /// Heredocs opened on the RUN line (`RUN <<EOF`), with bodies.
    pub heredocs: Vec<Heredoc>,
    pub mounts: Vec<RunMount>,
    pub network: NetworkMode,
    pub security: Security,
    #[serde(flatten)]
    pub origin: Origin,
}

/// `CMD command`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cmd {
    pub command: Command,
    #[serde(flatten)]
    pub origin: Origin,
}

/// `ENTRYPOINT command`; `ENTRYPOINT []` clears it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entrypoint {
    pub command: Command,
    #[serde(flatten)]
    pub origin: Origin,
}

/// A key and value of ENV or LABEL, both raw (quotes and `$` kept).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
    /// Written in the legacy `KEY value` form (the value is the rest of the line).
    pub legacy: bool,
}

/// `LABEL k=v ...`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Label {
    pub labels: Vec<KeyValue>,
    #[serde(flatten)]
    pub origin: Origin,
}

/// `ENV k=v ...` or `ENV k v`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Env {
    pub vars: Vec<KeyValue>,
    #[serde(flatten)]
    pub origin: Origin,
}

/// `MAINTAINER name` (deprecated; becomes the `author` field).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Maintainer {
    pub name: String,
    #[serde(flatten)]
    pub origin: Origin,
}

/// `EXPOSE port[/proto] ...`, sorted as BuildKit does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Expose {
    pub ports: Vec<String>,
    #[serde(flatten)]
    pub origin: Origin,
}

/// A COPY/ADD source: a path (or URL) in the context, or an inline heredoc file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CopySource {
    Path(String),
    Heredoc(Heredoc),
}

/// `ADD [flags] src... dest`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Add {
    pub sources: Vec<CopySource>,
    pub dest: String,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    /// `--checksum` of a URL or git source.
    pub checksum: Option<String>,
    /// `--keep-git-dir` (None when not given).
    pub keep_git_dir: Option<bool>,
    /// `--unpack` (None when not given: archives from the context unpack, URLs don't).
    pub unpack: Option<bool>,
    pub excludes: Vec<String>,
    #[serde(flatten)]
    pub origin: Origin,
}

/// `COPY [flags] src... dest`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Copy {
    pub sources: Vec<CopySource>,
    pub dest: String,
    /// `--from`: a stage name, index or image.
    pub from: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    pub parents: bool,
    pub excludes: Vec<String>,
    #[serde(flatten)]
    pub origin: Origin,
}

/// `VOLUME path ...`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Volume {
    pub paths: Vec<String>,
    #[serde(flatten)]
    pub origin: Origin,
}

/// `USER user[:group]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub user: String,
    #[serde(flatten)]
    pub origin: Origin,
}

/// `WORKDIR path`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Workdir {
    pub path: String,
    #[serde(flatten)]
    pub origin: Origin,
}

/// One name of an ARG line, with its default if any (raw).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArgDef {
    pub name: String,
    pub default: Option<String>,
}

/// `ARG name[=default] ...`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Arg {
    pub args: Vec<ArgDef>,
    #[serde(flatten)]
    pub origin: Origin,
}

/// `ONBUILD instruction`: stored for images built FROM this one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Onbuild {
    /// The trigger, parsed and checked now.
    pub trigger: Box<Instruction>,
    /// The trigger's text as stored in the image config (heredocs appended).
    pub expression: String,
    #[serde(flatten)]
    pub origin: Origin,
}

/// `STOPSIGNAL signal`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StopSignal {
    pub signal: String,
    #[serde(flatten)]
    pub origin: Origin,
}

/// What a HEALTHCHECK does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "UPPERCASE")]
pub enum HealthcheckKind {
    /// `HEALTHCHECK NONE`: disable any inherited check.
    None,
    /// `HEALTHCHECK [options] CMD command`. Zero durations and retries mean "default".
    Cmd {
        command: Command,
        #[serde(serialize_with = "ser_duration")]
        interval: Option<Duration>,
        #[serde(serialize_with = "ser_duration")]
        timeout: Option<Duration>,
        #[serde(serialize_with = "ser_duration")]
        start_period: Option<Duration>,
        #[serde(serialize_with = "ser_duration")]
        start_interval: Option<Duration>,
        retries: u32,
    },
}

fn ser_duration<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        // Nanoseconds, as in the image config's Healthcheck fields.
        Some(d) => s.serialize_u64(d.as_nanos() as u64),
        None => s.serialize_none(),
    }
}

/// `HEALTHCHECK ...`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Healthcheck {
    pub check: HealthcheckKind,
    #[serde(flatten)]
    pub origin: Origin,
}

/// `SHELL ["executable", "param"]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Shell {
    pub shell: Vec<String>,
    #[serde(flatten)]
    pub origin: Origin,
}

impl Instruction {
    /// The instruction's keyword in upper case.
    pub fn name(&self) -> &'static str {
        match self {
            Instruction::From(_) => "FROM",
            Instruction::Run(_) => "RUN",
            Instruction::Cmd(_) => "CMD",
            Instruction::Label(_) => "LABEL",
            Instruction::Maintainer(_) => "MAINTAINER",
            Instruction::Expose(_) => "EXPOSE",
            Instruction::Env(_) => "ENV",
            Instruction::Add(_) => "ADD",
            Instruction::Copy(_) => "COPY",
            Instruction::Entrypoint(_) => "ENTRYPOINT",
            Instruction::Volume(_) => "VOLUME",
            Instruction::User(_) => "USER",
            Instruction::Workdir(_) => "WORKDIR",
            Instruction::Arg(_) => "ARG",
            Instruction::Onbuild(_) => "ONBUILD",
            Instruction::StopSignal(_) => "STOPSIGNAL",
            Instruction::Healthcheck(_) => "HEALTHCHECK",
            Instruction::Shell(_) => "SHELL",
        }
    }

    /// Where the instruction came from.
    pub fn origin(&self) -> &Origin {
        self.origin_ref()
    }

    /// The instruction's span.
    pub fn span(&self) -> &Span {
        &self.origin_ref().span
    }

    fn origin_ref(&self) -> &Origin {
        match self {
            Instruction::From(i) => &i.origin,
            Instruction::Run(i) => &i.origin,
            Instruction::Cmd(i) => &i.origin,
            Instruction::Label(i) => &i.origin,
            Instruction::Maintainer(i) => &i.origin,
            Instruction::Expose(i) => &i.origin,
            Instruction::Env(i) => &i.origin,
            Instruction::Add(i) => &i.origin,
            Instruction::Copy(i) => &i.origin,
            Instruction::Entrypoint(i) => &i.origin,
            Instruction::Volume(i) => &i.origin,
            Instruction::User(i) => &i.origin,
            Instruction::Workdir(i) => &i.origin,
            Instruction::Arg(i) => &i.origin,
            Instruction::Onbuild(i) => &i.origin,
            Instruction::StopSignal(i) => &i.origin,
            Instruction::Healthcheck(i) => &i.origin,
            Instruction::Shell(i) => &i.origin,
        }
    }

    fn origin_mut(&mut self) -> &mut Origin {
        match self {
            Instruction::From(i) => &mut i.origin,
            Instruction::Run(i) => &mut i.origin,
            Instruction::Cmd(i) => &mut i.origin,
            Instruction::Label(i) => &mut i.origin,
            Instruction::Maintainer(i) => &mut i.origin,
            Instruction::Expose(i) => &mut i.origin,
            Instruction::Env(i) => &mut i.origin,
            Instruction::Add(i) => &mut i.origin,
            Instruction::Copy(i) => &mut i.origin,
            Instruction::Entrypoint(i) => &mut i.origin,
            Instruction::Volume(i) => &mut i.origin,
            Instruction::User(i) => &mut i.origin,
            Instruction::Workdir(i) => &mut i.origin,
            Instruction::Arg(i) => &mut i.origin,
            Instruction::Onbuild(i) => &mut i.origin,
            Instruction::StopSignal(i) => &mut i.origin,
            Instruction::Healthcheck(i) => &mut i.origin,
            Instruction::Shell(i) => &mut i.origin,
        }
    }

    /// A copy with origins (text and spans) cleared, to compare meaning only.
    pub fn without_origin(&self) -> Instruction {
        let mut copy = self.clone();
        *copy.origin_mut() = Origin::default();
        match &mut copy {
            Instruction::Onbuild(o) => {
                *o.trigger = o.trigger.without_origin();
                o.expression.clear();
            }
            Instruction::Run(r) => {
                for m in &mut r.mounts {
                    m.raw.clear();
                }
            }
            _ => {}
        }
        copy
    }
}

#[cfg(test)]
mod tests;
