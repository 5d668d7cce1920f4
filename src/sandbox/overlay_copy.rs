//! The last-resort overlay: copies instead of mounting, for kernels and
//! hosts where neither the kernel overlay nor fuse-overlayfs works.
//!
//! Contract (what the caller can rely on):
//! - `mount`: `target` must be an empty dir. The lowers are copied into it
//!   bottom-most first, then the upper, each applied with overlay semantics
//!   (a 0/0 char device deletes, a dir with `user.overlay.opaque=y` hides
//!   what is below). Owners, modes, times, symlinks, hardlinks within one
//!   layer, devices where mknod is allowed, and `user.*` xattrs (never
//!   `*.overlay.*`) are kept. Then every path's (type, inode, ctime) is
//!   remembered.
//! - `finish` (the guard's unmount): every path whose (type, inode, ctime)
//!   changed or that is new is copied into the upper (with its parent dirs,
//!   as overlay copy-up would); every path that disappeared gets its upper
//!   copy removed and, when a lower had it, a 0/0 char-device whiteout. The
//!   upper then holds the same diff a kernel overlay would have left, except
//!   that a deleted-then-recreated dir is expressed with whiteouts for its
//!   old children instead of an opaque marker. `target` is emptied.
//! - Cost is a full copy and a full walk; memory is one entry per path.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::sys::stat::{Mode, SFlag};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid};

use super::error::{Result, SandboxError};

const OPAQUE_XATTR: &str = "user.overlay.opaque";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Snap {
    kind: u32,
    ino: u64,
    ctime: (i64, i64),
}

fn snap_of(meta: &std::fs::Metadata) -> Snap {
    Snap {
        kind: meta.mode() & libc::S_IFMT,
        ino: meta.ino(),
        ctime: (meta.ctime(), meta.ctime_nsec()),
    }
}

/// A copied "mount": see the module doc for the contract.
#[derive(Debug)]
pub struct CopyMount {
    upper: PathBuf,
    target: PathBuf,
    in_lowers: HashSet<PathBuf>,
    snapshot: HashMap<PathBuf, Snap>,
}

fn is_whiteout(meta: &std::fs::Metadata) -> bool {
    meta.mode() & libc::S_IFMT == libc::S_IFCHR && meta.rdev() == 0
}

fn is_opaque(path: &Path) -> bool {
    matches!(xattr::get(path, OPAQUE_XATTR), Ok(Some(v)) if v == b"y")
}

/// Removes whatever is at `path` (file, symlink or whole tree), if anything.
fn remove_any(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {
            std::fs::remove_dir_all(path).map_err(SandboxError::io("remove dir", path))
        }
        Ok(_) => std::fs::remove_file(path).map_err(SandboxError::io("remove", path)),
        Err(_) => Ok(()),
    }
}

fn clear_dir(dir: &Path) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(SandboxError::io("read dir", dir))? {
        let entry = entry.map_err(SandboxError::io("read dir", dir))?;
        remove_any(&entry.path())?;
    }
    Ok(())
}

