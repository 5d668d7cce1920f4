//! COPY (and the non-archive half of ADD): sources from a [`SourceTree`]
//! written into a [`Rootfs`] with docker's semantics.
//!
//! - `dest` is relative to WORKDIR; a `dest` ending in `/` (or `.`) is a
//!   directory; several sources need such a `dest` ("When using COPY with
//!   more than one source file, the destination must be a directory and end
//!   with a /"); a single file into an existing directory lands inside it.
//! - A directory source copies its *contents*; `--parents` keeps each
//!   source's path (after a `/./` pivot) under `dest`.
//! - `--exclude` patterns (dockerignore syntax) match paths inside each
//!   source, relative to it, and a wildcard's own matches; a glob matching
//!   nothing is an error only when no source matched anything (BuildKit).
//! - Files stream (`io::copy`, never buffered whole); symlinks are copied as
//!   symlinks; files hard-linked to each other in the source stay hard
//!   links; modes are kept unless `--chmod`; mtimes are kept (docker keeps
//!   the source mtime for COPY); owners are 0:0 for context files, kept for
//!   `COPY --from`, or `--chown`.
//! - Missing parent directories of `dest`, and `dest` itself when a
//!   directory's contents go there, are created 0755, owned by the
//!   `--chown` user (else 0:0), as BuildKit's `MkdirAll` does; an existing
//!   `dest` keeps its metadata. Below it, copied directories take the
//!   source's metadata, existing or not (BuildKit's
//!   `overwriteTargetMetadata`). A file never replaces a directory, nor a
//!   directory a file; a directory over a symlink to a directory (`/bin ->
//!   usr/bin`) writes through it, inside the rootfs (BuildKit refuses that
//!   with "cannot copy to non-directory"; docker's classic builder follows).

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::stat::{mknod, Mode, SFlag};

use crate::layer::rootfs::{clean_image_path, Entry, NewDir, Rootfs, RootfsError};

use super::context::{ContextError, SourceMatch, SourceTree, TreeKind};
use super::ignore::{IgnoreError, IgnoreMatcher};

/// Why a COPY failed.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("When using COPY with more than one source file, the destination must be a directory and end with a /: {dest:?}")]
    DestNotDir { dest: String },
    #[error("no source files were specified")]
    NoSources,
    #[error("{source_path:?} matched no files in {tree}")]
    NothingMatched { source_path: String, tree: String },
    #[error("cannot copy {what} {src:?} over the directory {dest:?} in the image")]
    OverDirectory {
        what: &'static str,
        src: PathBuf,
        dest: PathBuf,
    },
    #[error(
        "cannot copy the directory {src:?} to {dest:?} in the image: a non-directory is in the way"
    )]
    DirOverNonDir { src: PathBuf, dest: PathBuf },
    #[error("bad --exclude pattern: {0}")]
    Exclude(#[source] IgnoreError),
    #[error(transparent)]
    Context(#[from] ContextError),
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    #[error("{op} {path:?}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Options of one COPY/ADD instruction.
#[derive(Debug, Clone, Default)]
pub struct CopyOptions {
    /// `--chown`, already resolved to ids (see `userdb`).
    pub chown: Option<(u32, u32)>,
    /// `--chmod` (octal), applied to files and directories copied.
    pub chmod: Option<u32>,
    /// `--exclude` patterns (dockerignore syntax), relative to each source.
    pub exclude: Vec<String>,
    /// `--parents`.
    pub parents: bool,
    /// The stage's WORKDIR (empty means `/`).
    pub workdir: PathBuf,
    /// Keep the source's owners (COPY --from an image or stage). Also
    /// implied by a [`TreeKind::Image`] tree.
    pub preserve_ownership_from_source: bool,
}

/// What a copy wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CopyStats {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub hardlinks: u64,
    pub bytes: u64,
}

/// Copies `sources` (as written, relative to `tree`) to `dest` in `rootfs`.
pub fn copy_into(
    rootfs: &Rootfs,
    tree: &SourceTree,
    sources: &[String],
    dest: &str,
    opts: &CopyOptions,
) -> Result<CopyStats, CopyError> {
    let plan = plan(rootfs, tree, sources, dest, opts)?;
    let exclude = exclude_matcher(opts)?;
    let mut writer = Writer::new(rootfs, tree, opts);
    for (m, target) in &plan.items {
        writer.copy_match(tree, m, target, &exclude)?;
    }
    writer.finish()
}

/// `COPY <<NAME dest` (a heredoc): writes `data` as a file called `name`
/// into `dest` (or as `dest` itself when it names a file), mode 0664 as
/// BuildKit's inline documents unless `--chmod`, owner 0:0 or `--chown`.
pub fn copy_inline(
    rootfs: &Rootfs,
    name: &str,
    data: impl Read,
    dest: &str,
    opts: &CopyOptions,
) -> Result<CopyStats, CopyError> {
    let (dest_abs, dir_syntax) = dest_path(dest, &opts.workdir);
    let into_dir = dir_syntax || rootfs.metadata(&dest_abs)?.is_some_and(|m| m.is_dir());
    let path = if into_dir {
        // The name is a label, never a path: only its last component counts.
        dest_abs.join(clean_image_path(name).file_name().unwrap_or_default())
    } else {
        dest_abs
    };
    let tree = SourceTree::image(PathBuf::new(), "inline document");
    let mut writer = Writer::new(rootfs, &tree, opts);
    if let Some(parent) = path.parent() {
        rootfs.create_dir_all(parent, writer.new_dir())?;
    }
    if rootfs.symlink_metadata(&path)?.is_some_and(|m| m.is_dir()) {
        return Err(CopyError::OverDirectory {
            what: "file",
            src: PathBuf::from(name),
            dest: path,
        });
    }
    writer.write_file(
        data,
        &path,
        opts.chmod.unwrap_or(0o664),
        opts.chown.unwrap_or((0, 0)),
    )?;
    writer.finish()
}

/// Where each match goes.
pub(crate) struct Plan {
    pub items: Vec<(SourceMatch, Target)>,
}

/// The destination of one match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// A file (or symlink, special file) written at this image path.
    File(PathBuf),
    /// A directory whose contents go into this image path.
    DirContents(PathBuf),
}

