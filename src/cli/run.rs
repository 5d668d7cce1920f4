//! `rbuild run [options] CONTAINER [--] CMD…`: a command in the
//! container, in the same sandbox as a build's RUN; `-t` gives it a
//! pseudo-terminal. Exits with the command's status.

use anyhow::bail;

use super::GlobalOptions;
use crate::container::process::parse_mount;
use crate::container::{RunOptions, WorkingContainer};
use crate::sandbox::{MountKind, Network, SandboxMount};

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Run as this user (name or uid[:gid]); default the container's USER.
    #[arg(short, long)]
    pub user: Option<String>,
    /// Working directory for the command; default the container's WORKDIR.
    #[arg(long)]
    pub workingdir: Option<String>,
    /// Extra environment variable (KEY=VALUE), repeatable.
    #[arg(short, long)]
    pub env: Vec<String>,
    /// Network: host (default) or none (a private namespace with only lo).
    #[arg(long, alias = "net", value_parser = ["host", "none", "private"])]
    pub network: Option<String>,
    /// `type=bind,source=/host,target=/in[,ro]` or `type=tmpfs,target=/t`.
    #[arg(long)]
    pub mount: Vec<String>,
    /// Bind mount HOST:CONTAINER[:ro].
    #[arg(short, long)]
    pub volume: Vec<String>,
    /// Allocate a pseudo-terminal (interactive shells, job control).
    #[arg(short = 't', long)]
    pub tty: bool,
    /// The hostname inside (default: the container ID's first 12 characters).
    #[arg(long, value_name = "NAME")]
    pub hostname: Option<String>,
    /// buildah's isolation kind. rbuild has one: its namespace sandbox,
    /// at least as isolated as each of these, so every value means it;
    /// accepted so buildah command lines (`--isolation chroot`) work.
    #[arg(long, value_name = "KIND", value_parser = ["oci", "chroot", "rootless"])]
    pub isolation: Option<String>,
    /// The working container.
    pub container: String,
    /// The command and its arguments.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    pub command: Vec<String>,
}

pub fn run(global: &GlobalOptions, args: RunArgs) -> anyhow::Result<i32> {
    let mut env = Vec::new();
    for e in &args.env {
        match e.split_once('=') {
            Some((k, v)) if !k.is_empty() => env.push((k.to_string(), v.to_string())),
            // `--env NAME` passes the caller's value, as docker does.
            _ => match std::env::var(e) {
                Ok(v) => env.push((e.clone(), v)),
                Err(_) => bail!("--env {e:?}: expected KEY=VALUE or the name of a set variable"),
            },
        }
    }
    let mut mounts = Vec::new();
    for m in &args.mount {
        mounts.push(parse_mount(m)?);
    }
    for v in &args.volume {
        let parts: Vec<&str> = v.split(':').collect();
        let (host, target, ro) = match parts.as_slice() {
            [h, t] => (*h, *t, false),
            [h, t, o] if *o == "ro" || *o == "rw" => (*h, *t, *o == "ro"),
            _ => bail!("--volume {v:?}: expected HOST:CONTAINER[:ro|rw]"),
        };
        mounts.push(SandboxMount {
            kind: MountKind::Bind {
                source: std::path::absolute(host)?,
                readonly: ro,
            },
            target: target.to_string(),
        });
    }
    let network = match args.network.as_deref() {
        Some("none" | "private") => Network::None,
        _ => Network::Host,
    };
    if let Some(h) = &args.hostname {
        // sethostname(2) takes at most 64 bytes; say so before the sandbox does.
        if h.is_empty() || h.len() > 64 || h.contains(['/', '\0']) {
            bail!("--hostname {h:?}: expected 1 to 64 characters, no '/'");
        }
    }
    let mut command = args.command;
    if command.first().is_some_and(|c| c == "--") {
        command.remove(0);
    }
    let access = super::store_access::open(global)?;
    let wc = WorkingContainer::open(&access.store, &args.container)?;
    let _lock = crate::container::ContainerLock::acquire(&access.runroot, &wc)?;
    let code = crate::container::run(
        &access.store,
        &access.runroot,
        &wc,
        RunOptions {
            argv: command,
            user: args.user,
            workdir: args.workingdir,
            env,
            network,
            mounts,
            terminal: args.tty,
            hostname: args.hostname,
        },
    )?;
    Ok(code)
}
