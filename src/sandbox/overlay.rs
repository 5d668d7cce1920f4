//! Layer mounts: an overlay of read-only lowers (topmost first) under a
//! writable upper, so the upper dir is exactly the diff of whatever ran on
//! the merged view.
//!
//! Three ways to get there, tried in this order unless `RBUILD_OVERLAY`
//! (or an explicit [`OverlayMode`]) forces one:
//! 1. the kernel's overlay through the new mount API, one `lowerdir+` per
//!    layer (no page-sized option string, so 60+ lowers work), with
//!    `userxattr` always, so the on-disk convention is the same as root and
//!    rootless: whiteouts are 0/0 character devices, opaque dirs carry
//!    `user.overlay.opaque`;
//! 2. `fuse-overlayfs` (same conventions; it also reads `user.overlay.*`);
//! 3. a copy ([`super::overlay_copy`]): see there for its exact contract.
//!
//! The init layer ([`super::init_layer`]) goes on top of the lowers, so the
//! RUN sandbox's mount points exist without a write to the upper; whiteouts
//! of its stubs (a step that deleted `/etc/hosts`) are pruned at unmount.
//! An empty lower list (FROM scratch) mounts over the init layer or a
//! private empty dir.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;

use nix::mount::MntFlags;

use super::error::{Result, SandboxError};
use super::overlay_copy::CopyMount;
use super::syscall::{LinuxSyscall, OverlayStage, Syscall};

/// Environment knob that forces one overlay implementation.
pub const ENV_OVERLAY: &str = "RBUILD_OVERLAY";

/// Which overlay implementation to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverlayMode {
    /// `RBUILD_OVERLAY` if set, else kernel → fuse-overlayfs → copy.
    Auto,
    Kernel,
    Fuse,
    Copy,
}

impl OverlayMode {
    /// The name `RBUILD_OVERLAY` uses.
    pub fn name(self) -> &'static str {
        match self {
            OverlayMode::Auto => "auto",
            OverlayMode::Kernel => "kernel",
            OverlayMode::Fuse => "fuse",
            OverlayMode::Copy => "copy",
        }
    }

    /// The mode `RBUILD_OVERLAY` forces, if any.
    pub fn from_env() -> Result<Option<OverlayMode>> {
        match std::env::var(ENV_OVERLAY) {
            Ok(v) if !v.is_empty() => v.parse().map(Some),
            _ => Ok(None),
        }
    }
}

impl FromStr for OverlayMode {
    type Err = SandboxError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(OverlayMode::Auto),
            "kernel" => Ok(OverlayMode::Kernel),
            "fuse" => Ok(OverlayMode::Fuse),
            "copy" => Ok(OverlayMode::Copy),
            other => Err(SandboxError::OverlayMode(other.to_string())),
        }
    }
}

enum Mounted {
    Kernel,
    /// fuse-overlayfs; it whiteouts every removed dir, even one no lower
    /// has, so unmounting prunes those against the lowers.
    Fuse,
    Copy(Box<CopyMount>),
}

/// A mounted overlay; unmounted by [`MountGuard::unmount`] or, best effort,
/// on drop. For the copy mode, unmounting is when the upper gets the diff.
pub struct MountGuard {
    target: PathBuf,
    upper: PathBuf,
    /// The caller's lowers, without the init layer.
    lowers: Vec<PathBuf>,
    /// Whether whiteouts of init-layer stubs may need pruning at unmount.
    prune: bool,
    mounted: Option<Mounted>,
    // The init layer and the stand-in lower of a FROM-scratch mount, alive
    // while mounted.
    _keep: Vec<tempfile::TempDir>,
}

impl std::fmt::Debug for MountGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MountGuard")
            .field("target", &self.target)
            .field("mode", &self.mode().name())
            .finish()
    }
}