pub(crate) fn exclude_matcher(opts: &CopyOptions) -> Result<IgnoreMatcher, CopyError> {
    IgnoreMatcher::from_patterns(&opts.exclude, "--exclude").map_err(CopyError::Exclude)
}

/// `dest` made absolute against WORKDIR and cleaned, and whether it names a directory.
pub fn dest_path(dest: &str, workdir: &Path) -> (PathBuf, bool) {
    let dir_syntax = dest.is_empty()
        || dest.ends_with('/')
        || dest == "."
        || dest == ".."
        || dest.ends_with("/.")
        || dest.ends_with("/..");
    let workdir = if workdir.as_os_str().is_empty() {
        Path::new("/")
    } else {
        workdir
    };
    let joined = if dest.starts_with('/') {
        PathBuf::from(dest)
    } else {
        clean_image_path(workdir).join(dest)
    };
    (clean_image_path(joined), dir_syntax)
}

/// The matches of one source after `--exclude`.
pub(crate) struct Expanded {
    pub matches: Vec<SourceMatch>,
    /// Whether anything matched before `--exclude` took some away: an
    /// instruction whose matches were all excluded copies nothing, quietly.
    pub matched_before_exclude: bool,
}

/// Expands one source; `--exclude` also filters a wildcard's matches (the
/// reference's `COPY --exclude=*.txt hom* /mydir/`), tried on the match's
/// name and on its path in the tree. A source named without wildcards is
/// never excluded itself: the user asked for it.
pub(crate) fn expand_source(
    tree: &SourceTree,
    source: &str,
    exclude: &IgnoreMatcher,
) -> Result<Expanded, CopyError> {
    let mut matches = tree.expand(source)?;
    let matched_before_exclude = !matches.is_empty();
    if !exclude.is_empty() && super::glob::has_magic(source) {
        matches.retain(|m| {
            let is_dir = m.meta.is_dir();
            let logical = m.logical.to_string_lossy();
            let name = m
                .logical
                .file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default();
            !(exclude.is_excluded(&name, is_dir) || exclude.is_excluded(&logical, is_dir))
        });
    }
    Ok(Expanded {
        matches,
        matched_before_exclude,
    })
}

