//! Process plumbing for the RUN step: credentials, the fd cut-off, command
//! lookup, exec, and waiting.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use super::error::{Result, SandboxError};
use super::syscall::Syscall;

/// PATH when the step's environment has none (docker's default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How the step's pid 1 ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExitKind {
    Exited(i32),
    Signaled(i32),
}

impl ExitKind {
    /// A shell-style exit code: the status, or 128 + the signal.
    pub fn code(self) -> i32 {
        match self {
            ExitKind::Exited(c) => c,
            ExitKind::Signaled(s) => 128 + s,
        }
    }
}

/// Waits for `pid`, retrying on EINTR.
pub fn wait_for(pid: Pid) -> Result<ExitKind> {
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, c)) => return Ok(ExitKind::Exited(c)),
            Ok(WaitStatus::Signaled(_, s, _)) => return Ok(ExitKind::Signaled(s as i32)),
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(e) => return Err(SandboxError::sys("waitpid", None)(e)),
        }
    }
}

/// The capabilities a step keeps (buildah's and containers.conf's default
/// set): CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, SETGID, SETUID, SETPCAP,
/// NET_BIND_SERVICE, SYS_CHROOT, SETFCAP. Everything else — SYS_ADMIN
/// (mount), SYS_MODULE, SYS_PTRACE, NET_ADMIN, MKNOD… — leaves the bounding
/// set, so a root step cannot remount or reach the host even as real root.
pub const DEFAULT_CAPS: [u32; 11] = [0, 1, 3, 4, 5, 6, 7, 8, 10, 18, 31];

/// Drops every capability outside [`DEFAULT_CAPS`] from the bounding set
/// (up to the kernel's last cap) and clears the ambient set. Must run
/// before the uid changes (dropping needs CAP_SETPCAP).
pub fn restrict_capabilities(sys: &dyn Syscall, last_cap: u32) -> Result<()> {
    for cap in (0..=last_cap).filter(|c| !DEFAULT_CAPS.contains(c)) {
        sys.drop_bounding_cap(cap)
            .map_err(|e| SandboxError::Setup {
                step: format!("drop capability {cap}"),
                detail: format!("{e} ({})", e.desc()),
            })?;
    }
    sys.clear_ambient_caps().map_err(|e| SandboxError::Setup {
        step: "clear ambient capabilities".into(),
        detail: format!("{e} ({})", e.desc()),
    })
}

/// The kernel's highest capability number.
pub fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// Whether `/proc/self/setgroups` says `deny` (a single-id user namespace).
fn setgroups_denied() -> bool {
    std::fs::read_to_string("/proc/self/setgroups")
        .map(|s| s.trim() == "deny")
        .unwrap_or(false)
}

/// Switches to the step's user: supplementary groups, gid, uid, in that
/// order (after setuid the process could no longer change the others).
pub fn set_credentials(sys: &dyn Syscall, uid: u32, gid: u32, groups: &[u32]) -> Result<()> {
    let fail = |step: String| {
        move |errno: Errno| SandboxError::Setup {
            step,
            detail: match errno {
                Errno::EINVAL => format!(
                    "{errno}: the id is not mapped in rbuild's user namespace (add a sub-id range)"
                ),
                _ => format!("{errno} ({})", errno.desc()),
            },
        }
    };
    if setgroups_denied() {
        if !groups.is_empty() {
            return Err(SandboxError::Setup {
                step: "setgroups".into(),
                detail: "supplementary groups need a sub-id range; rbuild runs with a single-id \
                         map (setgroups is denied)"
                    .into(),
            });
        }
    } else {
        sys.setgroups(groups)
            .map_err(fail(format!("setgroups {groups:?}")))?;
    }
    sys.setgid(gid).map_err(fail(format!("setgid {gid}")))?;
    sys.setuid(uid).map_err(fail(format!("setuid {uid}")))?;
    Ok(())
}

/// Marks every fd above 2 close-on-exec, so only stdin, stdout and stderr
/// cross into the step whatever the parent leaked.
pub fn close_fds_above_stderr() -> Result<()> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    let ret = unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, CLOSE_RANGE_CLOEXEC) };
    if ret == 0 {
        return Ok(());
    }
    // Kernels before 5.11: mark each open fd by hand.
    let fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .map_err(SandboxError::io("read dir", "/proc/self/fd"))?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd > 2)
        .collect();
    for fd in fds {
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    Ok(())
}

