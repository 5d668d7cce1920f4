//! One command at a time per container: `run`, `copy`, `commit`, `mount`,
//! `umount` and `rm` hold an exclusive `flock(2)` on
//! `<runroot>/containers/<id>/lock` (two overlay mounts of one upper dir
//! are refused by the kernel, and a commit must not move files from under
//! a running command). A second command waits, saying why.

use std::fs::{self, File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::Path;

use crate::container::error::{ContainerError, Result};
use crate::container::state::WorkingContainer;

/// Held while a command uses the container; released on drop.
#[derive(Debug)]
pub struct ContainerLock {
    _file: File,
}

impl ContainerLock {
    pub fn acquire(runroot: &Path, wc: &WorkingContainer) -> Result<ContainerLock> {
        let dir = runroot.join("containers").join(&wc.state.id);
        fs::create_dir_all(&dir).map_err(ContainerError::io("create", &dir))?;
        let path = dir.join("lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(ContainerError::io("open lock", &path))?;
        let flock = |op| {
            // SAFETY: flock on an fd we own; no memory is passed.
            unsafe { libc::flock(file.as_raw_fd(), op) == 0 }
        };
        if !flock(libc::LOCK_EX | libc::LOCK_NB) {
            eprintln!(
                "waiting for container {:?}: another rbuild command is using it",
                wc.name()
            );
            loop {
                if flock(libc::LOCK_EX) {
                    break;
                }
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(ContainerError::io("lock", &path)(e));
                }
            }
        }
        Ok(ContainerLock { _file: file })
    }
}