impl MountGuard {
    /// The merged directory.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Which implementation is mounted.
    pub fn mode(&self) -> OverlayMode {
        match &self.mounted {
            Some(Mounted::Kernel) => OverlayMode::Kernel,
            Some(Mounted::Fuse) => OverlayMode::Fuse,
            Some(Mounted::Copy(_)) => OverlayMode::Copy,
            None => OverlayMode::Auto,
        }
    }

    /// Unmounts; for the copy mode, writes the diff into the upper first.
    pub fn unmount(mut self) -> Result<()> {
        self.do_unmount()
    }

    fn do_unmount(&mut self) -> Result<()> {
        let prune = match self.mounted.take() {
            None => return Ok(()),
            Some(Mounted::Kernel) => {
                unmount_path(&self.target)?;
                self.prune
            }
            Some(Mounted::Fuse) => {
                unmount_path(&self.target)?;
                true
            }
            Some(Mounted::Copy(copy)) => {
                copy.finish()?;
                self.prune
            }
        };
        if prune {
            prune_whiteouts(&self.upper, &self.lowers)?;
        }
        Ok(())
    }
}

impl Drop for MountGuard {
    fn drop(&mut self) {
        if let Err(e) = self.do_unmount() {
            log::error!("unmounting overlay {}: {e}", self.target.display());
        }
    }
}

/// Removes whiteouts in `upper` that hide nothing in any of `lowers`.
/// Walks only the upper, so the cost follows the diff.
pub fn prune_whiteouts(upper: &Path, lowers: &[PathBuf]) -> Result<()> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    for entry in walkdir::WalkDir::new(upper).min_depth(1) {
        let entry = entry.map_err(|e| SandboxError::Io {
            op: "walk",
            path: e.path().unwrap_or(upper).to_path_buf(),
            source: e.into(),
        })?;
        let meta = entry
            .path()
            .symlink_metadata()
            .map_err(SandboxError::io("stat", entry.path()))?;
        if !(meta.file_type().is_char_device() && meta.rdev() == 0) {
            continue;
        }
        let rel = entry.path().strip_prefix(upper).unwrap_or(entry.path());
        if !lowers
            .iter()
            .any(|l| l.join(rel).symlink_metadata().is_ok())
        {
            std::fs::remove_file(entry.path()).map_err(SandboxError::io("remove", entry.path()))?;
        }
    }
    Ok(())
}

fn unmount_path(target: &Path) -> Result<()> {
    let sys = LinuxSyscall;
    match sys.umount(target, MntFlags::empty()) {
        Ok(()) => Ok(()),
        // Busy (a process still has its cwd there): detach now, the kernel
        // finishes when the last user goes.
        Err(nix::errno::Errno::EBUSY) => sys
            .umount(target, MntFlags::MNT_DETACH)
            .map_err(SandboxError::sys("umount2(MNT_DETACH)", Some(target))),
        Err(e) => Err(SandboxError::sys("umount2", Some(target))(e)),
    }
}

/// Mounts `lowers` (topmost first) under `upper` at `target`, using `work`
/// as the overlay workdir (same filesystem as `upper`).
pub fn mount_overlay(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
    mode: OverlayMode,
) -> Result<MountGuard> {
    mount_overlay_with(&LinuxSyscall, lowers, upper, work, target, mode)
}

