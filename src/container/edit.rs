//! Changes to a container's image config: `rbuild config` flags, and the
//! Dockerfile instructions of `commit --change` (parsed by the same
//! Containerfile parser a build uses).

use crate::container::error::{ContainerError, Result};
use crate::container::state::ContainerState;
use crate::containerfile::{Command, Instruction};
use crate::image::ImageConfigBuilder;

/// What `rbuild config` was asked to change. `Vec` fields apply in order;
/// a `KEY-` entry removes KEY.
#[derive(Debug, Default, Clone)]
pub struct ConfigEdit {
    pub cmd: Option<String>,
    pub entrypoint: Option<String>,
    pub env: Vec<String>,
    pub labels: Vec<String>,
    pub annotations: Vec<String>,
    pub ports: Vec<String>,
    pub volumes: Vec<String>,
    pub user: Option<String>,
    pub workingdir: Option<String>,
    pub author: Option<String>,
    pub created_by: Option<String>,
    pub comment: Option<String>,
    pub shell: Option<String>,
    pub stop_signal: Option<String>,
    pub healthcheck: Option<String>,
    pub healthcheck_interval: Option<String>,
    pub healthcheck_timeout: Option<String>,
    pub healthcheck_start_period: Option<String>,
    pub healthcheck_retries: Option<i64>,
    pub onbuild: Vec<String>,
    pub arch: Option<String>,
    pub os: Option<String>,
    /// `--variant`, `--os-version`: the platform fields beside arch and OS.
    pub variant: Option<String>,
    pub os_version: Option<String>,
    /// `--os-feature F` adds F, `F-` removes it.
    pub os_features: Vec<String>,
    /// `--unsetlabel K`, `--unsetannotation K`: buildah's spelling of `K-`.
    pub unset_labels: Vec<String>,
    pub unset_annotations: Vec<String>,
}

/// A command given as a JSON array runs as is; anything else through
/// `/bin/sh -c` (buildah's rule for `--cmd` and `--entrypoint`).
pub fn command_words(text: &str, shell: &[String]) -> Vec<String> {
    if text.trim_start().starts_with('[') {
        if let Ok(v) = serde_json::from_str::<Vec<String>>(text) {
            return v;
        }
    }
    if text.is_empty() {
        return Vec::new();
    }
    let mut argv = if shell.is_empty() {
        vec!["/bin/sh".to_string(), "-c".to_string()]
    } else {
        shell.to_vec()
    };
    argv.push(text.to_string());
    argv
}

fn duration_nanos(flag: &str, text: &str) -> Result<i64> {
    let bad = || {
        ContainerError::Invalid(format!(
            "{flag} {text:?}: expected a duration such as 30s, 1m30s or 500ms"
        ))
    };
    let mut total: f64 = 0.0;
    let mut rest = text;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let (num, tail) = rest.split_at(num_len);
        let value: f64 = num.parse().map_err(|_| bad())?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale = match unit {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        total += value * scale;
        rest = tail;
    }
    Ok(total as i64)
}

/// `$NAME` and `${NAME}` in an `--env` value take the config's current
/// value (`--env PATH='$PATH:/opt/bin'`), as buildah does; unknown names
/// expand to nothing.
fn expand_env(value: &str, b: &ImageConfigBuilder) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, tail) = if let Some(braced) = after.strip_prefix('{') {
            match braced.find('}') {
                Some(end) => (&braced[..end], &braced[end + 1..]),
                None => ("", after),
            }
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        if name.is_empty() {
            out.push('$');
            rest = after;
        } else {
            out.push_str(b.env(name).unwrap_or(""));
            rest = tail;
        }
    }
    out.push_str(rest);
    out
}

fn key_value<'a>(flag: &str, entry: &'a str) -> Result<(&'a str, &'a str)> {
    entry
        .split_once('=')
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| {
            ContainerError::Invalid(format!(
                "{flag} {entry:?}: expected KEY=VALUE (or KEY- to remove)"
            ))
        })
}