pub(crate) fn plan(
    rootfs: &Rootfs,
    tree: &SourceTree,
    sources: &[String],
    dest: &str,
    opts: &CopyOptions,
) -> Result<Plan, CopyError> {
    if sources.is_empty() {
        return Err(CopyError::NoSources);
    }
    let (dest_abs, dir_syntax) = dest_path(dest, &opts.workdir);
    if sources.len() > 1 && !dir_syntax {
        return Err(CopyError::DestNotDir {
            dest: dest.to_string(),
        });
    }
    let exclude = exclude_matcher(opts)?;
    let mut matches = Vec::new();
    let mut matched_any = false;
    for s in sources {
        let found = expand_source(tree, s, &exclude)?;
        matched_any |= found.matched_before_exclude;
        matches.extend(found.matches);
    }
    if !matched_any {
        return Err(CopyError::NothingMatched {
            source_path: sources.join(" "),
            tree: tree.label().to_string(),
        });
    }
    let dest_is_dir = rootfs.metadata(&dest_abs)?.is_some_and(|m| m.is_dir());
    if matches.len() > 1 && !dir_syntax && !dest_is_dir {
        return Err(CopyError::DestNotDir {
            dest: dest.to_string(),
        });
    }
    let into_dir = dir_syntax || dest_is_dir || matches.len() > 1;
    let items = matches
        .into_iter()
        .map(|m| {
            let target = if opts.parents {
                let kept: PathBuf = m.logical.components().skip(m.parents_skip).collect();
                let path = dest_abs.join(kept);
                if m.meta.is_dir() {
                    Target::DirContents(path)
                } else {
                    Target::File(path)
                }
            } else if m.meta.is_dir() {
                Target::DirContents(dest_abs.clone())
            } else if into_dir {
                let name = m.logical.file_name().map(PathBuf::from).unwrap_or_default();
                Target::File(dest_abs.join(name))
            } else {
                Target::File(dest_abs.clone())
            };
            (m, target)
        })
        .collect();
    Ok(Plan { items })
}

/// Writes entries into a rootfs with one instruction's ownership, mode and
/// hardlink rules; shared by COPY and ADD.
pub(crate) struct Writer<'a> {
    rootfs: &'a Rootfs,
    chown: Option<(u32, u32)>,
    chmod: Option<u32>,
    preserve: bool,
    /// Source (dev, inode) → where it was first written, for hard links.
    links: HashMap<(u64, u64), PathBuf>,
    /// Directory mtimes are set last: writing children changes them.
    dir_times: Vec<(PathBuf, i64, u32)>,
    stats: CopyStats,
}

