//! The one user + mount namespace a rootless rbuild command runs in.
//!
//! [`enter_user_namespace`] is called first thing, before any thread exists.
//! As real root it does nothing. Unprivileged, it forks; the child unshares a
//! user and a mount namespace and asks the parent (over a typed pipe) for its
//! maps; the parent writes them with `newuidmap`/`newgidmap` (0 → caller,
//! 1..65536 → the sub-id range) or, lacking a range or the helpers, a
//! single-id map with a warning; the child makes its mounts private and
//! re-executes `/proc/self/exe` with the same arguments, marked by
//! `RBUILD_ROOTLESS_UID`/`RBUILD_ROOTLESS_GID`, while the parent forwards
//! signals and exits with the child's status.

use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicI32, Ordering};

use nix::mount::MsFlags;
use nix::sched::CloneFlags;
use nix::sys::signal::{self, SigHandler, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};

use super::channel::{channel, UsernsMessage};
use super::error::{Result, SandboxError};
use super::idmap::{self, IdKind, IdMapLine};
use super::syscall::{LinuxSyscall, Syscall};

/// Set in the re-executed child: the caller's real uid outside.
pub const ENV_ROOTLESS_UID: &str = "RBUILD_ROOTLESS_UID";
/// Set in the re-executed child: the caller's real gid outside.
pub const ENV_ROOTLESS_GID: &str = "RBUILD_ROOTLESS_GID";
const ENV_MAP: &str = "RBUILD_USERNS_MAP";

/// How ids inside relate to ids outside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdMapping {
    /// Real root: every id is itself.
    Identity,
    /// Rootless with sub-ids: 0 is the caller, 1.. the sub-id ranges.
    Full {
        uids: Vec<IdMapLine>,
        gids: Vec<IdMapLine>,
    },
    /// Rootless without sub-ids: only 0 (the caller) exists.
    Single,
}

/// Where the current process stands after [`enter_user_namespace`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsernsState {
    /// The caller's uid outside any namespace.
    pub host_uid: u32,
    /// The caller's gid outside any namespace.
    pub host_gid: u32,
    pub mapping: IdMapping,
}

impl UsernsState {
    /// True when running in rbuild's own user namespace.
    pub fn is_rootless(&self) -> bool {
        self.mapping != IdMapping::Identity
    }

    /// Fails with a message naming the fix when `id` has no mapping, so a
    /// `USER 1000` or `--chown 1000` in single-id mode says why it cannot work.
    pub fn check_id(&self, kind: IdKind, id: u32) -> Result<()> {
        let ok = match &self.mapping {
            IdMapping::Identity => true,
            IdMapping::Single => id == 0,
            IdMapping::Full { uids, gids } => match kind {
                IdKind::Uid => idmap::is_mapped(uids, id),
                IdKind::Gid => idmap::is_mapped(gids, id),
            },
        };
        if ok {
            return Ok(());
        }
        Err(SandboxError::IdNotMapped {
            kind: match kind {
                IdKind::Uid => "uid",
                IdKind::Gid => "gid",
            },
            id,
            user: user_name(self.host_uid),
        })
    }
}

fn user_name(uid: u32) -> String {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| uid.to_string())
}

/// The state of a process that is already inside rbuild's namespace, read
/// from the markers its parent set, or `None`.
pub fn current_state() -> Option<UsernsState> {
    let uid = std::env::var(ENV_ROOTLESS_UID).ok()?.parse().ok()?;
    let gid = std::env::var(ENV_ROOTLESS_GID).ok()?.parse().ok()?;
    let uid_map = std::fs::read_to_string("/proc/self/uid_map").ok()?;
    let uids = idmap::parse_map(&uid_map);
    // A marker inherited into the initial namespace (full identity map) is stale.
    if uids
        .iter()
        .any(|l| l.inside == 0 && l.host == 0 && l.count == u32::MAX)
    {
        return None;
    }
    let gids = std::fs::read_to_string("/proc/self/gid_map")
        .map(|t| idmap::parse_map(&t))
        .unwrap_or_default();
    let mapping = match std::env::var(ENV_MAP).as_deref() {
        Ok("full") => IdMapping::Full { uids, gids },
        _ => IdMapping::Single,
    };
    Some(UsernsState {
        host_uid: uid,
        host_gid: gid,
        mapping,
    })
}

/// Makes sure the process runs as (mapped) root: real root and a process
/// already inside return at once; otherwise the process re-executes itself
/// in a new user + mount namespace and this call never returns (the parent
/// exits with the child's status). Call it before any thread starts.
pub fn enter_user_namespace() -> Result<UsernsState> {
    if let Some(state) = current_state() {
        return Ok(state);
    }
    if nix::unistd::geteuid().is_root() {
        return Ok(UsernsState {
            host_uid: 0,
            host_gid: 0,
            mapping: IdMapping::Identity,
        });
    }
    let code = reexec_in_namespace()?;
    std::process::exit(code);
}

