//! One RUN step: [`RunSpec`] in, [`RunOutcome`] out.
//!
//! The caller may be multi-threaded, where `unshare(2)` fails and `fork` is
//! unsafe, so [`run`] starts a fresh single-threaded copy of rbuild
//! (`/proc/self/exe __sandbox-helper`), hands it the spec as JSON on fd 3
//! and reads its report (typed messages) from fd 4; see [`super::helper`]
//! for what happens in there. Before that it writes `/etc/hosts`,
//! `/etc/resolv.conf` and `/etc/hostname` into a private temp dir and makes
//! any missing mount points ([`MountStubs`]); after it, it removes both.
//!
//! SIGINT and SIGTERM that reach rbuild while a step runs are forwarded to
//! the helper, which SIGKILLs the step's pid 1 (taking every process of the
//! step's pid namespace with it); the step's mounts live only in its own
//! mount namespace, so they vanish with it. [`run`] then returns
//! [`SandboxError::Interrupted`]. With no step running, the signal keeps its
//! default action.

use std::io::Write;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Once;

use serde::{Deserialize, Serialize};

use super::channel::{HelperMessage, Receiver};
use super::error::{Result, SandboxError};
use super::idmap::IdKind;
use super::namespaces;
use super::process::ExitKind;
use super::rootfs::{self, EtcFiles, MountStubs, RootfsPlan, SandboxMount};

/// The hidden subcommand that runs [`super::helper::helper_main`].
pub const HELPER_SUBCOMMAND: &str = "__sandbox-helper";

/// The step's network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Network {
    /// The host's network namespace.
    #[default]
    Host,
    /// A private network namespace with only `lo`, up.
    None,
}

/// The step's stdin, stdout and stderr; `None` inherits rbuild's.
#[derive(Debug, Default)]
pub struct RunStdio {
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
}

/// Everything one RUN step needs. Image semantics (USER names, WORKDIR
/// creation, SHELL, ENV expansion) are resolved by the caller.
#[derive(Debug, Serialize, Deserialize)]
pub struct RunSpec {
    /// The merged root (the overlay target).
    pub rootfs: PathBuf,
    pub argv: Vec<String>,
    /// The full environment; a default PATH is added when it has none.
    pub env: Vec<(String, String)>,
    /// Absolute working directory inside the rootfs; must exist.
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub network: Network,
    pub mounts: Vec<SandboxMount>,
    pub hostname: String,
    /// Extra `/etc/hosts` entries: (name, address).
    pub hosts_extra: Vec<(String, IpAddr)>,
    /// stdin is a pseudo-terminal slave: the command gets it as its
    /// controlling terminal (a new session), so shells do job control.
    #[serde(default)]
    pub terminal: bool,
    #[serde(skip)]
    pub stdio: RunStdio,
}

impl RunSpec {
    /// A spec with root's ids, host network, `/` as cwd and no mounts.
    pub fn new(rootfs: impl Into<PathBuf>, argv: Vec<String>) -> RunSpec {
        RunSpec {
            rootfs: rootfs.into(),
            argv,
            env: Vec::new(),
            cwd: "/".into(),
            uid: 0,
            gid: 0,
            additional_gids: Vec::new(),
            network: Network::Host,
            mounts: Vec::new(),
            hostname: "rbuild".into(),
            hosts_extra: Vec::new(),
            terminal: false,
            stdio: RunStdio::default(),
        }
    }

    fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(SandboxError::Spec(m));
        if self.argv.is_empty() {
            return bad("argv is empty".into());
        }
        if !self.cwd.starts_with('/') {
            return bad(format!("cwd {:?} is not absolute", self.cwd));
        }
        if !self.rootfs.is_dir() {
            return bad(format!(
                "rootfs {} is not a directory",
                self.rootfs.display()
            ));
        }
        for m in &self.mounts {
            if !m.target.starts_with('/') {
                return bad(format!("mount target {:?} is not absolute", m.target));
            }
            if let rootfs::MountKind::Bind { source, .. } = &m.kind {
                if !source.exists() {
                    return bad(format!("bind source {} does not exist", source.display()));
                }
            }
        }
        if self.hostname.is_empty() || self.hostname.len() > 64 {
            return bad(format!(
                "hostname {:?} must be 1 to 64 bytes",
                self.hostname
            ));
        }
        if let Some(state) = namespaces::current_state() {
            state.check_id(IdKind::Uid, self.uid)?;
            state.check_id(IdKind::Gid, self.gid)?;
            for g in &self.additional_gids {
                state.check_id(IdKind::Gid, *g)?;
            }
        }
        Ok(())
    }
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunOutcome {
    pub exit: ExitKind,
}

impl RunOutcome {
    /// Shell-style exit code (128 + signal for a killed step).
    pub fn code(&self) -> i32 {
        self.exit.code()
    }
    /// True for exit status 0.
    pub fn success(&self) -> bool {
        self.exit == ExitKind::Exited(0)
    }
}

/// What the helper reads from fd 3.
#[derive(Debug, Serialize, Deserialize)]
pub struct HelperSpec {
    pub plan: RootfsPlan,
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    /// Make stdin the controlling terminal of a new session.
    #[serde(default)]
    pub terminal: bool,
}