impl ConfigEdit {
    /// Applies the edit to the container's saved state.
    pub fn apply(&self, state: &mut ContainerState) -> Result<()> {
        let mut b = ImageConfigBuilder::from_base(state.image.clone());
        let shell = b.image().config.shell.clone();
        if let Some(s) = &self.shell {
            b.set_shell(shell_words(s));
        }
        for e in &self.env {
            if let Some(k) = e.strip_suffix('-').filter(|k| !k.contains('=')) {
                let mut img = b.build();
                img.config
                    .env
                    .retain(|x| x.split_once('=').map_or(x.as_str(), |(k2, _)| k2) != k);
                b = ImageConfigBuilder::from_base(img);
            } else {
                let (k, v) = key_value("--env", e)?;
                let v = expand_env(v, &b);
                b.set_env(k, &v);
            }
        }
        for l in &self.labels {
            if let Some(k) = l.strip_suffix('-').filter(|k| !k.contains('=')) {
                b.remove_label(k);
            } else {
                let (k, v) = key_value("--label", l)?;
                b.set_label(k, v);
            }
        }
        for k in &self.unset_labels {
            b.remove_label(k);
        }
        for k in &self.unset_annotations {
            state.annotations.remove(k);
        }
        for a in &self.annotations {
            if let Some(k) = a.strip_suffix('-').filter(|k| !k.contains('=')) {
                state.annotations.remove(k);
            } else {
                let (k, v) = key_value("--annotation", a)?;
                state.annotations.insert(k.to_string(), v.to_string());
            }
        }
        for p in &self.ports {
            if let Some(port) = p.strip_suffix('-') {
                let mut img = b.build();
                let full = if port.contains('/') {
                    port.to_string()
                } else {
                    format!("{port}/tcp")
                };
                img.config.exposed_ports.remove(&full);
                b = ImageConfigBuilder::from_base(img);
            } else {
                b.expose(p)
                    .map_err(|e| ContainerError::Invalid(format!("--port {p}: {e}")))?;
            }
        }
        for v in &self.volumes {
            if let Some(path) = v.strip_suffix('-') {
                let mut img = b.build();
                img.config.volumes.remove(path);
                b = ImageConfigBuilder::from_base(img);
            } else {
                b.add_volume(v);
            }
        }
        if let Some(u) = &self.user {
            b.set_user(u);
        }
        if let Some(w) = &self.workingdir {
            b.set_workdir(w);
        }
        if let Some(a) = &self.author {
            b.set_author(a);
        }
        if let Some(s) = &self.stop_signal {
            b.set_stop_signal(s);
        }
        if let Some(e) = &self.entrypoint {
            let argv = command_words(e, &shell);
            // Keep CMD: `config --entrypoint` does not reset it (buildah).
            let mut img = b.build();
            img.config.entrypoint = argv;
            b = ImageConfigBuilder::from_base(img);
        }
        if let Some(c) = &self.cmd {
            b.set_cmd(command_words(c, &shell));
        }
        if self.healthcheck.is_some()
            || self.healthcheck_interval.is_some()
            || self.healthcheck_timeout.is_some()
            || self.healthcheck_start_period.is_some()
            || self.healthcheck_retries.is_some()
        {
            let mut check = b.image().config.healthcheck.clone().unwrap_or_default();
            if let Some(h) = &self.healthcheck {
                check.test = if h.eq_ignore_ascii_case("none") {
                    vec!["NONE".to_string()]
                } else if let Ok(v) = serde_json::from_str::<Vec<String>>(h) {
                    let mut t = vec!["CMD".to_string()];
                    t.extend(v);
                    t
                } else {
                    vec![
                        "CMD-SHELL".to_string(),
                        h.trim_start_matches("CMD-SHELL ")
                            .trim_start_matches("CMD ")
                            .to_string(),
                    ]
                };
            }
            if let Some(d) = &self.healthcheck_interval {
                check.interval = duration_nanos("--healthcheck-interval", d)?;
            }
            if let Some(d) = &self.healthcheck_timeout {
                check.timeout = duration_nanos("--healthcheck-timeout", d)?;
            }
            if let Some(d) = &self.healthcheck_start_period {
                check.start_period = duration_nanos("--healthcheck-start-period", d)?;
            }
            if let Some(r) = self.healthcheck_retries {
                check.retries = r;
            }
            b.set_healthcheck(check);
        }
        for o in &self.onbuild {
            b.add_onbuild(o);
        }
        let mut img = b.build();
        if let Some(a) = &self.arch {
            img.architecture = a.clone();
        }
        if let Some(o) = &self.os {
            img.os = o.clone();
        }
        if let Some(v) = &self.variant {
            img.variant = v.clone();
        }
        if let Some(v) = &self.os_version {
            img.os_version = v.clone();
        }
        for f in &self.os_features {
            match f.strip_suffix('-') {
                Some(gone) => img.os_features.retain(|x| x != gone),
                None if !img.os_features.contains(f) => img.os_features.push(f.clone()),
                None => {}
            }
        }
        state.image = img;
        if let Some(c) = &self.created_by {
            state.created_by = Some(c.clone());
        }
        if let Some(c) = &self.comment {
            state.comment = Some(c.clone());
        }
        Ok(())
    }
}

