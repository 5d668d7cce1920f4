//! `rbuild run CONTAINER -- CMD…`: the command in the same sandbox as a
//! build's RUN, over the container's merged view, so its changes land in
//! the container's upper dir and accumulate from one `run` to the next.

use std::path::Path;

use crate::build::process_spec::process_spec;
use crate::container::error::{ContainerError, Result};
use crate::container::mounts::View;
use crate::container::pty::Terminal;
use crate::container::state::WorkingContainer;
use crate::sandbox::{MountKind, Network, SandboxMount};
use crate::store::Store;

/// What `run` was asked for beyond the container's config.
#[derive(Debug, Default)]
pub struct RunOptions {
    /// Exec form: run as is, no shell.
    pub argv: Vec<String>,
    /// `--user`: overrides the config's USER.
    pub user: Option<String>,
    /// `--workingdir`: overrides WORKDIR (made when missing).
    pub workdir: Option<String>,
    /// `--env K=V`, after the config's ENV.
    pub env: Vec<(String, String)>,
    pub network: Network,
    pub mounts: Vec<SandboxMount>,
    /// `-t`: a pseudo-terminal.
    pub terminal: bool,
    /// `--hostname`; default the container ID's first 12 characters, as
    /// buildah sets it.
    pub hostname: Option<String>,
}

/// `--mount type=bind,source=/host,target=/in[,ro]` or `type=tmpfs,target=/t[,size=N]`.
pub fn parse_mount(spec: &str) -> Result<SandboxMount> {
    let bad = |why: &str| ContainerError::Invalid(format!("--mount {spec:?}: {why}"));
    let (mut kind, mut source, mut target, mut readonly, mut size) =
        ("bind", None, None, false, None);
    for part in spec.split(',') {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        match k {
            "type" => {
                kind = if v == "bind" {
                    "bind"
                } else if v == "tmpfs" {
                    "tmpfs"
                } else {
                    return Err(bad("type must be bind or tmpfs"));
                }
            }
            "source" | "src" => source = Some(v.to_string()),
            "target" | "dst" | "destination" => target = Some(v.to_string()),
            "ro" | "readonly" => readonly = v.is_empty() || v == "true",
            "rw" => readonly = false,
            "tmpfs-size" | "size" => {
                size = Some(v.parse::<u64>().map_err(|_| bad("size must be bytes"))?)
            }
            _ => return Err(bad(&format!("unknown option {k:?}"))),
        }
    }
    let target = target
        .filter(|t| t.starts_with('/'))
        .ok_or_else(|| bad("needs an absolute target="))?;
    let kind = if kind == "tmpfs" {
        MountKind::Tmpfs { size }
    } else {
        let source = source.ok_or_else(|| bad("a bind mount needs source="))?;
        let source =
            std::path::absolute(&source).map_err(ContainerError::io("resolve", &source))?;
        MountKind::Bind { source, readonly }
    };
    Ok(SandboxMount { kind, target })
}

/// Runs the command; returns its exit code (128 + signal when killed).
pub fn run(store: &Store, runroot: &Path, wc: &WorkingContainer, opts: RunOptions) -> Result<i32> {
    if opts.argv.is_empty() {
        return Err(ContainerError::Invalid(format!(
            "run {}: no command given (rbuild run {} -- CMD ARGS…)",
            wc.name(),
            wc.name()
        )));
    }
    let config = &wc.state.image.config;
    let mut env: Vec<(String, String)> = Vec::new();
    let mut set = |k: &str, v: &str| {
        env.retain(|(ek, _)| ek != k);
        env.push((k.to_string(), v.to_string()));
    };
    for e in &config.env {
        let (k, v) = e.split_once('=').unwrap_or((e, ""));
        set(k, v);
    }
    for (k, v) in &opts.env {
        set(k, v);
    }
    if opts.terminal && !env.iter().any(|(k, _)| k == "TERM") {
        env.push((
            "TERM".to_string(),
            std::env::var("TERM").unwrap_or_else(|_| "xterm".into()),
        ));
    }
    let user_spec = opts.user.clone().unwrap_or_else(|| config.user.clone());
    let workdir = match opts.workdir.as_deref().unwrap_or(&config.working_dir) {
        "" => "/".to_string(),
        w if w.starts_with('/') => w.to_string(),
        w => format!("/{w}"),
    };
    let mut terminal = if opts.terminal {
        Some(Terminal::open()?)
    } else {
        None
    };

    let view = View::open(store, runroot, wc)?;
    let result = (|| {
        let mut spec = process_spec::<ContainerError>(
            view.root(),
            opts.argv.clone(),
            env.clone(),
            &user_spec,
            &workdir,
        )?;
        spec.network = opts.network;
        spec.mounts = opts.mounts;
        spec.hostname = match &opts.hostname {
            Some(h) => h.clone(),
            None => wc.state.id.chars().take(12).collect(),
        };
        if let Some(t) = terminal.as_mut() {
            spec.stdio = t.stdio()?;
            spec.terminal = true;
            t.start()?;
        }
        let outcome = crate::sandbox::run(&spec);
        // The slave closes here, so the terminal's output copy can finish.
        drop(spec);
        if let Some(t) = terminal.take() {
            t.finish();
        }
        Ok::<_, ContainerError>(outcome?.code())
    })();
    let unmounted = view.finish();
    let code = result?;
    unmounted?;
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_parse_like_buildah() {
        let m = parse_mount("type=bind,src=/tmp,dst=/data,ro").unwrap();
        assert_eq!(m.target, "/data");
        assert!(matches!(m.kind, MountKind::Bind { readonly: true, .. }));
        let t = parse_mount("type=tmpfs,target=/scratch,size=1024").unwrap();
        assert!(matches!(t.kind, MountKind::Tmpfs { size: Some(1024) }));
        for bad in [
            "type=nfs,target=/x",
            "type=bind,target=/x",
            "type=tmpfs,target=rel",
            "type=bind,src=/a,dst=/b,zz",
        ] {
            assert!(parse_mount(bad).is_err(), "{bad}");
        }
    }
}