/// [`mount_overlay`] with an explicit [`Syscall`] for the kernel mode.
pub fn mount_overlay_with(
    sys: &dyn Syscall,
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
    mode: OverlayMode,
) -> Result<MountGuard> {
    let mode = match mode {
        OverlayMode::Auto => OverlayMode::from_env()?.unwrap_or(OverlayMode::Auto),
        m => m,
    };
    for dir in lowers
        .iter()
        .map(PathBuf::as_path)
        .chain([upper, work, target])
    {
        if !dir.is_dir() {
            return Err(SandboxError::Overlay {
                mode: mode.name(),
                target: target.to_path_buf(),
                detail: format!("{} is not a directory", dir.display()),
            });
        }
    }
    let init = super::init_layer::build(lowers)?;
    let mut all: Vec<PathBuf> = init.iter().map(|d| d.path().to_path_buf()).collect();
    all.extend(lowers.iter().cloned());
    let mut keep = Vec::new();
    if all.is_empty() && mode != OverlayMode::Copy {
        let empty = tempfile::Builder::new()
            .prefix("rbuild-empty-lower")
            .tempdir()
            .map_err(SandboxError::io(
                "create empty lower dir",
                std::env::temp_dir(),
            ))?;
        all.push(empty.path().to_path_buf());
        keep.push(empty);
    }
    let prune = init.is_some();
    keep.extend(init);
    let lower_refs: Vec<&Path> = all.iter().map(PathBuf::as_path).collect();
    let mounted = match mode {
        OverlayMode::Kernel => mount_kernel(sys, &lower_refs, upper, work, target)?,
        OverlayMode::Fuse => mount_fuse(&lower_refs, upper, work, target)?,
        OverlayMode::Copy => Mounted::Copy(Box::new(CopyMount::mount(&all, upper, target)?)),
        OverlayMode::Auto => match mount_kernel(sys, &lower_refs, upper, work, target) {
            Ok(m) => m,
            Err(kernel_err) => {
                log::warn!("{kernel_err}; trying fuse-overlayfs");
                match mount_fuse(&lower_refs, upper, work, target) {
                    Ok(m) => m,
                    Err(fuse_err) => {
                        log::warn!("{fuse_err}; falling back to copying the layers");
                        Mounted::Copy(Box::new(CopyMount::mount(&all, upper, target)?))
                    }
                }
            }
        },
    };
    Ok(MountGuard {
        target: target.to_path_buf(),
        upper: upper.to_path_buf(),
        lowers: lowers.to_vec(),
        prune,
        mounted: Some(mounted),
        _keep: keep,
    })
}

fn mount_kernel(
    sys: &dyn Syscall,
    lowers: &[&Path],
    upper: &Path,
    work: &Path,
    target: &Path,
) -> Result<Mounted> {
    let fail = |errno: nix::errno::Errno, detail: String| SandboxError::Overlay {
        mode: "kernel",
        target: target.to_path_buf(),
        detail: format!("{detail}: {errno} ({})", errno.desc()),
    };
    match sys.mount_overlay(lowers, upper, work, target) {
        Ok(()) => Ok(Mounted::Kernel),
        // Kernels before 6.8: one option string, which must fit in a page.
        Err(e) if e.stage == OverlayStage::LowerdirPlus => {
            let data = legacy_options(lowers, upper, work).ok_or_else(|| {
                fail(
                    e.errno,
                    format!(
                        "{}; this kernel lacks lowerdir+ and {} lowers do not fit in one \
                         page of mount options",
                        e.detail,
                        lowers.len()
                    ),
                )
            })?;
            sys.mount(
                Some(Path::new("overlay")),
                target,
                Some("overlay"),
                nix::mount::MsFlags::empty(),
                Some(&data),
            )
            .map_err(|errno| fail(errno, "mount(2) with a lowerdir= string".into()))?;
            Ok(Mounted::Kernel)
        }
        Err(e) => Err(fail(e.errno, e.detail)),
    }
}

/// The classic overlay option string, with `:`, `,` and `\` escaped, or
/// `None` when it does not fit in a page (the mount(2) data limit).
pub fn legacy_options(lowers: &[&Path], upper: &Path, work: &Path) -> Option<String> {
    let esc = |p: &Path| -> Option<String> {
        let s = p.to_str()?;
        Some(
            s.replace('\\', "\\\\")
                .replace(':', "\\:")
                .replace(',', "\\,"),
        )
    };
    let lower: Vec<String> = lowers.iter().map(|p| esc(p)).collect::<Option<_>>()?;
    let data = format!(
        "lowerdir={},upperdir={},workdir={},userxattr",
        lower.join(":"),
        esc(upper)?,
        esc(work)?
    );
    (data.len() < 4096).then_some(data)
}