/// `/etc/hosts` for a step.
pub fn hosts_file(hostname: &str, extra: &[(String, IpAddr)]) -> String {
    let mut s = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    for (name, ip) in extra {
        s.push_str(&format!("{ip}\t{name}\n"));
    }
    s.push_str(&format!("127.0.1.1\t{hostname}\n"));
    s
}

fn write_etc_files(dir: &Path, spec: &RunSpec) -> Result<EtcFiles> {
    let resolv = match std::fs::read("/etc/resolv.conf") {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(SandboxError::io("read", "/etc/resolv.conf")(e)),
    };
    let files = EtcFiles {
        hosts: dir.join("hosts"),
        resolv_conf: dir.join("resolv.conf"),
        hostname: dir.join("hostname"),
    };
    let write = |p: &Path, b: &[u8]| std::fs::write(p, b).map_err(SandboxError::io("write", p));
    write(
        &files.hosts,
        hosts_file(&spec.hostname, &spec.hosts_extra).as_bytes(),
    )?;
    write(&files.resolv_conf, &resolv)?;
    write(&files.hostname, format!("{}\n", spec.hostname).as_bytes())?;
    // The temp dir is private, but the files must be readable by any uid.
    use std::os::unix::fs::PermissionsExt;
    for p in [&files.hosts, &files.resolv_conf, &files.hostname] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o644))
            .map_err(SandboxError::io("chmod", p))?;
    }
    Ok(files)
}

const SLOTS: usize = 64;
static ACTIVE: [AtomicI32; SLOTS] = [const { AtomicI32::new(0) }; SLOTS];
static INTERRUPTED: AtomicI32 = AtomicI32::new(0);
static INSTALL: Once = Once::new();

