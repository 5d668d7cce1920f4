//! A container's merged rootfs: the persistent mount of `rbuild mount`
//! (under the run root, surviving the command, re-created on demand after a
//! reboot) and the short-lived view `run`/`copy` write through.
//!
//! The persistent mount point is named by the container's ID, not its
//! name, so `rename` never strands a mount.

use std::fs;
use std::path::{Path, PathBuf};

use crate::container::error::{ContainerError, Result};
use crate::container::state::WorkingContainer;
use crate::sandbox::{mount_overlay, MountGuard, OverlayMode};
use crate::store::Store;

/// Where `rbuild mount` mounts the container.
pub fn mount_point(runroot: &Path, wc: &WorkingContainer) -> PathBuf {
    runroot.join("containers").join(&wc.state.id).join("merged")
}

/// Whether `path` is a mount point in this process's mount namespace.
pub fn is_mounted(path: &Path) -> bool {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|p| Path::new(&unescape_mountinfo(p)) == path)
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let v = (bytes[i + 1] - b'0') as u32 * 64
                + (bytes[i + 2] - b'0') as u32 * 8
                + (bytes[i + 3] - b'0') as u32;
            out.push(v as u8);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn overlay(store: &Store, wc: &WorkingContainer, target: &Path) -> Result<MountGuard> {
    let _ = store;
    Ok(mount_overlay(
        wc.container.lowers(),
        &wc.container.upper(),
        &wc.container.work(),
        target,
        OverlayMode::Auto,
    )?)
}

/// Mounts the container at its mount point (if not already) and returns it.
pub fn mount(store: &Store, runroot: &Path, wc: &WorkingContainer) -> Result<PathBuf> {
    let target = mount_point(runroot, wc);
    if is_mounted(&target) {
        return Ok(target);
    }
    fs::create_dir_all(&target).map_err(ContainerError::io("create mount point", &target))?;
    let guard = overlay(store, wc, &target)?;
    // The mount must outlive this command: `umount` takes it down, and the
    // guard's helper dirs (a scratch container's stand-in lower) stay with it.
    std::mem::forget(guard);
    Ok(target)
}

/// Unmounts the container's persistent mount; false when it was not mounted.
pub fn umount(runroot: &Path, wc: &WorkingContainer) -> Result<bool> {
    let target = mount_point(runroot, wc);
    if !is_mounted(&target) {
        return Ok(false);
    }
    if let Err(e) = nix::mount::umount2(&target, nix::mount::MntFlags::empty()) {
        // fuse-overlayfs, mounted by an unprivileged user, unmounts through fusermount.
        let fused = ["fusermount3", "fusermount"].iter().any(|tool| {
            std::process::Command::new(tool)
                .arg("-u")
                .arg(&target)
                .status()
                .is_ok_and(|s| s.success())
        });
        if !fused {
            return Err(ContainerError::Io {
                op: "unmount",
                path: target,
                source: e.into(),
            });
        }
    }
    crate::sandbox::overlay::prune_whiteouts(&wc.container.upper(), wc.container.lowers())?;
    let _ = fs::remove_dir(&target);
    if let Some(parent) = target.parent() {
        let _ = fs::remove_dir(parent);
    }
    Ok(true)
}

/// The container's merged rootfs for one command: the persistent mount
/// when there is one here, else a private mount removed by [`View::finish`].
pub struct View {
    root: PathBuf,
    guard: Option<MountGuard>,
    scratch: Option<tempfile::TempDir>,
}

impl View {
    pub fn open(store: &Store, runroot: &Path, wc: &WorkingContainer) -> Result<View> {
        let persistent = mount_point(runroot, wc);
        if is_mounted(&persistent) {
            return Ok(View {
                root: persistent,
                guard: None,
                scratch: None,
            });
        }
        let dir = runroot.join("mounts");
        fs::create_dir_all(&dir).map_err(ContainerError::io("create", &dir))?;
        let scratch = tempfile::Builder::new()
            .prefix("container-")
            .tempdir_in(&dir)
            .map_err(ContainerError::io("create mount point in", &dir))?;
        let root = scratch.path().join("merged");
        fs::create_dir(&root).map_err(ContainerError::io("create", &root))?;
        let guard = overlay(store, wc, &root)?;
        Ok(View {
            root,
            guard: Some(guard),
            scratch: Some(scratch),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Unmounts a private mount, reporting failure (drop only logs it).
    pub fn finish(mut self) -> Result<()> {
        if let Some(g) = self.guard.take() {
            g.unmount()?;
        }
        drop(self.scratch.take());
        Ok(())
    }
}

/// A read-only view of another container (`copy --from CONTAINER`): its
/// upper dir joins the lowers under a throwaway upper.
pub struct ReadView {
    _guard: MountGuard,
    root: PathBuf,
    _scratch: tempfile::TempDir,
}

impl ReadView {
    pub fn open(runroot: &Path, wc: &WorkingContainer) -> Result<ReadView> {
        let dir = runroot.join("mounts");
        fs::create_dir_all(&dir).map_err(ContainerError::io("create", &dir))?;
        let scratch = tempfile::Builder::new()
            .prefix("view-")
            .tempdir_in(&dir)
            .map_err(ContainerError::io("create view in", &dir))?;
        let (root, upper, work) = (
            scratch.path().join("merged"),
            scratch.path().join("upper"),
            scratch.path().join("work"),
        );
        for d in [&root, &upper, &work] {
            fs::create_dir(d).map_err(ContainerError::io("create", d))?;
        }
        let mut lowers = vec![wc.container.upper()];
        lowers.extend(wc.container.lowers().iter().cloned());
        let guard = mount_overlay(&lowers, &upper, &work, &root, OverlayMode::Auto)?;
        Ok(ReadView {
            _guard: guard,
            root,
            _scratch: scratch,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_decoded() {
        assert_eq!(unescape_mountinfo(r"/a\040b\134c"), "/a b\\c");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
        assert_eq!(unescape_mountinfo(r"/t\04"), r"/t\04");
    }

    #[test]
    fn root_is_mounted_and_a_temp_dir_is_not() {
        assert!(is_mounted(Path::new("/")) || !Path::new("/proc/self/mountinfo").exists());
        let t = tempfile::tempdir().unwrap();
        assert!(!is_mounted(t.path()));
    }
}