fn set_owner(path: &Path, meta: &std::fs::Metadata) -> Result<()> {
    nix::unistd::fchownat(
        None,
        path,
        Some(Uid::from_raw(meta.uid())),
        Some(Gid::from_raw(meta.gid())),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(SandboxError::sys("lchown", Some(path)))
}

fn set_times(path: &Path, meta: &std::fs::Metadata) -> Result<()> {
    let atime = TimeSpec::new(meta.atime(), meta.atime_nsec());
    let mtime = TimeSpec::new(meta.mtime(), meta.mtime_nsec());
    nix::sys::stat::utimensat(
        None,
        path,
        &atime,
        &mtime,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .map_err(SandboxError::sys("utimensat", Some(path)))
}

fn copy_xattrs(src: &Path, dst: &Path) {
    let Ok(names) = xattr::list(src) else { return };
    for name in names {
        let n = name.to_string_lossy();
        if !n.starts_with("user.") || n.contains(".overlay.") {
            continue;
        }
        if let Ok(Some(v)) = xattr::get(src, &name) {
            if let Err(e) = xattr::set(dst, &name, &v) {
                log::debug!("xattr {n} on {}: {e}", dst.display());
            }
        }
    }
}

fn set_dir_meta(src: &Path, meta: &std::fs::Metadata, dst: &Path) -> Result<()> {
    set_owner(dst, meta)?;
    std::fs::set_permissions(dst, std::fs::Permissions::from_mode(meta.mode() & 0o7777))
        .map_err(SandboxError::io("chmod", dst))?;
    copy_xattrs(src, dst);
    Ok(())
}

/// Copies one non-directory entry; `links` maps a source inode to the first
/// destination made from it, so hardlinks stay hardlinks.
fn copy_entry(
    src: &Path,
    meta: &std::fs::Metadata,
    dst: &Path,
    links: &mut HashMap<(u64, u64), PathBuf>,
) -> Result<()> {
    let ft = meta.file_type();
    if ft.is_file() {
        let key = (meta.dev(), meta.ino());
        if meta.nlink() > 1 {
            if let Some(first) = links.get(&key) {
                return std::fs::hard_link(first, dst).map_err(SandboxError::io("hardlink", dst));
            }
            links.insert(key, dst.to_path_buf());
        }
        std::fs::copy(src, dst).map_err(SandboxError::io("copy", dst))?;
        set_owner(dst, meta)?;
        // chown clears setuid bits: set the mode after it.
        std::fs::set_permissions(dst, std::fs::Permissions::from_mode(meta.mode() & 0o7777))
            .map_err(SandboxError::io("chmod", dst))?;
        copy_xattrs(src, dst);
    } else if ft.is_symlink() {
        let to = std::fs::read_link(src).map_err(SandboxError::io("readlink", src))?;
        std::os::unix::fs::symlink(&to, dst).map_err(SandboxError::io("symlink", dst))?;
        set_owner(dst, meta)?;
    } else {
        let kind = match meta.mode() & libc::S_IFMT {
            libc::S_IFCHR => SFlag::S_IFCHR,
            libc::S_IFBLK => SFlag::S_IFBLK,
            libc::S_IFIFO => SFlag::S_IFIFO,
            _ => {
                log::warn!("skipping socket {}", src.display());
                return Ok(());
            }
        };
        let mode = Mode::from_bits_truncate(meta.mode() & 0o7777);
        if let Err(e) = nix::sys::stat::mknod(dst, kind, mode, meta.rdev()) {
            log::warn!("skipping device {}: mknod: {e}", dst.display());
            return Ok(());
        }
        set_owner(dst, meta)?;
    }
    set_times(dst, meta)
}

fn walk_sorted(root: &Path) -> walkdir::IntoIter {
    walkdir::WalkDir::new(root)
        .min_depth(1)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
}

fn walk_err(root: &Path) -> impl Fn(walkdir::Error) -> SandboxError + '_ {
    move |e| SandboxError::Io {
        op: "walk",
        path: e.path().unwrap_or(root).to_path_buf(),
        source: e.into(),
    }
}

/// Applies one layer dir onto `dst` with overlay semantics.
fn apply_layer(src: &Path, dst: &Path) -> Result<()> {
    let mut links = HashMap::new();
    let mut dirs = Vec::new();
    for entry in walk_sorted(src) {
        let entry = entry.map_err(walk_err(src))?;
        let rel = entry.path().strip_prefix(src).unwrap_or(entry.path());
        let dest = dst.join(rel);
        let meta = entry
            .path()
            .symlink_metadata()
            .map_err(SandboxError::io("stat", entry.path()))?;
        if is_whiteout(&meta) {
            remove_any(&dest)?;
            continue;
        }
        if meta.is_dir() {
            match dest.symlink_metadata() {
                Ok(m) if m.is_dir() => {
                    if is_opaque(entry.path()) {
                        clear_dir(&dest)?;
                    }
                }
                _ => {
                    remove_any(&dest)?;
                    std::fs::create_dir(&dest).map_err(SandboxError::io("mkdir", &dest))?;
                }
            }
            set_dir_meta(entry.path(), &meta, &dest)?;
            dirs.push((dest, meta));
        } else {
            remove_any(&dest)?;
            copy_entry(entry.path(), &meta, &dest, &mut links)?;
        }
    }
    // Children changed the dirs' mtimes: restore them deepest first.
    for (dest, meta) in dirs.iter().rev() {
        set_times(dest, meta)?;
    }
    Ok(())
}

fn snapshot(root: &Path) -> Result<HashMap<PathBuf, Snap>> {
    let mut map = HashMap::new();
    for entry in walk_sorted(root) {
        let entry = entry.map_err(walk_err(root))?;
        let meta = entry
            .path()
            .symlink_metadata()
            .map_err(SandboxError::io("stat", entry.path()))?;
        let rel = entry
            .path()
            .strip_prefix(root)
            .unwrap_or(entry.path())
            .to_path_buf();
        map.insert(rel, snap_of(&meta));
    }
    Ok(map)
}

impl CopyMount {
    /// Copies the lowers (topmost first in `lowers`) and the upper into
    /// the empty dir `target`.
    pub fn mount(lowers: &[PathBuf], upper: &Path, target: &Path) -> Result<CopyMount> {
        let not_empty = std::fs::read_dir(target)
            .map_err(SandboxError::io("read dir", target))?
            .next()
            .is_some();
        if not_empty {
            return Err(SandboxError::Overlay {
                mode: "copy",
                target: target.to_path_buf(),
                detail: "the mount point is not empty".into(),
            });
        }
        for lower in lowers.iter().rev() {
            apply_layer(lower, target)?;
        }
        let in_lowers = snapshot(target)?.into_keys().collect();
        apply_layer(upper, target)?;
        let snapshot = snapshot(target)?;
        Ok(CopyMount {
            upper: upper.to_path_buf(),
            target: target.to_path_buf(),
            in_lowers,
            snapshot,
        })
    }

    /// Makes each missing ancestor of `rel` a dir in the upper, with the
    /// merged view's metadata.
    fn copy_up_parents(&self, rel: &Path) -> Result<()> {
        let mut acc = PathBuf::new();
        let parents: Vec<_> = rel
            .parent()
            .map(|p| p.components().collect())
            .unwrap_or_default();
        for comp in parents {
            acc.push(comp);
            let up = self.upper.join(&acc);
            if matches!(up.symlink_metadata(), Ok(m) if m.is_dir()) {
                continue;
            }
            remove_any(&up)?;
            let src = self.target.join(&acc);
            let meta = src
                .symlink_metadata()
                .map_err(SandboxError::io("stat", &src))?;
            std::fs::create_dir(&up).map_err(SandboxError::io("mkdir", &up))?;
            set_dir_meta(&src, &meta, &up)?;
            set_times(&up, &meta)?;
        }
        Ok(())
    }

    /// Writes the diff into the upper and empties the target.
    pub fn finish(self) -> Result<()> {
        let mut present = HashMap::new();
        let mut links = HashMap::new();
        let mut dirs = Vec::new();
        for entry in walk_sorted(&self.target) {
            let entry = entry.map_err(walk_err(&self.target))?;
            let path = entry.path();
            let meta = path
                .symlink_metadata()
                .map_err(SandboxError::io("stat", path))?;
            let rel = path
                .strip_prefix(&self.target)
                .unwrap_or(path)
                .to_path_buf();
            let now = snap_of(&meta);
            present.insert(rel.clone(), meta.is_dir());
            if self.snapshot.get(&rel) == Some(&now) {
                continue;
            }
            self.copy_up_parents(&rel)?;
            let up = self.upper.join(&rel);
            if meta.is_dir() {
                if !matches!(up.symlink_metadata(), Ok(m) if m.is_dir()) {
                    remove_any(&up)?;
                    std::fs::create_dir(&up).map_err(SandboxError::io("mkdir", &up))?;
                }
                set_dir_meta(path, &meta, &up)?;
                dirs.push((up, meta));
            } else {
                remove_any(&up)?;
                copy_entry(path, &meta, &up, &mut links)?;
            }
        }
        let mut gone: Vec<&PathBuf> = self
            .snapshot
            .keys()
            .filter(|k| !present.contains_key(*k))
            .collect();
        gone.sort();
        for rel in gone {
            // Only the topmost deleted path needs a whiteout; under a path
            // that is now a non-directory there is nothing to hide.
            let parent_is_dir = match rel.parent() {
                Some(p) if !p.as_os_str().is_empty() => present.get(p) == Some(&true),
                _ => true,
            };
            if !parent_is_dir {
                continue;
            }
            let up = self.upper.join(rel);
            remove_any(&up)?;
            if self.in_lowers.contains(rel) {
                self.copy_up_parents(rel)?;
                nix::sys::stat::mknod(&up, SFlag::S_IFCHR, Mode::empty(), 0)
                    .map_err(SandboxError::sys("mknod whiteout", Some(&up)))?;
            }
        }
        for (up, meta) in dirs.iter().rev() {
            set_times(up, meta)?;
        }
        clear_dir(&self.target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn whiteout(p: &Path) {
        nix::sys::stat::mknod(p, SFlag::S_IFCHR, Mode::empty(), 0).unwrap();
    }

    #[test]
    fn layers_apply_with_whiteouts_and_opaque_dirs_then_diff_goes_to_upper() {
        if !nix::unistd::geteuid().is_root() {
            return; // whiteouts need mknod; the rootless run covers it in tests/
        }
        let t = tempfile::tempdir().unwrap();
        let p = |s: &str| t.path().join(s);
        for d in [
            "low", "mid", "up", "m", "low/d", "low/keep", "mid/d", "low/o", "mid/o",
        ] {
            fs::create_dir(p(d)).unwrap();
        }
        fs::write(p("low/a"), "a").unwrap();
        fs::write(p("low/d/x"), "x").unwrap();
        fs::write(p("low/o/hidden"), "h").unwrap();
        fs::write(p("low/keep/k"), "k").unwrap();
        whiteout(&p("mid/a"));
        fs::write(p("mid/d/y"), "y").unwrap();
        xattr::set(p("mid/o"), OPAQUE_XATTR, b"y").unwrap();
        fs::write(p("mid/o/shown"), "s").unwrap();
        let lowers = vec![p("mid"), p("low")];
        let mnt = CopyMount::mount(&lowers, &p("up"), &p("m")).unwrap();
        assert!(!p("m/a").exists());
        assert_eq!(fs::read_to_string(p("m/d/x")).unwrap(), "x");
        assert_eq!(fs::read_to_string(p("m/d/y")).unwrap(), "y");
        assert!(!p("m/o/hidden").exists());
        assert!(p("m/o/shown").exists());
        // A step: add, change, delete.
        fs::write(p("m/new"), "n").unwrap();
        fs::write(p("m/d/x"), "changed").unwrap();
        fs::remove_dir_all(p("m/keep")).unwrap();
        mnt.finish().unwrap();
        assert_eq!(fs::read_to_string(p("up/new")).unwrap(), "n");
        assert_eq!(fs::read_to_string(p("up/d/x")).unwrap(), "changed");
        assert!(
            !p("up/d/y").exists(),
            "unchanged files stay out of the diff"
        );
        let wh = p("up/keep").symlink_metadata().unwrap();
        assert!(is_whiteout(&wh));
        assert!(!p("up/keep/k").exists());
        assert_eq!(fs::read_dir(p("m")).unwrap().count(), 0);
    }

    #[test]
    fn refuses_a_non_empty_target() {
        let t = tempfile::tempdir().unwrap();
        fs::write(t.path().join("f"), "").unwrap();
        let err = CopyMount::mount(&[], t.path(), t.path()).unwrap_err();
        assert!(err.to_string().contains("not empty"));
    }
}