/// What the parent will do for the child's maps, decided before forking so
/// the warning comes out once and before any child output.
struct MapPlan {
    uid: u32,
    gid: u32,
    full: Option<FullPlan>,
}

struct FullPlan {
    uids: Vec<IdMapLine>,
    gids: Vec<IdMapLine>,
    newuidmap: std::path::PathBuf,
    newgidmap: std::path::PathBuf,
}

fn plan_maps() -> Result<MapPlan> {
    let uid = nix::unistd::getuid().as_raw();
    let gid = nix::unistd::getgid().as_raw();
    let user = user_name(uid);
    let uid_range = idmap::lookup_subid(IdKind::Uid, &user, uid)?;
    let gid_range = idmap::lookup_subid(IdKind::Gid, &user, uid)?;
    let helpers = (
        idmap::find_helper("newuidmap"),
        idmap::find_helper("newgidmap"),
    );
    let full = match (uid_range, gid_range, helpers) {
        (Some(ur), Some(gr), (Some(nu), Some(ng))) => Some(FullPlan {
            uids: idmap::full_map(uid, ur),
            gids: idmap::full_map(gid, gr),
            newuidmap: nu,
            newgidmap: ng,
        }),
        (ur, gr, _) => {
            let why = if ur.is_none() || gr.is_none() {
                format!(
                    "no sub-id range for {user} in /etc/subuid or /etc/subgid; fix: \
                     `usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {user}`"
                )
            } else {
                "newuidmap/newgidmap not found; fix: install the `uidmap` package".to_string()
            };
            warn_single(&why);
            None
        }
    };
    Ok(MapPlan { uid, gid, full })
}

fn warn_single(why: &str) {
    eprintln!(
        "rbuild: warning: {why}. Running with a single-id map (only your uid, as 0); \
         steps that need other uids or gids will fail."
    );
}

/// The parent's half: writes maps (falling back to a single-id map when a
/// helper refuses), then reports to the child.
fn write_maps(plan: &MapPlan, pid: i32) -> std::result::Result<bool, String> {
    if let Some(full) = &plan.full {
        let uid = idmap::write_with_helper(IdKind::Uid, &full.newuidmap, pid, &full.uids);
        let gid = uid
            .and_then(|_| idmap::write_with_helper(IdKind::Gid, &full.newgidmap, pid, &full.gids));
        match gid {
            Ok(()) => return Ok(true),
            // After a uid map is written the gid map can still go single;
            // mixed maps are worse than a clear failure, so only fall back
            // when nothing was written yet.
            Err(e) if !map_written(pid, "uid_map") => warn_single(&e.to_string()),
            Err(e) => return Err(e.to_string()),
        }
    }
    idmap::write_single(IdKind::Uid, pid, plan.uid).map_err(|e| e.to_string())?;
    idmap::write_single(IdKind::Gid, pid, plan.gid).map_err(|e| e.to_string())?;
    Ok(false)
}

fn map_written(pid: i32, file: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/{file}"))
        .map(|t| !t.trim().is_empty())
        .unwrap_or(false)
}

static CHILD: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward_signal(sig: libc::c_int) {
    let pid = CHILD.load(Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe.
        unsafe { libc::kill(pid, sig) };
    }
}

/// Forwards the usual termination signals to `pid` until the process exits.
pub(crate) fn forward_signals_to(pid: Pid) {
    CHILD.store(pid.as_raw(), Ordering::SeqCst);
    for sig in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
    ] {
        // SAFETY: the handler only calls kill with an atomic's value.
        let _ = unsafe { signal::signal(sig, SigHandler::Handler(forward_signal)) };
    }
}

/// Waits for `pid`, retrying on EINTR, and turns its end into an exit code
/// (128 + signal for a killed child, as shells do).
pub(crate) fn wait_exit_code(pid: Pid) -> Result<i32> {
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(code),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(128 + sig as i32),
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(SandboxError::sys("waitpid", None)(e)),
        }
    }
}

