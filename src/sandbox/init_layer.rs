//! The init layer: a tiny lower dir, stacked right under the upper, that
//! holds the RUN sandbox's mount points the image lacks (`/proc`, `/sys`,
//! `/dev`, `/etc/hosts`, `/etc/resolv.conf`, `/etc/hostname`), as docker's
//! init layer does. Because the mount points already exist in the merged
//! view, no step has to create them, so neither they nor a copied-up parent
//! dir ever reach the upper (the layer).
//!
//! A parent dir the stub needs (`/etc`) is copied into the init layer with
//! the metadata of the image's own dir (owner, mode, times, xattrs other
//! than overlay's), so the merged view is unchanged. A mount point whose
//! parent is missing or not a dir in the image is left out; the sandbox
//! then creates and removes it around the step (see `rootfs::MountStubs`).

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use nix::sys::time::TimeSpec;

use super::error::{Result, SandboxError};
use super::rootfs::StubKind;

/// The mount points of every RUN step, relative to the root.
pub const MOUNT_POINTS: [(&str, StubKind); 6] = [
    ("proc", StubKind::Dir),
    ("sys", StubKind::Dir),
    ("dev", StubKind::Dir),
    ("etc/hosts", StubKind::File),
    ("etc/resolv.conf", StubKind::File),
    ("etc/hostname", StubKind::File),
];

const OPAQUE_XATTR: &str = "user.overlay.opaque";

/// What a path is in a stack of lowers (topmost first).
#[derive(Debug)]
enum Lookup {
    Absent,
    /// The topmost lower's copy of it.
    Present(PathBuf, std::fs::Metadata),
}