/// The `-o` value for fuse-overlayfs; it splits lowers on `:` and options on
/// `,`, so paths holding either are refused rather than misread.
pub fn fuse_options(
    lowers: &[&Path],
    upper: &Path,
    work: &Path,
) -> std::result::Result<String, String> {
    let mut parts = Vec::new();
    for p in lowers.iter().chain([&upper, &work]) {
        let s = p
            .to_str()
            .ok_or_else(|| format!("{} is not UTF-8", p.display()))?;
        if s.contains([':', ',', '=']) {
            return Err(format!(
                "path {s:?} contains ':', ',' or '=' which fuse-overlayfs cannot take"
            ));
        }
        parts.push(s);
    }
    let (dirs, rest) = parts.split_at(lowers.len());
    Ok(format!(
        "lowerdir={},upperdir={},workdir={}",
        dirs.join(":"),
        rest[0],
        rest[1]
    ))
}

fn mount_fuse(lowers: &[&Path], upper: &Path, work: &Path, target: &Path) -> Result<Mounted> {
    let err = |detail: String| SandboxError::Overlay {
        mode: "fuse",
        target: target.to_path_buf(),
        detail,
    };
    let program = super::idmap::find_helper("fuse-overlayfs").ok_or_else(|| {
        err("fuse-overlayfs not found; install the fuse-overlayfs package".into())
    })?;
    if let Err(e) = nix::unistd::access(
        "/dev/fuse",
        nix::unistd::AccessFlags::R_OK | nix::unistd::AccessFlags::W_OK,
    ) {
        return Err(err(format!(
            "/dev/fuse is not usable by this user ({e}); as root: `chmod 0666 /dev/fuse` \
             (or load the fuse module)"
        )));
    }
    let opts = fuse_options(lowers, upper, work).map_err(err)?;
    let out = Command::new(&program)
        .arg("-o")
        .arg(opts)
        .arg(target)
        .output()
        .map_err(|e| err(format!("cannot run {}: {e}", program.display())))?;
    if !out.status.success() {
        return Err(err(format!(
            "{} {}: {}",
            program.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(Mounted::Fuse)
}

#[cfg(test)]
mod tests {
    use super::super::syscall::{Call, RecordingSyscall};
    use super::*;

    #[test]
    fn kernel_mode_passes_each_lower_topmost_first() {
        let t = tempfile::tempdir().unwrap();
        let mk = |n: &str| {
            let p = t.path().join(n);
            std::fs::create_dir(&p).unwrap();
            p
        };
        let lowers: Vec<PathBuf> = (0..60).map(|i| mk(&format!("l{i}"))).collect();
        let (u, w, m) = (mk("u"), mk("w"), mk("m"));
        let sys = RecordingSyscall::new();
        let mut g = mount_overlay_with(&sys, &lowers, &u, &w, &m, OverlayMode::Kernel).unwrap();
        assert_eq!(g.mode(), OverlayMode::Kernel);
        g.mounted = None; // nothing was really mounted
        let calls = sys.calls();
        assert_eq!(calls.len(), 1);
        match &calls[0] {
            Call::Overlay {
                lowers: got,
                upper,
                work,
                target,
            } => {
                // The init layer (these lowers lack /proc…) goes on top.
                assert!(got[0].to_string_lossy().contains("rbuild-init-layer"));
                assert!(got[0].join("proc").is_dir());
                assert_eq!(got[1..], lowers[..]);
                assert_eq!((upper, work, target), (&u, &w, &m));
            }
            other => panic!("unexpected {other:?}"),
        }
        drop(g);
        assert!(!matches!(&calls[0], Call::Overlay { lowers, .. } if lowers[0].exists()));
    }

    /// Makes `p` hold every mount point, so no init layer is needed.
    fn full_root(p: &Path) {
        for d in ["proc", "sys", "dev", "etc"] {
            std::fs::create_dir_all(p.join(d)).unwrap();
        }
        for f in ["etc/hosts", "etc/resolv.conf", "etc/hostname"] {
            std::fs::write(p.join(f), "").unwrap();
        }
    }

    #[test]
    fn scratch_gets_the_init_layer_as_its_lower_and_kernel_errors_name_the_target() {
        let t = tempfile::tempdir().unwrap();
        for d in ["u", "w", "m"] {
            std::fs::create_dir(t.path().join(d)).unwrap();
        }
        let sys = RecordingSyscall::failing(|_| true, nix::errno::Errno::EINVAL);
        let err = mount_overlay_with(
            &sys,
            &[],
            &t.path().join("u"),
            &t.path().join("w"),
            &t.path().join("m"),
            OverlayMode::Kernel,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("kernel") && err.contains("/m"), "{err}");
        match &sys.calls()[0] {
            Call::Overlay { lowers, .. } => {
                assert_eq!(lowers.len(), 1);
                assert!(lowers[0].to_string_lossy().contains("rbuild-init-layer"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn without_lowerdir_plus_short_chains_use_one_option_string() {
        let t = tempfile::tempdir().unwrap();
        let mk = |n: &str| {
            let p = t.path().join(n);
            std::fs::create_dir(&p).unwrap();
            p
        };
        let lowers = vec![mk("a"), mk("b:c")];
        full_root(&lowers[0]);
        let (u, w, m) = (mk("u"), mk("w"), mk("m"));
        let sys = RecordingSyscall::failing(
            |c| matches!(c, Call::Overlay { .. }),
            nix::errno::Errno::EINVAL,
        );
        let mut g = mount_overlay_with(&sys, &lowers, &u, &w, &m, OverlayMode::Kernel).unwrap();
        g.mounted = None;
        let calls = sys.calls();
        let expected = format!(
            "lowerdir={}:{},upperdir={},workdir={},userxattr",
            lowers[0].display(),
            lowers[1].display().to_string().replace(':', "\\:"),
            u.display(),
            w.display()
        );
        assert_eq!(
            calls[1],
            Call::Mount {
                source: Some("overlay".into()),
                target: m.clone(),
                fstype: Some("overlay".into()),
                flags: nix::mount::MsFlags::empty(),
                data: Some(expected),
            }
        );
        // 300 lowers cannot fit: a clear error instead of a truncated list.
        let long: Vec<PathBuf> = (0..300).map(|_| lowers[0].clone()).collect();
        let sys = RecordingSyscall::failing(
            |c| matches!(c, Call::Overlay { .. }),
            nix::errno::Errno::EINVAL,
        );
        let err = mount_overlay_with(&sys, &long, &u, &w, &m, OverlayMode::Kernel)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("lacks lowerdir+") && err.contains("300 lowers"),
            "{err}"
        );
    }

    #[test]
    fn missing_dir_is_refused_before_mounting() {
        let sys = RecordingSyscall::new();
        let err = mount_overlay_with(
            &sys,
            &[PathBuf::from("/nonexistent/lower")],
            Path::new("/tmp"),
            Path::new("/tmp"),
            Path::new("/tmp"),
            OverlayMode::Kernel,
        )
        .unwrap_err();
        assert!(err
            .to_string()
            .contains("/nonexistent/lower is not a directory"));
        assert!(sys.calls().is_empty());
    }

    #[test]
    fn fuse_options_join_lowers_and_refuse_separators() {
        let l = [Path::new("/a"), Path::new("/b")];
        assert_eq!(
            fuse_options(&l, Path::new("/u"), Path::new("/w")).unwrap(),
            "lowerdir=/a:/b,upperdir=/u,workdir=/w"
        );
        assert!(fuse_options(&[Path::new("/a:b")], Path::new("/u"), Path::new("/w")).is_err());
    }

    #[test]
    fn mode_names_round_trip() {
        for m in [
            OverlayMode::Kernel,
            OverlayMode::Fuse,
            OverlayMode::Copy,
            OverlayMode::Auto,
        ] {
            assert_eq!(m.name().parse::<OverlayMode>().unwrap(), m);
        }
        assert!("tmpfs".parse::<OverlayMode>().is_err());
    }
}
