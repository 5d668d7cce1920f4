//! Hidden subcommands of the sandbox: `__sandbox-helper` (the re-executed
//! RUN helper, see `sandbox::helper`) and `__sandbox-test`, which mounts an
//! overlay and runs a command through it, so integration tests can drive
//! the sandbox through the real binary, as root and unprivileged.

use std::path::PathBuf;

use anyhow::Context;

use crate::sandbox::{self, MountKind, Network, RunSpec, SandboxMount};

/// `rbuild __sandbox-test ...`
#[derive(Debug, clap::Args)]
pub struct SandboxTestArgs {
    #[command(subcommand)]
    pub what: SandboxTest,
}

#[derive(Debug, clap::Subcommand)]
pub enum SandboxTest {
    /// Mount an overlay, run a host command with the merged dir as its
    /// argument `{}` replaced, unmount.
    Overlay(OverlayArgs),
    /// Mount an overlay (or use --rootfs) and run argv in the sandbox.
    Run(RunArgs),
}

#[derive(Debug, clap::Args)]
pub struct OverlayArgs {
    /// Lower dir, topmost first (repeat).
    #[arg(long = "lower")]
    pub lowers: Vec<PathBuf>,
    #[arg(long)]
    pub upper: PathBuf,
    #[arg(long)]
    pub work: PathBuf,
    #[arg(long)]
    pub target: PathBuf,
    /// kernel, fuse, copy or auto.
    #[arg(long, default_value = "auto")]
    pub mode: String,
    /// Host command to run while mounted.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub command: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub overlay: OverlayOpts,
    #[arg(long, default_value_t = 0)]
    pub uid: u32,
    #[arg(long, default_value_t = 0)]
    pub gid: u32,
    /// Supplementary group (repeat).
    #[arg(long = "group")]
    pub groups: Vec<u32>,
    /// host or none.
    #[arg(long, default_value = "host")]
    pub network: String,
    /// SRC:DST[:ro] (repeat).
    #[arg(long = "bind")]
    pub binds: Vec<String>,
    /// DST (repeat).
    #[arg(long = "tmpfs")]
    pub tmpfs: Vec<String>,
    /// KEY=VALUE (repeat).
    #[arg(long = "env")]
    pub env: Vec<String>,
    #[arg(long, default_value = "/")]
    pub cwd: String,
    #[arg(long, default_value = "rbuild")]
    pub hostname: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub argv: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct OverlayOpts {
    /// Use this dir as the root directly, without an overlay.
    #[arg(long, conflicts_with_all = ["lowers", "upper"])]
    pub rootfs: Option<PathBuf>,
    #[arg(long = "lower")]
    pub lowers: Vec<PathBuf>,
    #[arg(long)]
    pub upper: Option<PathBuf>,
    #[arg(long)]
    pub work: Option<PathBuf>,
    #[arg(long)]
    pub target: Option<PathBuf>,
    #[arg(long, default_value = "auto")]
    pub mode: String,
}

/// Runs `__sandbox-test`.
pub fn run_test(args: SandboxTestArgs) -> anyhow::Result<i32> {
    sandbox::enter_user_namespace().context("entering rbuild's user namespace")?;
    match args.what {
        SandboxTest::Overlay(a) => {
            let guard =
                sandbox::mount_overlay(&a.lowers, &a.upper, &a.work, &a.target, a.mode.parse()?)?;
            eprintln!("mounted with {}", guard.mode().name());
            let target = a.target.to_string_lossy().to_string();
            let argv: Vec<String> = a.command.iter().map(|s| s.replace("{}", &target)).collect();
            let status = std::process::Command::new(&argv[0])
                .args(&argv[1..])
                .status()
                .with_context(|| format!("running {:?}", argv[0]))?;
            guard.unmount()?;
            Ok(status.code().unwrap_or(125))
        }
        SandboxTest::Run(a) => run_in_sandbox(a),
    }
}

fn run_in_sandbox(a: RunArgs) -> anyhow::Result<i32> {
    let o = &a.overlay;
    let (rootfs, guard) = match &o.rootfs {
        Some(r) => (r.clone(), None),
        None => {
            let need = |v: &Option<PathBuf>, n: &str| {
                v.clone()
                    .with_context(|| format!("--{n} is required without --rootfs"))
            };
            let (upper, work, target) = (
                need(&o.upper, "upper")?,
                need(&o.work, "work")?,
                need(&o.target, "target")?,
            );
            let g = sandbox::mount_overlay(&o.lowers, &upper, &work, &target, o.mode.parse()?)?;
            (target, Some(g))
        }
    };
    let mut spec = RunSpec::new(rootfs, a.argv);
    spec.uid = a.uid;
    spec.gid = a.gid;
    spec.additional_gids = a.groups;
    spec.cwd = a.cwd;
    spec.hostname = a.hostname;
    spec.network = match a.network.as_str() {
        "host" => Network::Host,
        "none" => Network::None,
        other => anyhow::bail!("--network {other}: use host or none"),
    };
    for kv in a.env {
        let (k, v) = kv
            .split_once('=')
            .with_context(|| format!("--env {kv}: expected KEY=VALUE"))?;
        spec.env.push((k.to_string(), v.to_string()));
    }
    for b in a.binds {
        let parts: Vec<&str> = b.split(':').collect();
        let (src, dst, ro) = match parts.as_slice() {
            [s, d] => (*s, *d, false),
            [s, d, "ro"] => (*s, *d, true),
            _ => anyhow::bail!("--bind {b}: expected SRC:DST[:ro]"),
        };
        spec.mounts.push(SandboxMount {
            kind: MountKind::Bind {
                source: src.into(),
                readonly: ro,
            },
            target: dst.to_string(),
        });
    }
    for t in a.tmpfs {
        spec.mounts.push(SandboxMount {
            kind: MountKind::Tmpfs { size: None },
            target: t,
        });
    }
    let outcome = sandbox::run(&spec);
    if let Some(g) = guard {
        g.unmount()?;
    }
    Ok(outcome?.code())
}