fn is_whiteout(meta: &std::fs::Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

fn is_opaque(path: &Path) -> bool {
    matches!(xattr::get(path, OPAQUE_XATTR), Ok(Some(v)) if v == b"y")
}

/// Resolves `rel` through the lowers with overlay rules: a whiteout hides
/// it, an opaque parent dir hides the lowers below it.
fn lookup(lowers: &[PathBuf], rel: &Path) -> Lookup {
    for lower in lowers {
        let path = lower.join(rel);
        if let Ok(meta) = path.symlink_metadata() {
            if is_whiteout(&meta) {
                return Lookup::Absent;
            }
            return Lookup::Present(path, meta);
        }
        // Not in this lower: an opaque or non-dir ancestor here ends the search.
        let mut anc = rel.parent();
        while let Some(a) = anc.filter(|a| !a.as_os_str().is_empty()) {
            match lower.join(a).symlink_metadata() {
                Ok(m) if m.is_dir() => {
                    if is_opaque(&lower.join(a)) {
                        return Lookup::Absent;
                    }
                    break;
                }
                Ok(_) => return Lookup::Absent,
                Err(_) => anc = a.parent(),
            }
        }
    }
    Lookup::Absent
}

fn copy_dir_meta(src: &Path, meta: &std::fs::Metadata, dst: &Path) -> Result<()> {
    nix::unistd::fchownat(
        None,
        dst,
        Some(nix::unistd::Uid::from_raw(meta.uid())),
        Some(nix::unistd::Gid::from_raw(meta.gid())),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(SandboxError::sys("chown", Some(dst)))?;
    std::fs::set_permissions(dst, std::fs::Permissions::from_mode(meta.mode() & 0o7777))
        .map_err(SandboxError::io("chmod", dst))?;
    if let Ok(names) = xattr::list(src) {
        for name in names {
            if name.to_string_lossy().contains(".overlay.") {
                continue;
            }
            if let Ok(Some(v)) = xattr::get(src, &name) {
                let _ = xattr::set(dst, &name, &v);
            }
        }
    }
    Ok(())
}

fn set_times(path: &Path, meta: &std::fs::Metadata) -> Result<()> {
    nix::sys::stat::utimensat(
        None,
        path,
        &TimeSpec::new(meta.atime(), meta.atime_nsec()),
        &TimeSpec::new(meta.mtime(), meta.mtime_nsec()),
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .map_err(SandboxError::sys("utimensat", Some(path)))
}

/// Builds the init layer for `lowers` (topmost first) in a new temp dir, or
/// `None` when the image already has every mount point.
pub fn build(lowers: &[PathBuf]) -> Result<Option<tempfile::TempDir>> {
    let mut dir: Option<tempfile::TempDir> = None;
    // Parent dirs copied in, to set their times once their stubs exist.
    let mut parents: Vec<(PathBuf, std::fs::Metadata)> = Vec::new();
    'points: for (point, kind) in MOUNT_POINTS {
        let rel = Path::new(point);
        if let Lookup::Present(..) = lookup(lowers, rel) {
            continue;
        }
        let ancestors: Vec<PathBuf> = {
            let mut acc = PathBuf::new();
            let comps: Vec<Component> = rel.components().collect();
            comps[..comps.len() - 1]
                .iter()
                .map(|c| {
                    acc.push(c);
                    acc.clone()
                })
                .collect()
        };
        let mut found = Vec::new();
        for a in &ancestors {
            match lookup(lowers, a) {
                Lookup::Present(src, meta) if meta.is_dir() => found.push((a.clone(), src, meta)),
                _ => continue 'points,
            }
        }
        let root = match &dir {
            Some(d) => d.path().to_path_buf(),
            None => {
                let d = tempfile::Builder::new()
                    .prefix("rbuild-init-layer")
                    .tempdir()
                    .map_err(SandboxError::io("create init layer", std::env::temp_dir()))?;
                std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755))
                    .map_err(SandboxError::io("chmod", d.path()))?;
                let p = d.path().to_path_buf();
                dir = Some(d);
                p
            }
        };
        for (a, src, meta) in found {
            let dst = root.join(&a);
            if dst.symlink_metadata().is_err() {
                std::fs::create_dir(&dst).map_err(SandboxError::io("mkdir", &dst))?;
                copy_dir_meta(&src, &meta, &dst)?;
                parents.push((dst, meta));
            }
        }
        let stub = root.join(rel);
        match kind {
            StubKind::Dir => {
                std::fs::create_dir(&stub).map_err(SandboxError::io("mkdir", &stub))?
            }
            StubKind::File => {
                std::fs::File::create(&stub).map_err(SandboxError::io("create", &stub))?;
            }
        }
    }
    for (dst, meta) in parents.iter().rev() {
        set_times(dst, meta)?;
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn stubs_only_what_is_missing_and_mirrors_the_parent_dir() {
        let t = tempfile::tempdir().unwrap();
        let (top, base) = (t.path().join("top"), t.path().join("base"));
        fs::create_dir_all(base.join("etc")).unwrap();
        fs::create_dir_all(base.join("proc")).unwrap();
        fs::create_dir_all(&top).unwrap();
        fs::write(base.join("etc/hosts"), "img").unwrap();
        fs::set_permissions(base.join("etc"), fs::Permissions::from_mode(0o750)).unwrap();
        let old = TimeSpec::new(1_234_567, 0);
        nix::sys::stat::utimensat(
            None,
            &base.join("etc"),
            &old,
            &old,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )
        .unwrap();
        let init = build(&[top.clone(), base.clone()]).unwrap().unwrap();
        let i = init.path();
        assert!(!i.join("proc").exists(), "the image has /proc");
        assert!(i.join("sys").is_dir() && i.join("dev").is_dir());
        assert!(!i.join("etc/hosts").exists(), "the image has /etc/hosts");
        assert_eq!(fs::read(i.join("etc/hostname")).unwrap(), b"");
        let m = fs::metadata(i.join("etc")).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o750);
        assert_eq!(m.mtime(), 1_234_567);
    }

    #[test]
    fn whiteouts_and_missing_parents_are_respected() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let (top, base) = (t.path().join("top"), t.path().join("base"));
        for d in [&top, &base] {
            fs::create_dir_all(d).unwrap();
        }
        fs::create_dir_all(base.join("proc")).unwrap();
        // /proc deleted by the upper layer, and no /etc at all.
        nix::sys::stat::mknod(
            &top.join("proc"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            0,
        )
        .unwrap();
        let init = build(&[top, base]).unwrap().unwrap();
        assert!(init.path().join("proc").is_dir());
        assert!(!init.path().join("etc").exists());
    }

    #[test]
    fn nothing_to_add_means_no_layer() {
        let t = tempfile::tempdir().unwrap();
        for p in ["proc", "sys", "dev", "etc"] {
            fs::create_dir_all(t.path().join(p)).unwrap();
        }
        for f in ["etc/hosts", "etc/resolv.conf", "etc/hostname"] {
            fs::write(t.path().join(f), "").unwrap();
        }
        assert!(build(&[t.path().to_path_buf()]).unwrap().is_none());
    }
}
