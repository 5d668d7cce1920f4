//! `run -t`: a pseudo-terminal for the command. rbuild keeps the master,
//! the command gets the slave as stdin/stdout/stderr and (through
//! `RunSpec::terminal`) as its controlling terminal. While it runs, the
//! caller's terminal is in raw mode so Ctrl-C, Ctrl-Z and line editing go
//! to the command's line discipline, and window-size changes follow.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};
use std::thread::JoinHandle;

use nix::sys::termios::{self, SetArg, Termios};

use crate::container::error::{ContainerError, Result};
use crate::sandbox::RunStdio;

static MASTER: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_winch(_sig: libc::c_int) {
    let master = MASTER.load(Ordering::SeqCst);
    if master >= 0 {
        // SAFETY: ioctl is async-signal-safe; ws lives on this stack frame.
        unsafe {
            let mut ws: libc::winsize = std::mem::zeroed();
            if libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) == 0 {
                libc::ioctl(master, libc::TIOCSWINSZ, &ws);
            }
        }
    }
}

/// A pty whose slave goes to the command; [`Terminal::start`] copies.
pub struct Terminal {
    master: OwnedFd,
    slave: Option<OwnedFd>,
    saved: Option<Termios>,
    output: Option<JoinHandle<()>>,
}

fn winsize_of(fd: RawFd) -> Option<libc::winsize> {
    // SAFETY: TIOCGWINSZ fills a winsize.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        (libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) == 0).then_some(ws)
    }
}

impl Terminal {
    /// Opens a pty sized like rbuild's stdin when that is a terminal.
    pub fn open() -> Result<Terminal> {
        let mut master: libc::c_int = -1;
        let mut slave: libc::c_int = -1;
        let ws = winsize_of(0);
        let ws_ptr = ws
            .as_ref()
            .map_or(std::ptr::null(), |w| w as *const libc::winsize);
        // SAFETY: openpty writes two fds; the name buffer and termios may be null.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                ws_ptr,
            )
        };
        if rc != 0 {
            return Err(ContainerError::Io {
                op: "open a pseudo-terminal",
                path: "/dev/ptmx".into(),
                source: std::io::Error::last_os_error(),
            });
        }
        // SAFETY: openpty succeeded; we own both fds.
        let (master, slave) =
            unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        for fd in [&master, &slave] {
            // SAFETY: plain fcntl on an fd we own.
            unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
        }
        Ok(Terminal {
            master,
            slave: Some(slave),
            saved: None,
            output: None,
        })
    }

    /// The command's stdio: the slave three times.
    pub fn stdio(&mut self) -> Result<RunStdio> {
        let slave = self
            .slave
            .take()
            .ok_or_else(|| ContainerError::Invalid("terminal already handed out".into()))?;
        let dup = |fd: &OwnedFd| {
            fd.try_clone()
                .map_err(ContainerError::io("dup", "pty slave"))
        };
        Ok(RunStdio {
            stdout: Some(dup(&slave)?),
            stderr: Some(dup(&slave)?),
            stdin: Some(slave),
        })
    }

    /// Raw mode on rbuild's terminal, then copies stdin → pty and pty → stdout.
    pub fn start(&mut self) -> Result<()> {
        let stdin = std::io::stdin();
        if let Ok(saved) = termios::tcgetattr(stdin.as_fd()) {
            let mut raw = saved.clone();
            termios::cfmakeraw(&mut raw);
            termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw)
                .map_err(|e| ContainerError::io("set raw mode on", "stdin")(e.into()))?;
            self.saved = Some(saved);
        }
        MASTER.store(self.master.as_raw_fd(), Ordering::SeqCst);
        // SAFETY: the handler only reads an atomic and calls ioctl.
        unsafe { libc::signal(libc::SIGWINCH, on_winch as *const () as libc::sighandler_t) };

        let mut from_master = File::from(
            self.master
                .try_clone()
                .map_err(ContainerError::io("dup", "pty master"))?,
        );
        self.output = Some(std::thread::spawn(move || {
            let mut out = std::io::stdout();
            let mut buf = [0u8; 8192];
            loop {
                match from_master.read(&mut buf) {
                    // EIO: every slave fd is closed, the command is gone.
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if out.write_all(&buf[..n]).and_then(|_| out.flush()).is_err() {
                            break;
                        }
                    }
                }
            }
        }));
        let mut to_master = File::from(
            self.master
                .try_clone()
                .map_err(ContainerError::io("dup", "pty master"))?,
        );
        // Not joined: a read of stdin cannot be interrupted; the thread ends with rbuild.
        std::thread::spawn(move || {
            let mut input = std::io::stdin();
            let mut buf = [0u8; 4096];
            while let Ok(n) = input.read(&mut buf) {
                if n == 0 {
                    // stdin ended (a pipe or /dev/null): EOT is end-of-file
                    // for the command's line discipline, so a shell exits.
                    let _ = to_master.write_all(&[4]);
                    break;
                }
                if to_master.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        });
        Ok(())
    }

    /// Waits for the command's output to drain and restores the terminal.
    pub fn finish(mut self) {
        if let Some(h) = self.output.take() {
            let _ = h.join();
        }
        self.restore();
    }

    fn restore(&mut self) {
        MASTER.store(-1, Ordering::SeqCst);
        if let Some(saved) = self.saved.take() {
            let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, &saved);
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        self.restore();
    }
}