extern "C" fn on_signal(sig: libc::c_int) {
    INTERRUPTED.store(sig, Ordering::SeqCst);
    let mut any = false;
    for slot in &ACTIVE {
        let pid = slot.load(Ordering::SeqCst);
        if pid > 0 {
            any = true;
            // SAFETY: kill is async-signal-safe.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
    }
    if !any {
        // No step to tear down: behave as if never caught.
        unsafe {
            libc::signal(sig, libc::SIG_DFL);
            libc::raise(sig);
        }
    }
}

fn install_handlers() {
    INSTALL.call_once(|| {
        for sig in [libc::SIGINT, libc::SIGTERM] {
            // SAFETY: the handler only touches atomics and async-signal-safe calls.
            unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
        }
    });
}

/// The signal that interrupted a step, if one did.
pub fn interrupted() -> Option<i32> {
    match INTERRUPTED.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

struct Registered(usize);

fn register(pid: i32) -> Option<Registered> {
    (0..SLOTS).find_map(|i| {
        ACTIVE[i]
            .compare_exchange(0, pid, Ordering::SeqCst, Ordering::SeqCst)
            .ok()
            .map(|_| Registered(i))
    })
}

impl Drop for Registered {
    fn drop(&mut self) {
        ACTIVE[self.0].store(0, Ordering::SeqCst);
    }
}

/// Runs one step with `/proc/self/exe` as the helper.
pub fn run(spec: &RunSpec) -> Result<RunOutcome> {
    run_with_helper(spec, Path::new("/proc/self/exe"))
}

fn stdio(fd: &Option<OwnedFd>, what: &'static str) -> Result<Stdio> {
    match fd {
        None => Ok(Stdio::inherit()),
        Some(fd) => Ok(Stdio::from(
            fd.try_clone().map_err(SandboxError::io("dup", what))?,
        )),
    }
}

/// Runs one step; `helper` is an rbuild binary that understands
/// [`HELPER_SUBCOMMAND`].
pub fn run_with_helper(spec: &RunSpec, helper: &Path) -> Result<RunOutcome> {
    spec.validate()?;
    let etc_dir = tempfile::Builder::new()
        .prefix("rbuild-etc")
        .tempdir()
        .map_err(SandboxError::io("create temp dir", std::env::temp_dir()))?;
    let etc = write_etc_files(etc_dir.path(), spec)?;
    let stubs = MountStubs::create(&spec.rootfs, &rootfs::mount_points(&spec.mounts))?;
    let result = run_helper(spec, helper, etc);
    let cleaned = stubs.remove();
    let outcome = result?;
    cleaned?;
    Ok(outcome)
}

fn run_helper(spec: &RunSpec, helper: &Path, etc: EtcFiles) -> Result<RunOutcome> {
    let hspec = HelperSpec {
        plan: RootfsPlan {
            rootfs: spec.rootfs.clone(),
            etc,
            mounts: spec.mounts.clone(),
            hostname: spec.hostname.clone(),
            private_network: spec.network == Network::None,
        },
        argv: spec.argv.clone(),
        env: spec.env.clone(),
        cwd: spec.cwd.clone(),
        uid: spec.uid,
        gid: spec.gid,
        additional_gids: spec.additional_gids.clone(),
        terminal: spec.terminal,
    };
    let json = serde_json::to_vec(&hspec).map_err(|e| SandboxError::Spec(e.to_string()))?;
    let cloexec = nix::fcntl::OFlag::O_CLOEXEC;
    let (spec_r, spec_w) = nix::unistd::pipe2(cloexec).map_err(SandboxError::sys("pipe2", None))?;
    let (rep_r, rep_w) = nix::unistd::pipe2(cloexec).map_err(SandboxError::sys("pipe2", None))?;

    let mut cmd = Command::new(helper);
    cmd.arg(HELPER_SUBCOMMAND).env_clear();
    for (k, v) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("RBUILD_") {
            cmd.env(k, v);
        }
    }
    cmd.stdin(stdio(&spec.stdio.stdin, "stdin")?)
        .stdout(stdio(&spec.stdio.stdout, "stdout")?)
        .stderr(stdio(&spec.stdio.stderr, "stderr")?);
    let (sr, rw) = (spec_r.as_raw_fd(), rep_w.as_raw_fd());
    // SAFETY: only async-signal-safe fcntl/dup2 between fork and exec. The
    // detour through fds ≥ 10 keeps 3 and 4 from clobbering each other.
    unsafe {
        cmd.pre_exec(move || {
            let a = libc::fcntl(sr, libc::F_DUPFD_CLOEXEC, 10);
            let b = libc::fcntl(rw, libc::F_DUPFD_CLOEXEC, 10);
            if a < 0 || b < 0 || libc::dup2(a, 3) < 0 || libc::dup2(b, 4) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    install_handlers();
    let mut child = cmd
        .spawn()
        .map_err(SandboxError::io("start sandbox helper", helper))?;
    let registered = register(child.id() as i32);
    drop(spec_r);
    drop(rep_w);

    let mut spec_file = std::fs::File::from(spec_w);
    // A helper that died early closes its end: its report says why.
    let _ = spec_file.write_all(&json);
    drop(spec_file);

    let mut report: Receiver<HelperMessage> = Receiver::from_fd(rep_r, "sandbox helper");
    let mut last = None;
    while let Some(msg) = report.recv()? {
        last = Some(msg);
    }
    let status = loop {
        match child.wait() {
            Ok(s) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(SandboxError::io("wait for sandbox helper", helper)(e)),
        }
    };
    drop(registered);
    if let Some(sig) = interrupted() {
        return Err(SandboxError::Interrupted(sig));
    }
    match last {
        Some(HelperMessage::Exited(c)) => Ok(RunOutcome {
            exit: ExitKind::Exited(c),
        }),
        Some(HelperMessage::Signaled(s)) => Ok(RunOutcome {
            exit: ExitKind::Signaled(s),
        }),
        Some(HelperMessage::SetupFailed { step, detail }) => {
            Err(SandboxError::Setup { step, detail })
        }
        None => Err(SandboxError::Handshake {
            peer: "sandbox helper",
            detail: format!("exited ({status}) without a report"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_file_has_localhost_extras_and_hostname() {
        let s = hosts_file("box", &[("db".into(), "10.0.0.5".parse().unwrap())]);
        assert!(s.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(s.contains("10.0.0.5\tdb\n"));
        assert!(s.ends_with("127.0.1.1\tbox\n"));
    }

    #[test]
    fn invalid_specs_are_refused_before_anything_starts() {
        let t = tempfile::tempdir().unwrap();
        let mut spec = RunSpec::new(t.path(), vec![]);
        assert!(spec
            .validate()
            .unwrap_err()
            .to_string()
            .contains("argv is empty"));
        spec.argv = vec!["true".into()];
        spec.cwd = "relative".into();
        assert!(spec
            .validate()
            .unwrap_err()
            .to_string()
            .contains("not absolute"));
        spec.cwd = "/".into();
        spec.mounts.push(SandboxMount {
            kind: rootfs::MountKind::Bind {
                source: "/nonexistent-src".into(),
                readonly: true,
            },
            target: "/x".into(),
        });
        assert!(spec
            .validate()
            .unwrap_err()
            .to_string()
            .contains("/nonexistent-src"));
    }

    #[test]
    fn helper_spec_round_trips_as_json() {
        let h = HelperSpec {
            plan: RootfsPlan {
                rootfs: "/r".into(),
                etc: EtcFiles {
                    hosts: "/h".into(),
                    resolv_conf: "/rc".into(),
                    hostname: "/hn".into(),
                },
                mounts: vec![SandboxMount {
                    kind: rootfs::MountKind::Tmpfs { size: Some(4096) },
                    target: "/t".into(),
                }],
                hostname: "h".into(),
                private_network: true,
            },
            argv: vec!["sh".into()],
            env: vec![("A".into(), "b c".into())],
            cwd: "/".into(),
            uid: 1,
            gid: 2,
            additional_gids: vec![3],
            terminal: true,
        };
        let back: HelperSpec = serde_json::from_slice(&serde_json::to_vec(&h).unwrap()).unwrap();
        assert_eq!(back.plan, h.plan);
        assert_eq!(back.env, h.env);
        assert!(back.terminal);
    }
}
