//! The canonical printer: typed [`Containerfile`] → Containerfile text. One
//! line per instruction (no continuations), flags in a fixed order, exec
//! forms as compact JSON, heredoc bodies after their line. Parsing the
//! output gives the same typed instructions (spans and original text aside).

use super::heredoc::Heredoc;
use super::instructions::duration::format_go_duration;
use super::instructions::*;

/// Prints a whole Containerfile.
pub fn print(cf: &Containerfile) -> String {
    let mut p = Printer {
        out: String::new(),
        escape: cf.escape,
    };
    for d in &cf.directives {
        p.out
            .push_str(&format!("# {}={}\n", d.name.as_str(), d.value));
    }
    if cf.escape != '\\'
        && !cf
            .directives
            .iter()
            .any(|d| d.name == super::DirectiveName::Escape)
    {
        p.out.push_str(&format!("# escape={}\n", cf.escape));
    }
    for arg in &cf.global_args {
        p.instruction(&Instruction::Arg(arg.clone()));
    }
    for stage in &cf.stages {
        p.instruction(&Instruction::From(stage.from.clone()));
        for i in &stage.instructions {
            p.instruction(i);
        }
    }
    p.out
}

/// Prints one instruction (and its heredoc bodies) with escape `\`.
pub fn print_instruction(i: &Instruction) -> String {
    let mut p = Printer {
        out: String::new(),
        escape: '\\',
    };
    p.instruction(i);
    p.out
}

struct Printer {
    out: String,
    escape: char,
}

impl Printer {
    fn instruction(&mut self, i: &Instruction) {
        let mut heredocs = Vec::new();
        let line = self.line(i, &mut heredocs);
        self.out.push_str(&line);
        self.out.push('\n');
        for doc in heredocs {
            self.out.push_str(&doc.content);
            if !doc.content.is_empty() && !doc.content.ends_with('\n') {
                self.out.push('\n');
            }
            self.out.push_str(&doc.name);
            self.out.push('\n');
        }
    }

