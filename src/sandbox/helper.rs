//! The RUN helper: a fresh, single-threaded rbuild started by
//! [`super::run`]. It reads a [`HelperSpec`] from fd 3, unshares pid, ipc,
//! uts, mount (and net for `Network::None`) namespaces, makes every mount
//! private, and forks the step's pid 1, which mounts the root
//! ([`rootfs::setup`]), drops capabilities outside the default set,
//! switches ids, sets `no_new_privs` (last: setuid
//! helpers must run before it), leaves only fds 0–2 and execs. The helper
//! waits for pid 1 and reports on fd 4; SIGINT/SIGTERM make it SIGKILL pid 1,
//! which ends every process of the step.

use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicI32, Ordering};

use nix::mount::MsFlags;
use nix::sched::CloneFlags;
use nix::unistd::{fork, ForkResult};

use super::channel::{channel, HelperMessage, Sender};
use super::error::{Result, SandboxError};
use super::process::{self, ExitKind};
use super::rootfs;
use super::run::HelperSpec;
use super::syscall::{LinuxSyscall, Syscall};

const SPEC_FD: i32 = 3;
const REPORT_FD: i32 = 4;

static PID1: AtomicI32 = AtomicI32::new(0);

extern "C" fn kill_step(_sig: libc::c_int) {
    let pid = PID1.load(Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

/// Entry point of the hidden helper subcommand; returns the exit code.
pub fn helper_main() -> i32 {
    for fd in [SPEC_FD, REPORT_FD] {
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
            eprintln!(
                "rbuild: {} is internal: rbuild starts it with a spec on fd 3 and a report \
                 pipe on fd 4 (fd {fd} is not open)",
                super::run::HELPER_SUBCOMMAND
            );
            return 125;
        }
    }
    // SAFETY: run() opened fds 3 and 4 for us and nothing else owns them.
    let (spec_fd, report_fd) = unsafe {
        (
            OwnedFd::from_raw_fd(SPEC_FD),
            OwnedFd::from_raw_fd(REPORT_FD),
        )
    };
    unsafe { libc::fcntl(REPORT_FD, libc::F_SETFD, libc::FD_CLOEXEC) };
    let mut report: Sender<HelperMessage> = Sender::from_fd(report_fd, "rbuild");
    process::die_with_parent();
    let mut json = Vec::new();
    let spec = std::fs::File::from(spec_fd)
        .read_to_end(&mut json)
        .map_err(SandboxError::io("read spec", "fd 3"))
        .and_then(|_| {
            serde_json::from_slice::<HelperSpec>(&json)
                .map_err(|e| SandboxError::Spec(format!("helper spec: {e}")))
        });
    let result = spec.and_then(|spec| run_step(&LinuxSyscall, &spec));
    let sent = match result {
        Ok(ExitKind::Exited(c)) => report.send(&HelperMessage::Exited(c)),
        Ok(ExitKind::Signaled(s)) => report.send(&HelperMessage::Signaled(s)),
        Err(SandboxError::Setup { step, detail }) => report.setup_failed(&step, &detail),
        Err(e) => report.setup_failed("sandbox", &e.to_string()),
    };
    match sent {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("rbuild sandbox helper: {e}");
            125
        }
    }
}

fn namespace_flags(private_network: bool) -> CloneFlags {
    let mut flags = CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWUTS;
    if private_network {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    flags
}

/// Unshares, forks pid 1, waits; errors from pid 1's setup come back as
/// [`SandboxError::Setup`].
fn run_step(sys: &dyn Syscall, spec: &HelperSpec) -> Result<ExitKind> {
    sys.unshare(namespace_flags(spec.plan.private_network))
        .map_err(|e| SandboxError::Setup {
            step: "unshare namespaces".into(),
            detail: format!(
                "{e} ({}): rbuild must run as root or inside its user namespace \
                 (sandbox::enter_user_namespace)",
                e.desc()
            ),
        })?;
    sys.mount(
        None,
        Path::new("/"),
        None,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None,
    )
    .map_err(SandboxError::sys(
        "mount --make-rprivate",
        Some(Path::new("/")),
    ))?;
    let (mut err_tx, mut err_rx) = channel::<HelperMessage>("step pid 1")?;
    // SAFETY: the helper is single-threaded.
    match unsafe { fork() }.map_err(SandboxError::sys("fork", None))? {
        ForkResult::Child => {
            drop(err_rx);
            process::die_with_parent();
            let err = pid1(sys, spec);
            let _ = match err {
                SandboxError::Setup { step, detail } => err_tx.setup_failed(&step, &detail),
                other => err_tx.setup_failed("exec", &other.to_string()),
            };
            // SAFETY: leave the forked child without running destructors.
            unsafe { libc::_exit(127) };
        }
        ForkResult::Parent { child } => {
            drop(err_tx);
            PID1.store(child.as_raw(), Ordering::SeqCst);
            for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
                // SAFETY: the handler only calls kill with an atomic's value.
                unsafe { libc::signal(sig, kill_step as *const () as libc::sighandler_t) };
            }
            let setup_error = err_rx.recv()?;
            let exit = process::wait_for(child)?;
            match setup_error {
                Some(HelperMessage::SetupFailed { step, detail }) => {
                    Err(SandboxError::Setup { step, detail })
                }
                _ => Ok(exit),
            }
        }
    }
}

/// Pid 1 of the step: returns only on failure.
fn pid1(sys: &dyn Syscall, spec: &HelperSpec) -> SandboxError {
    let prepared = (|| {
        if spec.terminal {
            controlling_terminal()?;
        }
        let last_cap = process::last_cap();
        rootfs::setup(sys, &spec.plan)?;
        process::restrict_capabilities(sys, last_cap)?;
        process::set_credentials(sys, spec.uid, spec.gid, &spec.additional_gids)?;
        sys.chdir(Path::new(&spec.cwd))
            .map_err(|e| SandboxError::Setup {
                step: format!("chdir {}", spec.cwd),
                detail: format!("{e} ({})", e.desc()),
            })?;
        sys.set_no_new_privs()
            .map_err(SandboxError::sys("prctl(PR_SET_NO_NEW_PRIVS)", None))?;
        process::close_fds_above_stderr()
    })();
    match prepared {
        Ok(()) => process::exec(&spec.argv, &spec.env),
        Err(e) => e,
    }
}

/// A new session whose controlling terminal is stdin (a pty slave), so an
/// interactive shell gets job control and Ctrl-C reaches its foreground job.
fn controlling_terminal() -> Result<()> {
    nix::unistd::setsid().map_err(|e| SandboxError::Setup {
        step: "setsid for the terminal".into(),
        detail: format!("{e} ({})", e.desc()),
    })?;
    // SAFETY: TIOCSCTTY takes an int argument; fd 0 is ours.
    if unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } < 0 {
        let e = nix::errno::Errno::last();
        return Err(SandboxError::Setup {
            step: "make stdin the controlling terminal (TIOCSCTTY)".into(),
            detail: format!("{e} ({}): is stdin a pseudo-terminal?", e.desc()),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_none_adds_a_net_namespace() {
        assert!(!namespace_flags(false).contains(CloneFlags::CLONE_NEWNET));
        assert!(namespace_flags(true).contains(CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWPID));
    }
}