/// Finds `argv0` as `execvp` would, in `path` (a PATH value), inside the
/// current root.
pub fn find_executable(argv0: &str, path: &str) -> Result<PathBuf> {
    if argv0.contains('/') {
        return Ok(PathBuf::from(argv0));
    }
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = Path::new(dir).join(argv0);
        if nix::unistd::access(&candidate, nix::unistd::AccessFlags::X_OK).is_ok()
            && candidate.metadata().map(|m| m.is_file()).unwrap_or(false)
        {
            return Ok(candidate);
        }
    }
    Err(SandboxError::NotFound {
        argv0: argv0.to_string(),
        path: path.to_string(),
    })
}

/// The step's environment as `KEY=VALUE`, with a default PATH when absent.
pub fn environment(env: &[(String, String)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = env.to_vec();
    if !out.iter().any(|(k, _)| k == "PATH") {
        out.push(("PATH".into(), DEFAULT_PATH.into()));
    }
    out
}

fn to_cstrings<'a>(items: impl Iterator<Item = &'a [u8]>) -> Result<Vec<CString>> {
    items
        .map(|b| {
            CString::new(b).map_err(|_| SandboxError::Spec("a NUL byte in argv or env".into()))
        })
        .collect()
}

/// Replaces the process with the step's command; returns only on failure.
pub fn exec(argv: &[String], env: &[(String, String)]) -> SandboxError {
    let env = environment(env);
    let path = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.as_str())
        .unwrap_or(DEFAULT_PATH);
    let Some(argv0) = argv.first() else {
        return SandboxError::Spec("empty argv".into());
    };
    let program = match find_executable(argv0, path) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let prepared = (|| {
        let prog = CString::new(program.as_os_str().as_bytes())
            .map_err(|_| SandboxError::Spec("a NUL byte in the program path".into()))?;
        let args = to_cstrings(argv.iter().map(|a| a.as_bytes()))?;
        let kv: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let envp = to_cstrings(kv.iter().map(|s| s.as_bytes()))?;
        Ok::<_, SandboxError>((prog, args, envp))
    })();
    match prepared {
        Ok((prog, args, envp)) => match nix::unistd::execve(&prog, &args, &envp) {
            Err(e) => SandboxError::sys("execve", Some(&program))(e),
            Ok(never) => match never {},
        },
        Err(e) => e,
    }
}

/// Makes the kernel SIGKILL this process when its parent dies.
pub fn die_with_parent() {
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
}

#[cfg(test)]
mod tests {
    use super::super::syscall::{Call, RecordingSyscall};
    use super::*;

    #[test]
    fn credentials_go_groups_gid_uid() {
        if setgroups_denied() {
            return;
        }
        let sys = RecordingSyscall::new();
        set_credentials(&sys, 1000, 100, &[10, 20]).unwrap();
        assert_eq!(
            sys.calls(),
            vec![
                Call::Setgroups(vec![10, 20]),
                Call::Setgid(100),
                Call::Setuid(1000)
            ]
        );
    }

    #[test]
    fn unmapped_id_error_says_so() {
        let sys = RecordingSyscall::failing(|c| matches!(c, Call::Setuid(_)), Errno::EINVAL);
        let err = set_credentials(&sys, 5000, 0, &[]).unwrap_err().to_string();
        assert!(
            err.contains("setuid 5000") && err.contains("not mapped"),
            "{err}"
        );
    }

    #[test]
    fn lookup_follows_path_and_reports_misses() {
        let sh = find_executable("sh", "/nonexistent:/bin:/usr/bin").unwrap();
        assert!(sh.ends_with("sh"));
        assert_eq!(find_executable("/x/y", "").unwrap(), PathBuf::from("/x/y"));
        let err = find_executable("no-such-cmd-rbuild", "/bin")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no-such-cmd-rbuild") && err.contains("/bin"),
            "{err}"
        );
    }

    #[test]
    fn default_path_only_when_missing() {
        let env = environment(&[("A".into(), "1".into())]);
        assert!(env.contains(&("PATH".into(), DEFAULT_PATH.into())));
        let env = environment(&[("PATH".into(), "/x".into())]);
        assert_eq!(env, vec![("PATH".into(), "/x".into())]);
    }

    #[test]
    fn only_the_default_caps_stay_in_the_bounding_set() {
        let sys = RecordingSyscall::new();
        restrict_capabilities(&sys, 40).unwrap();
        let calls = sys.calls();
        assert_eq!(calls.len(), 41 - DEFAULT_CAPS.len() + 1);
        assert!(calls.contains(&Call::DropCap(21)), "CAP_SYS_ADMIN must go");
        assert!(!calls.contains(&Call::DropCap(0)), "CAP_CHOWN stays");
        assert_eq!(calls.last(), Some(&Call::ClearAmbient));
    }

    #[test]
    fn exit_codes_are_shell_style() {
        assert_eq!(ExitKind::Exited(3).code(), 3);
        assert_eq!(ExitKind::Signaled(9).code(), 137);
    }
}