    /// The instruction's line; heredocs whose bodies must follow go to `docs`.
    fn line(&self, i: &Instruction, docs: &mut Vec<Heredoc>) -> String {
        let mut flags: Vec<String> = Vec::new();
        let (name, rest) = match i {
            Instruction::From(f) => {
                self.flag(&mut flags, "platform", f.platform.as_deref());
                let mut rest = f.image.clone();
                if let Some(n) = &f.name {
                    rest.push_str(" AS ");
                    rest.push_str(n);
                }
                ("FROM", rest)
            }
            Instruction::Run(r) => {
                for m in &r.mounts {
                    self.flag(&mut flags, "mount", Some(&m.raw));
                }
                match r.network {
                    NetworkMode::Default => {}
                    NetworkMode::None => self.flag(&mut flags, "network", Some("none")),
                    NetworkMode::Host => self.flag(&mut flags, "network", Some("host")),
                }
                if r.security == Security::Insecure {
                    self.flag(&mut flags, "security", Some("insecure"));
                }
                docs.extend(r.heredocs.iter().cloned());
                ("RUN", command_text(&r.command))
            }
            Instruction::Cmd(c) => ("CMD", command_text(&c.command)),
            Instruction::Entrypoint(e) => ("ENTRYPOINT", command_text(&e.command)),
            Instruction::Label(l) => ("LABEL", key_values(&l.labels)),
            Instruction::Env(e) => ("ENV", key_values(&e.vars)),
            Instruction::Maintainer(m) => ("MAINTAINER", m.name.clone()),
            Instruction::User(u) => ("USER", u.user.clone()),
            Instruction::Workdir(w) => ("WORKDIR", w.path.clone()),
            Instruction::StopSignal(s) => ("STOPSIGNAL", s.signal.clone()),
            Instruction::Expose(e) => ("EXPOSE", e.ports.join(" ")),
            Instruction::Volume(v) => ("VOLUME", list(&v.paths, false, self.escape)),
            Instruction::Arg(a) => {
                let words: Vec<String> = a
                    .args
                    .iter()
                    .map(|d| match &d.default {
                        Some(v) => format!("{}={v}", d.name),
                        None => d.name.clone(),
                    })
                    .collect();
                ("ARG", words.join(" "))
            }
            Instruction::Add(a) => {
                self.flag(&mut flags, "chown", a.chown.as_deref());
                self.flag(&mut flags, "chmod", a.chmod.as_deref());
                if a.link {
                    flags.push("--link".into());
                }
                self.flag(&mut flags, "checksum", a.checksum.as_deref());
                if let Some(b) = a.keep_git_dir {
                    flags.push(format!("--keep-git-dir={b}"));
                }
                if let Some(b) = a.unpack {
                    flags.push(format!("--unpack={b}"));
                }
                for e in &a.excludes {
                    self.flag(&mut flags, "exclude", Some(e));
                }
                ("ADD", sources(&a.sources, &a.dest, docs, self.escape))
            }
            Instruction::Copy(c) => {
                self.flag(&mut flags, "from", c.from.as_deref());
                self.flag(&mut flags, "chown", c.chown.as_deref());
                self.flag(&mut flags, "chmod", c.chmod.as_deref());
                if c.link {
                    flags.push("--link".into());
                }
                if c.parents {
                    flags.push("--parents".into());
                }
                for e in &c.excludes {
                    self.flag(&mut flags, "exclude", Some(e));
                }
                ("COPY", sources(&c.sources, &c.dest, docs, self.escape))
            }
            Instruction::Onbuild(o) => ("ONBUILD", self.line(&o.trigger, docs)),
            Instruction::Healthcheck(h) => match &h.check {
                HealthcheckKind::None => ("HEALTHCHECK", "NONE".into()),
                HealthcheckKind::Cmd {
                    command,
                    interval,
                    timeout,
                    start_period,
                    start_interval,
                    retries,
                } => {
                    for (n, d) in [
                        ("interval", interval),
                        ("timeout", timeout),
                        ("start-period", start_period),
                        ("start-interval", start_interval),
                    ] {
                        if let Some(d) = d {
                            flags.push(format!("--{n}={}", format_go_duration(*d)));
                        }
                    }
                    if *retries > 0 {
                        flags.push(format!("--retries={retries}"));
                    }
                    ("HEALTHCHECK", format!("CMD {}", command_text(command)))
                }
            },
            Instruction::Shell(s) => ("SHELL", json(&s.shell)),
        };
        let mut line = String::from(name);
        for f in flags {
            line.push(' ');
            line.push_str(&f);
        }
        if !rest.is_empty() {
            line.push(' ');
            // Arguments that start with `--` would be read back as flags.
            if rest.starts_with("--") {
                line.push_str("-- ");
            }
            line.push_str(&rest);
        }
        line
    }

    /// `--name=value`, quoted when the value holds blanks, quotes or the escape character.
    fn flag(&self, flags: &mut Vec<String>, name: &str, value: Option<&str>) {
        let Some(value) = value else { return };
        let needs_quotes = value.is_empty()
            || value
                .chars()
                .any(|c| c.is_whitespace() || c == '"' || c == '\'' || c == self.escape);
        if !needs_quotes {
            flags.push(format!("--{name}={value}"));
            return;
        }
        let mut quoted = String::from("\"");
        for c in value.chars() {
            if c == '"' || c == self.escape {
                quoted.push(self.escape);
            }
            quoted.push(c);
        }
        quoted.push('"');
        flags.push(format!("--{name}={quoted}"));
    }
}

fn json(words: &[String]) -> String {
    serde_json::to_string(words).unwrap_or_else(|_| "[]".into())
}

fn command_text(c: &Command) -> String {
    match c {
        Command::Shell(s) => s.clone(),
        Command::Exec(v) => json(v),
    }
}

fn key_values(kvs: &[KeyValue]) -> String {
    if let [kv] = kvs {
        if kv.legacy {
            return format!("{} {}", kv.key, kv.value);
        }
    }
    let words: Vec<String> = kvs
        .iter()
        .map(|kv| format!("{}={}", kv.key, kv.value))
        .collect();
    words.join(" ")
}

/// Plain words when they survive whitespace splitting, else a JSON array.
fn list(words: &[String], has_heredocs: bool, escape: char) -> String {
    // Plain words must come back from a whitespace split unchanged: no blank
    // or control character, no JSON look, no trailing escape (a continuation).
    let plain_ok = words
        .iter()
        .all(|w| !w.is_empty() && !w.chars().any(|c| c.is_whitespace() || c.is_control()))
        && !words.first().is_some_and(|w| w.starts_with('['))
        && !words.last().is_some_and(|w| w.ends_with(escape));
    if plain_ok || has_heredocs {
        words.join(" ")
    } else {
        json(words)
    }
}