fn reexec_in_namespace() -> Result<i32> {
    let plan = plan_maps()?;
    let exe = CString::new("/proc/self/exe").map_err(|_| SandboxError::Spec("exe".into()))?;
    let argv: Vec<CString> = std::env::args_os()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| SandboxError::Spec("an argument contains a NUL byte".into()))?;
    let mut envp: Vec<CString> = Vec::new();
    for (k, v) in std::env::vars_os() {
        if k == ENV_ROOTLESS_UID || k == ENV_ROOTLESS_GID || k == ENV_MAP {
            continue;
        }
        let mut kv = OsString::from(&k);
        kv.push("=");
        kv.push(&v);
        if let Ok(c) = CString::new(kv.as_bytes()) {
            envp.push(c);
        }
    }
    let marker = |k: &str, v: String| CString::new(format!("{k}={v}")).ok();
    envp.extend(marker(ENV_ROOTLESS_UID, plan.uid.to_string()));
    envp.extend(marker(ENV_ROOTLESS_GID, plan.gid.to_string()));

    let (mut to_parent, mut from_child) = channel::<UsernsMessage>("user-namespace child")?;
    let (mut to_child, mut from_parent) = channel::<UsernsMessage>("user-namespace parent")?;
    // SAFETY: called before any thread exists (documented contract); the
    // child only makes syscalls and execs.
    match unsafe { fork() }.map_err(SandboxError::sys("fork", None))? {
        ForkResult::Child => {
            drop(from_child);
            drop(to_child);
            let err = child_side(&mut to_parent, &mut from_parent, &exe, &argv, envp);
            eprintln!("rbuild: entering the user namespace failed: {err}");
            // SAFETY: leaving the forked child without running parent destructors.
            unsafe { libc::_exit(125) };
        }
        ForkResult::Parent { child } => {
            drop(to_parent);
            drop(from_parent);
            match from_child.recv() {
                Ok(Some(UsernsMessage::Unshared)) => {}
                other => {
                    // The child said why on stderr; reap it and name the usual cause.
                    let code = wait_exit_code(child).unwrap_or(125);
                    return Err(SandboxError::Setup {
                        step: "creating a user namespace".into(),
                        detail: format!(
                            "the child exited with {code} ({other:?}); unprivileged user \
                             namespaces may be disabled: check `sysctl user.max_user_namespaces` \
                             and `kernel.unprivileged_userns_clone`"
                        ),
                    });
                }
            }
            match write_maps(&plan, child.as_raw()) {
                Ok(full) => to_child.mapped(full)?,
                Err(why) => to_child.map_failed(&why)?,
            }
            drop(to_child);
            forward_signals_to(child);
            wait_exit_code(child)
        }
    }
}

fn child_side(
    to_parent: &mut super::channel::Sender<UsernsMessage>,
    from_parent: &mut super::channel::Receiver<UsernsMessage>,
    exe: &CString,
    argv: &[CString],
    mut envp: Vec<CString>,
) -> SandboxError {
    let sys = LinuxSyscall;
    if let Err(e) = sys.unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS) {
        return SandboxError::sys("unshare(user+mount)", None)(e);
    }
    if let Err(e) = to_parent.unshared() {
        return e;
    }
    let full = match from_parent.expect() {
        Ok(UsernsMessage::Mapped { full }) => full,
        Ok(UsernsMessage::MapFailed(why)) => {
            return SandboxError::Setup {
                step: "id maps".into(),
                detail: why,
            }
        }
        Ok(other) => {
            return SandboxError::Handshake {
                peer: "user-namespace parent",
                detail: format!("unexpected {other:?}"),
            }
        }
        Err(e) => return e,
    };
    if let Ok(c) = CString::new(format!(
        "{ENV_MAP}={}",
        if full { "full" } else { "single" }
    )) {
        envp.push(c);
    }
    // Nothing mounted in here may reach the host's mount table.
    if let Err(e) = sys.mount(
        None,
        Path::new("/"),
        None,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None,
    ) {
        return SandboxError::sys("mount --make-rprivate", Some(Path::new("/")))(e);
    }
    match nix::unistd::execve(exe, argv, &envp) {
        Err(e) => SandboxError::sys("execve", Some(Path::new("/proc/self/exe")))(e),
        Ok(never) => match never {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_state_allows_every_id_and_single_only_zero() {
        let root = UsernsState {
            host_uid: 0,
            host_gid: 0,
            mapping: IdMapping::Identity,
        };
        assert!(root.check_id(IdKind::Uid, 4242).is_ok());
        let single = UsernsState {
            host_uid: 1001,
            host_gid: 1001,
            mapping: IdMapping::Single,
        };
        assert!(single.check_id(IdKind::Uid, 0).is_ok());
        let msg = single.check_id(IdKind::Gid, 1000).unwrap_err().to_string();
        assert!(
            msg.contains("gid 1000") && msg.contains("usermod --add-subuids"),
            "{msg}"
        );
        let full = UsernsState {
            host_uid: 1001,
            host_gid: 1001,
            mapping: IdMapping::Full {
                uids: idmap::parse_map("0 1001 1\n1 100000 65536\n"),
                gids: idmap::parse_map("0 1001 1\n"),
            },
        };
        assert!(full.check_id(IdKind::Uid, 1000).is_ok());
        assert!(full.check_id(IdKind::Gid, 1000).is_err());
    }
}