/// `--shell` takes a JSON array or a whitespace-split command line.
fn shell_words(text: &str) -> Vec<String> {
    match serde_json::from_str::<Vec<String>>(text) {
        Ok(v) => v,
        Err(_) => text.split_whitespace().map(str::to_string).collect(),
    }
}

/// The instructions `commit --change` accepts (docker's list).
const CHANGE_KEYWORDS: &[&str] = &[
    "CMD",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "LABEL",
    "USER",
    "VOLUME",
    "WORKDIR",
    "STOPSIGNAL",
    "ONBUILD",
];

/// Applies `commit --change` lines to a config.
pub fn apply_changes(builder: &mut ImageConfigBuilder, changes: &[String]) -> Result<()> {
    for change in changes {
        let keyword = change
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        if !CHANGE_KEYWORDS.contains(&keyword.as_str()) {
            return Err(ContainerError::Invalid(format!(
                "--change {change:?}: {keyword:?} cannot be applied at commit; allowed: {}",
                CHANGE_KEYWORDS.join(", ")
            )));
        }
        let text = format!("FROM scratch\n{change}\n");
        let parsed = crate::containerfile::parse(&text, "--change")
            .map_err(|e| ContainerError::Invalid(format!("--change {change:?}: {e}")))?;
        let shell = builder.image().config.shell.clone();
        let argv = |c: &Command| match c {
            Command::Exec(v) => v.clone(),
            Command::Shell(s) => command_words(s, &shell),
        };
        for stage in &parsed.stages {
            for inst in &stage.instructions {
                match inst {
                    Instruction::Cmd(c) => builder.set_cmd(argv(&c.command)),
                    Instruction::Entrypoint(e) => builder.set_entrypoint(argv(&e.command)),
                    Instruction::Env(env) => {
                        for kv in &env.vars {
                            builder.set_env(&kv.key, &kv.value);
                        }
                    }
                    Instruction::Label(l) => {
                        for kv in &l.labels {
                            builder.set_label(&kv.key, &kv.value);
                        }
                    }
                    Instruction::Expose(e) => {
                        for p in &e.ports {
                            builder.expose(p).map_err(|err| {
                                ContainerError::Invalid(format!("--change {change:?}: {err}"))
                            })?;
                        }
                    }
                    Instruction::User(u) => builder.set_user(&u.user),
                    Instruction::Volume(v) => {
                        for p in &v.paths {
                            builder.add_volume(p);
                        }
                    }
                    Instruction::Workdir(w) => builder.set_workdir(&w.path),
                    Instruction::StopSignal(s) => builder.set_stop_signal(&s.signal),
                    Instruction::Onbuild(o) => builder.add_onbuild(&o.expression),
                    other => {
                        return Err(ContainerError::Invalid(format!(
                            "--change {change:?}: {} cannot be applied at commit",
                            other.origin().original
                        )))
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::Image;

    fn state() -> ContainerState {
        ContainerState {
            id: "x".into(),
            image: Image::default(),
            created_by: None,
            comment: None,
            annotations: Default::default(),
        }
    }

    #[test]
    fn config_flags_edit_and_remove() {
        let mut s = state();
        let edit = ConfigEdit {
            cmd: Some("/bin/app --serve".into()),
            entrypoint: Some(r#"["/entry"]"#.into()),
            env: vec!["A=1".into(), "B=2".into()],
            labels: vec!["l=v".into()],
            ports: vec!["8080".into()],
            healthcheck: Some("curl -f localhost".into()),
            healthcheck_interval: Some("1m30s".into()),
            ..Default::default()
        };
        edit.apply(&mut s).unwrap();
        let c = &s.image.config;
        assert_eq!(c.cmd, vec!["/bin/sh", "-c", "/bin/app --serve"]);
        assert_eq!(c.entrypoint, vec!["/entry"]);
        assert_eq!(c.env, vec!["A=1", "B=2"]);
        assert!(c.exposed_ports.contains_key("8080/tcp"));
        let h = c.healthcheck.clone().unwrap();
        assert_eq!(h.test, vec!["CMD-SHELL", "curl -f localhost"]);
        assert_eq!(h.interval, 90_000_000_000);
        ConfigEdit {
            env: vec!["A=$A:${B}/x$".into(), "C=$NONE.".into()],
            ..Default::default()
        }
        .apply(&mut s)
        .unwrap();
        assert_eq!(s.image.config.env, vec!["A=1:2/x$", "B=2", "C=."]);
        ConfigEdit {
            env: vec!["A=1".into(), "C-".into()],
            ..Default::default()
        }
        .apply(&mut s)
        .unwrap();
        ConfigEdit {
            env: vec!["A-".into()],
            labels: vec!["l-".into()],
            ports: vec!["8080-".into()],
            ..Default::default()
        }
        .apply(&mut s)
        .unwrap();
        assert_eq!(s.image.config.env, vec!["B=2"]);
        assert!(s.image.config.labels.is_empty() && s.image.config.exposed_ports.is_empty());
        assert!(ConfigEdit {
            env: vec!["novalue".into()],
            ..Default::default()
        }
        .apply(&mut s)
        .is_err());
        assert!(ConfigEdit {
            healthcheck_timeout: Some("5 parsecs".into()),
            ..Default::default()
        }
        .apply(&mut s)
        .is_err());
    }

    #[test]
    fn changes_go_through_the_parser() {
        let mut b = ImageConfigBuilder::from_base(Image::default());
        apply_changes(
            &mut b,
            &[
                r#"CMD ["/bin/app"]"#.to_string(),
                "ENV X=1 Y=2".to_string(),
                "EXPOSE 80/udp".to_string(),
                "LABEL a=b".to_string(),
                "WORKDIR /srv".to_string(),
            ],
        )
        .unwrap();
        let c = &b.image().config;
        assert_eq!(c.cmd, vec!["/bin/app"]);
        assert_eq!(c.env, vec!["X=1", "Y=2"]);
        assert!(c.exposed_ports.contains_key("80/udp"));
        assert_eq!(c.working_dir, "/srv");
        let err = apply_changes(&mut b, &["RUN rm -rf /".to_string()]).unwrap_err();
        assert!(err.to_string().contains("allowed: CMD"), "{err}");
    }
}