fn sources(srcs: &[CopySource], dest: &str, docs: &mut Vec<Heredoc>, escape: char) -> String {
    let mut words = Vec::new();
    let mut has_heredocs = false;
    for s in srcs {
        match s {
            CopySource::Path(p) => words.push(p.clone()),
            CopySource::Heredoc(h) => {
                has_heredocs = true;
                words.push(heredoc_marker(h));
                docs.push(h.clone());
            }
        }
    }
    words.push(dest.to_string());
    list(&words, has_heredocs, escape)
}

/// `<<NAME`, `<<-NAME`, `3<<'NAME'` (quoted when the body is not expanded).
fn heredoc_marker(h: &Heredoc) -> String {
    let mut m = String::new();
    if h.fd != 0 {
        m.push_str(&h.fd.to_string());
    }
    m.push_str("<<");
    if h.chomp {
        m.push('-');
    }
    if h.expand {
        for c in h.name.chars() {
            if c.is_whitespace() || c == '\'' || c == '"' || c == '\\' {
                m.push('\\');
            }
            m.push(c);
        }
    } else if !h.name.contains('\'') {
        m.push('\'');
        m.push_str(&h.name);
        m.push('\'');
    } else {
        m.push('"');
        for c in h.name.chars() {
            if c == '"' || c == '\\' || c == '$' {
                m.push('\\');
            }
            m.push(c);
        }
        m.push('"');
    }
    m
}

#[cfg(test)]
mod tests {
    use crate::containerfile::parse;

    fn round_trip(text: &str) -> String {
        let cf = parse(text, "F").unwrap();
        let printed = super::print(&cf);
        let again = parse(&printed, "F").unwrap_or_else(|e| panic!("{printed}\n{e}"));
        let a: Vec<_> = cf
            .stages
            .iter()
            .flat_map(|s| s.instructions.iter().map(|i| i.without_origin()))
            .collect();
        let b: Vec<_> = again
            .stages
            .iter()
            .flat_map(|s| s.instructions.iter().map(|i| i.without_origin()))
            .collect();
        assert_eq!(a, b, "{printed}");
        printed
    }

    #[test]
    fn prints_canonically() {
        let printed = round_trip(
            "from  --platform=linux/amd64 alpine as Base\nrun --mount=type=cache,target=/c \\\n  echo hi\nCMD [\"a\", \"b c\"]\nENV a=1 b=\"x y\"\nENV legacy value here\nCOPY --from=base --chown=1:1 --link a b /dst/\nHEALTHCHECK --interval=90s --retries=3 CMD curl -f http://x/\n",
        );
        assert_eq!(
            printed,
            "FROM --platform=linux/amd64 alpine AS base\nRUN --mount=type=cache,target=/c echo hi\nCMD [\"a\",\"b c\"]\nENV a=1 b=\"x y\"\nENV legacy value here\nCOPY --from=base --chown=1:1 --link a b /dst/\nHEALTHCHECK --interval=1m30s --retries=3 CMD curl -f http://x/\n"
        );
    }

    #[test]
    fn heredocs_and_awkward_values_survive() {
        round_trip("FROM a\nRUN <<EOF\necho hi\nEOF\nCOPY <<-'X' <<Y /dst\n\tx $A\n\tX\ny\nY\n");
        round_trip("FROM a\nVOLUME [\"/a b\", \"/c\"]\nCOPY [\"a b\", \"/c d/\"]\nUSER -- --odd\n");
        round_trip("FROM a\nRUN --mount=\"type=bind,target=/a b\" --network=none --security=insecure true\n");
        round_trip("FROM a\nONBUILD RUN <<EOF\nx\nEOF\nHEALTHCHECK NONE\nSHELL [\"/bin/bash\", \"-c\"]\nEXPOSE 80 443/tcp\nARG x y=\"1 2\"\nSTOPSIGNAL SIGTERM\nWORKDIR /app\nMAINTAINER me\nLABEL a=b\nENTRYPOINT []\n");
        round_trip("# escape=`\nFROM a\nRUN echo `\n  hi\nADD --checksum=sha256:abc --keep-git-dir=false --exclude=*.md https://x/y /z\n");
    }
}