impl<'a> Writer<'a> {
    pub(crate) fn new(rootfs: &'a Rootfs, tree: &SourceTree, opts: &CopyOptions) -> Writer<'a> {
        Writer {
            rootfs,
            chown: opts.chown,
            chmod: opts.chmod,
            preserve: opts.preserve_ownership_from_source || tree.kind() == TreeKind::Image,
            links: HashMap::new(),
            dir_times: Vec::new(),
            stats: CopyStats::default(),
        }
    }

    /// Owner for directories the copy has to invent (parents of `dest`).
    pub(crate) fn new_dir(&self) -> NewDir {
        NewDir {
            mode: 0o755,
            owner: Some(self.chown.unwrap_or((0, 0))),
        }
    }

    fn owner_for(&self, meta: &fs::Metadata) -> (u32, u32) {
        match self.chown {
            Some(ids) => ids,
            None if self.preserve => (meta.uid(), meta.gid()),
            None => (0, 0),
        }
    }

    fn mode_for(&self, meta: &fs::Metadata) -> u32 {
        self.chmod.unwrap_or(meta.mode() & 0o7777)
    }

    pub(crate) fn copy_match(
        &mut self,
        tree: &SourceTree,
        m: &SourceMatch,
        target: &Target,
        exclude: &IgnoreMatcher,
    ) -> Result<(), CopyError> {
        match target {
            Target::File(path) => {
                if let Some(parent) = path.parent() {
                    self.rootfs.create_dir_all(parent, self.new_dir())?;
                }
                self.copy_entry(&m.host, &m.meta, path)
            }
            Target::DirContents(dir) => {
                // As BuildKit's MkdirAll: a destination the copy creates is
                // 0755 and owned like every created parent; one that exists
                // keeps its metadata. Neither takes the source dir's.
                self.rootfs.create_dir_all(dir, self.new_dir())?;
                for entry in tree.walk(m, exclude)? {
                    self.copy_entry(&entry.host, &entry.meta, &dir.join(&entry.rel))?;
                }
                Ok(())
            }
        }
    }

    fn apply_dir_meta(
        &mut self,
        host: &Path,
        path: &Path,
        meta: &fs::Metadata,
    ) -> Result<(), CopyError> {
        let (uid, gid) = self.owner_for(meta);
        let entry = self.rootfs.entry(path)?;
        entry.set_owner(uid, gid)?;
        entry.set_mode(self.mode_for(meta))?;
        copy_xattrs(host, entry.host());
        self.dir_times
            .push((path.to_path_buf(), meta.mtime(), meta.mtime_nsec() as u32));
        Ok(())
    }

    /// Copies one entry (`meta` is its `lstat`) to `path` in the image.
    pub(crate) fn copy_entry(
        &mut self,
        host: &Path,
        meta: &fs::Metadata,
        path: &Path,
    ) -> Result<(), CopyError> {
        let ft = meta.file_type();
        if ft.is_dir() {
            match self.rootfs.symlink_metadata(path)? {
                Some(m) if m.is_dir() => {}
                // `/bin -> usr/bin` in the image: write through it, as
                // docker does, and leave the link and its target alone.
                Some(m)
                    if m.file_type().is_symlink()
                        && self.rootfs.metadata(path)?.is_some_and(|t| t.is_dir()) =>
                {
                    self.stats.dirs += 1;
                    return Ok(());
                }
                Some(_) => {
                    return Err(CopyError::DirOverNonDir {
                        src: host.to_path_buf(),
                        dest: path.to_path_buf(),
                    })
                }
                None => {}
            }
            self.rootfs.create_dir_all(path, self.new_dir())?;
            self.apply_dir_meta(host, path, meta)?;
            self.stats.dirs += 1;
            return Ok(());
        }
        // One resolution for every operation on this entry.
        let entry = self.rootfs.entry(path)?;
        if entry.metadata()?.is_some_and(|m| m.is_dir()) {
            return Err(CopyError::OverDirectory {
                what: if ft.is_symlink() { "symlink" } else { "file" },
                src: host.to_path_buf(),
                dest: path.to_path_buf(),
            });
        }
        if meta.nlink() > 1 {
            if let Some(first) = self.links.get(&(meta.dev(), meta.ino())) {
                entry.hard_link_to(&self.rootfs.entry(first)?)?;
                self.stats.hardlinks += 1;
                return Ok(());
            }
            self.links
                .insert((meta.dev(), meta.ino()), path.to_path_buf());
        }
        let (uid, gid) = self.owner_for(meta);
        if ft.is_symlink() {
            let target = fs::read_link(host).map_err(|source| CopyError::Io {
                op: "reading symlink",
                path: host.to_path_buf(),
                source,
            })?;
            entry.symlink(&target)?;
            entry.set_owner(uid, gid)?;
            self.stats.symlinks += 1;
        } else if ft.is_file() {
            let src = open_nofollow(host)?;
            self.write_file_at(&entry, src, self.mode_for(meta), (uid, gid))?;
        } else if ft.is_fifo() || ft.is_char_device() || ft.is_block_device() {
            let sflag = if ft.is_fifo() {
                SFlag::S_IFIFO
            } else if ft.is_char_device() {
                SFlag::S_IFCHR
            } else {
                SFlag::S_IFBLK
            };
            if !make_special(&entry, sflag, meta.rdev())? {
                return Ok(());
            }
            entry.set_owner(uid, gid)?;
            entry.set_mode(self.mode_for(meta))?;
            self.stats.files += 1;
        } else {
            // Sockets belong to a running process, not to an image.
            log::warn!("skipping socket {host:?}");
            return Ok(());
        }
        entry.set_mtime(meta.mtime(), meta.mtime_nsec() as u32)?;
        copy_xattrs(host, entry.host());
        Ok(())
    }

    /// Streams `src` into a new file at `path` with `mode` and owner; the
    /// caller sets the mtime.
    pub(crate) fn write_file(
        &mut self,
        src: impl Read,
        path: &Path,
        mode: u32,
        owner: (u32, u32),
    ) -> Result<u64, CopyError> {
        let entry = self.rootfs.entry(path)?;
        self.write_file_at(&entry, src, mode, owner)
    }

    pub(crate) fn write_file_at(
        &mut self,
        entry: &Entry,
        mut src: impl Read,
        mode: u32,
        (uid, gid): (u32, u32),
    ) -> Result<u64, CopyError> {
        let mut out = entry.create_file(mode)?;
        let n = io::copy(&mut src, &mut out).map_err(|source| CopyError::Io {
            op: "writing",
            path: entry.path().to_path_buf(),
            source,
        })?;
        // chown clears setuid/setgid: set the mode again after it, through
        // the open file (no path lookup).
        std::os::unix::fs::fchown(&out, Some(uid), Some(gid)).map_err(|source| {
            if source.raw_os_error() == Some(libc::EINVAL) {
                CopyError::Rootfs(RootfsError::UnmappedId {
                    path: entry.path().to_path_buf(),
                    uid,
                    gid,
                })
            } else {
                CopyError::Io {
                    op: "changing owner of",
                    path: entry.path().to_path_buf(),
                    source,
                }
            }
        })?;
        out.set_permissions(fs::Permissions::from_mode(mode & 0o7777))
            .map_err(|source| CopyError::Io {
                op: "changing mode of",
                path: entry.path().to_path_buf(),
                source,
            })?;
        self.stats.files += 1;
        self.stats.bytes += n;
        Ok(n)
    }

    pub(crate) fn finish(self) -> Result<CopyStats, CopyError> {
        for (path, secs, nanos) in self.dir_times.iter().rev() {
            self.rootfs.set_mtime(path, *secs, *nanos)?;
        }
        Ok(self.stats)
    }
}

/// Makes a fifo or device node at `entry` (replacing a non-directory).
/// `Ok(false)` when a device cannot be made here — mknod is refused in a
/// user namespace — after a warning, as docker skips them rootless.
pub(crate) fn make_special(entry: &Entry, sflag: SFlag, rdev: u64) -> Result<bool, CopyError> {
    entry.remove()?;
    match mknod(entry.host(), sflag, Mode::from_bits_truncate(0o600), rdev) {
        Ok(()) => Ok(true),
        Err(e) if sflag != SFlag::S_IFIFO && matches!(e, Errno::EPERM | Errno::EACCES) => {
            log::warn!(
                "skipping device {:?}: {e} (device nodes need real root)",
                entry.path()
            );
            Ok(false)
        }
        Err(e) => Err(CopyError::Io {
            op: "creating special file",
            path: entry.path().to_path_buf(),
            source: e.into(),
        }),
    }
}

fn open_nofollow(host: &Path) -> Result<File, CopyError> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(host)
        .map_err(|source| CopyError::Io {
            op: "opening",
            path: host.to_path_buf(),
            source,
        })
}

/// Copies extended attributes except overlay's own (they describe the
/// source's layering, not the file). Failures only warn: an unprivileged
/// writer cannot set `trusted.*`, and docker drops what it cannot set.
fn copy_xattrs(src: &Path, dst: &Path) {
    let Ok(names) = xattr::list(src) else { return };
    for name in names {
        let n = name.to_string_lossy();
        if n.starts_with("trusted.overlay.") || n.starts_with("user.overlay.") {
            continue;
        }
        if let Ok(Some(value)) = xattr::get(src, &name) {
            if let Err(e) = xattr::set(dst, &name, &value) {
                log::warn!("copying xattr {n} to {dst:?}: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dest_paths() {
        let wd = Path::new("/app");
        assert_eq!(dest_path("x", wd), (PathBuf::from("/app/x"), false));
        assert_eq!(dest_path("x/", wd), (PathBuf::from("/app/x"), true));
        assert_eq!(dest_path(".", wd), (PathBuf::from("/app"), true));
        assert_eq!(dest_path("/abs", wd), (PathBuf::from("/abs"), false));
        assert_eq!(dest_path("../../../x", wd), (PathBuf::from("/x"), false));
        assert_eq!(dest_path("d", Path::new("")), (PathBuf::from("/d"), false));
    }
}
