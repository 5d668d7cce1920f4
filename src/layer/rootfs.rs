//! An escape-proof handle on a root filesystem directory.
//!
//! Every path written into an image rootfs (COPY, ADD, WORKDIR, extraction)
//! goes through [`Rootfs`]: a path *in the image* is resolved one component
//! at a time inside the root, following symlinks the way the kernel would if
//! the root were `/` — absolute targets restart at the root, `..` stops at
//! the root, more than 255 links is a loop — as `filepath-securejoin` and
//! `safe_path::scoped_join` do. So `/etc -> /`, `a -> ../../..` or an
//! absolute symlink in a hostile image can never lead a write outside.
//!
//! The final component of a write is never followed: `create_file`,
//! `symlink`, `hard_link`, `remove`, `set_owner`, `set_mode` and `set_mtime`
//! act on the entry itself (with `O_NOFOLLOW` / `AT_SYMLINK_NOFOLLOW`), its
//! parent resolved inside the root. Resolution happens in user space, so the
//! handle assumes nothing else rewrites the tree while a step writes to it
//! (true for a build: the rootfs is the step's own overlay view).

use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use nix::sys::stat::{utimensat, UtimensatFlags};
use nix::sys::time::TimeSpec;

/// More links than this while resolving one path is a loop (Linux's limit is 40;
/// securejoin uses 255).
pub const MAX_SYMLINKS: u32 = 255;

/// Why an operation inside a rootfs failed; `path` is the path in the image.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error(
        "resolving {path:?} in the rootfs: more than {MAX_SYMLINKS} symlinks (a symlink loop?)"
    )]
    TooManySymlinks { path: PathBuf },
    #[error("{op} {path:?} in the rootfs: the root directory itself cannot be {op_past}")]
    IsRoot {
        op: &'static str,
        op_past: &'static str,
        path: PathBuf,
    },
    #[error("changing owner of {path:?} to {uid}:{gid}: the id is not mapped in this user namespace; add a range for your user to /etc/subuid and /etc/subgid (e.g. `usermod --add-subuids 100000-165535 --add-subgids 100000-165535 $USER`) or use ids 0 only")]
    UnmappedId { path: PathBuf, uid: u32, gid: u32 },
    #[error("{op} {path:?} in the rootfs (host path {host:?}): {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        host: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl RootfsError {
    /// The underlying I/O error kind, when there is one (callers branch on
    /// `NotFound` / `AlreadyExists`).
    pub fn io_kind(&self) -> Option<io::ErrorKind> {
        match self {
            RootfsError::Io { source, .. } => Some(source.kind()),
            _ => None,
        }
    }
}

pub type Result<T, E = RootfsError> = std::result::Result<T, E>;

/// Ownership and mode for directories a write has to create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewDir {
    pub mode: u32,
    /// `None` leaves the owner the process gives it (the caller's id).
    pub owner: Option<(u32, u32)>,
}

impl Default for NewDir {
    fn default() -> NewDir {
        NewDir {
            mode: 0o755,
            owner: None,
        }
    }
}

/// A directory treated as `/` for every path resolved through it.
#[derive(Debug, Clone)]
pub struct Rootfs {
    root: PathBuf,
}

impl Rootfs {
    /// A handle on `root`, which is trusted (it may itself be reached through symlinks).
    pub fn new(root: PathBuf) -> Rootfs {
        Rootfs { root }
    }

    /// The host directory that is `/` in the image.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The host path of `path_in_image`, every symlink (including the last
    /// component) followed inside the root. Missing components are appended
    /// as they are, so the result can name a file about to be created.
    pub fn resolve(&self, path_in_image: impl AsRef<Path>) -> Result<PathBuf> {
        let inner = self.walk(path_in_image.as_ref(), true, None)?;
        Ok(self.host(&inner))
    }

    /// The host path of `path_in_image` with its parent resolved inside the
    /// root but the last component not followed: the entry itself.
    pub fn resolve_nofollow(&self, path_in_image: impl AsRef<Path>) -> Result<PathBuf> {
        let inner = self.walk(path_in_image.as_ref(), false, None)?;
        Ok(self.host(&inner))
    }

    /// `path_in_image` resolved (following symlinks) to a clean path *in the
    /// image*, e.g. `/etc/x` for `/etc2/x` when `/etc2 -> etc`.
    pub fn resolve_in_image(&self, path_in_image: impl AsRef<Path>) -> Result<PathBuf> {
        let inner = self.walk(path_in_image.as_ref(), true, None)?;
        Ok(Path::new("/").join(inner))
    }

    /// Creates `path_in_image` and any missing parent, each new directory
    /// with `new.mode` and `new.owner`; existing ones are left untouched.
    /// Symlinks on the way are followed inside the root. Returns the host path.
    pub fn create_dir_all(&self, path_in_image: impl AsRef<Path>, new: NewDir) -> Result<PathBuf> {
        let path = path_in_image.as_ref();
        let inner = self.walk(path, true, Some(new))?;
        let host = self.host(&inner);
        let meta =
            fs::metadata(&host).map_err(|e| self.io("creating directory", path, &host, e))?;
        if !meta.is_dir() {
            return Err(self.io(
                "creating directory",
                path,
                &host,
                io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "exists and is not a directory",
                ),
            ));
        }
        Ok(host)
    }

    /// The entry at `path_in_image` itself — parent resolved inside the
    /// root, last component not followed — resolved once for several
    /// operations (a copy sets owner, mode and mtime of each file).
    pub fn entry(&self, path_in_image: impl AsRef<Path>) -> Result<Entry<'_>> {
        let path = path_in_image.as_ref();
        let inner = self.walk(path, false, None)?;
        Ok(Entry {
            rootfs: self,
            is_root: inner.as_os_str().is_empty(),
            host: self.host(&inner),
            path: path.to_path_buf(),
        })
    }

    /// Creates (or replaces) a regular file at `path_in_image` with exactly
    /// `mode` (no umask) and returns it open for writing. An existing
    /// non-directory entry, a symlink included, is replaced rather than
    /// written through; an existing directory is an error.
    pub fn create_file(&self, path_in_image: impl AsRef<Path>, mode: u32) -> Result<File> {
        self.entry(path_in_image)?.create_file(mode)
    }

    /// Creates a symlink at `path_in_image` pointing to `target` (stored
    /// verbatim: it is resolved inside the root whenever it is followed).
    /// Replaces an existing non-directory entry.
    pub fn symlink(&self, path_in_image: impl AsRef<Path>, target: impl AsRef<Path>) -> Result<()> {
        self.entry(path_in_image)?.symlink(target)
    }

    /// Makes `link_in_image` a hard link to the entry `existing_in_image`
    /// (itself, not what it points to if it is a symlink). Both stay inside
    /// the root. Replaces an existing non-directory entry at the link path.
    pub fn hard_link(
        &self,
        link_in_image: impl AsRef<Path>,
        existing_in_image: impl AsRef<Path>,
    ) -> Result<()> {
        let existing = self.entry(existing_in_image)?;
        self.entry(link_in_image)?.hard_link_to(&existing)
    }

    /// Sets the owner of the entry itself (`lchown`).
    pub fn set_owner(&self, path_in_image: impl AsRef<Path>, uid: u32, gid: u32) -> Result<()> {
        self.entry(path_in_image)?.set_owner(uid, gid)
    }

    /// Sets permission bits (including setuid/setgid/sticky). Symlinks have
    /// no mode of their own on Linux, so for a symlink this does nothing.
    pub fn set_mode(&self, path_in_image: impl AsRef<Path>, mode: u32) -> Result<()> {
        self.entry(path_in_image)?.set_mode(mode)
    }

    /// Sets access and modification time of the entry itself (symlinks too).
    pub fn set_mtime(&self, path_in_image: impl AsRef<Path>, secs: i64, nanos: u32) -> Result<()> {
        self.entry(path_in_image)?.set_mtime(secs, nanos)
    }

    /// Removes the entry at `path_in_image` (a directory with everything in
    /// it; a symlink itself, never its target). A missing entry is not an error.
    pub fn remove(&self, path_in_image: impl AsRef<Path>) -> Result<()> {
        self.entry(path_in_image)?.remove()
    }

    /// `lstat` of the entry itself; `Ok(None)` when it does not exist.
    pub fn symlink_metadata(
        &self,
        path_in_image: impl AsRef<Path>,
    ) -> Result<Option<fs::Metadata>> {
        self.entry(path_in_image)?.metadata()
    }

    /// `stat` following symlinks inside the root; `Ok(None)` when missing.
    pub fn metadata(&self, path_in_image: impl AsRef<Path>) -> Result<Option<fs::Metadata>> {
        let path = path_in_image.as_ref();
        let host = self.resolve(path)?;
        match fs::symlink_metadata(&host) {
            Ok(m) => Ok(Some(m)),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(self.io("reading metadata of", path, &host, e)),
        }
    }

    /// Opens a file for reading, following symlinks inside the root.
    pub fn open(&self, path_in_image: impl AsRef<Path>) -> Result<File> {
        let path = path_in_image.as_ref();
        let host = self.resolve(path)?;
        OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&host)
            .map_err(|e| self.io("opening", path, &host, e))
    }

    /// Reads a symlink's target as stored.
    pub fn read_link(&self, path_in_image: impl AsRef<Path>) -> Result<PathBuf> {
        let path = path_in_image.as_ref();
        let host = self.resolve_nofollow(path)?;
        fs::read_link(&host).map_err(|e| self.io("reading symlink", path, &host, e))
    }

    fn host(&self, inner: &Path) -> PathBuf {
        if inner.as_os_str().is_empty() {
            self.root.clone()
        } else {
            self.root.join(inner)
        }
    }

    fn io(&self, op: &'static str, path: &Path, host: &Path, source: io::Error) -> RootfsError {
        RootfsError::Io {
            op,
            path: path.to_path_buf(),
            host: host.to_path_buf(),
            source,
        }
    }

    /// Resolves `path` to a clean relative path under the root (empty = the
    /// root). `follow_last` follows a symlink in the last component;
    /// `create` makes every missing directory on the way.
    fn walk(&self, path: &Path, follow_last: bool, create: Option<NewDir>) -> Result<PathBuf> {
        // Components still to visit, front = next. A symlink's target is
        // pushed in front of the rest.
        let mut pending: Vec<OsString> = Vec::new();
        push_front(&mut pending, path);
        let mut resolved: Vec<OsString> = Vec::new();
        let mut links = 0u32;
        while let Some(name) = pending.pop() {
            if name == ".." {
                resolved.pop();
                continue;
            }
            let mut candidate = self.root.clone();
            candidate.extend(resolved.iter());
            candidate.push(&name);
            let is_last = pending.is_empty();
            match fs::symlink_metadata(&candidate) {
                Ok(meta) if meta.file_type().is_symlink() && (follow_last || !is_last) => {
                    links += 1;
                    if links > MAX_SYMLINKS {
                        return Err(RootfsError::TooManySymlinks {
                            path: path.to_path_buf(),
                        });
                    }
                    let target = fs::read_link(&candidate)
                        .map_err(|e| self.io("reading symlink", path, &candidate, e))?;
                    if target.is_absolute() {
                        resolved.clear();
                    }
                    push_front(&mut pending, &target);
                }
                Ok(_) => resolved.push(name),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    if let Some(new) = create {
                        self.mkdir(path, &candidate, new)?;
                    }
                    resolved.push(name);
                }
                // ENOTDIR and friends: let the real operation report it.
                Err(_) => resolved.push(name),
            }
        }
        Ok(resolved.iter().collect())
    }

    fn mkdir(&self, path: &Path, host: &Path, new: NewDir) -> Result<()> {
        match fs::DirBuilder::new().mode(new.mode & 0o7777).create(host) {
            Ok(()) => {}
            // Another writer made it between our lstat and mkdir: fine.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
            Err(e) => return Err(self.io("creating directory", path, host, e)),
        }
        fs::set_permissions(host, fs::Permissions::from_mode(new.mode & 0o7777))
            .map_err(|e| self.io("setting mode of", path, host, e))?;
        if let Some((uid, gid)) = new.owner {
            lchown(path, host, uid, gid)?;
        }
        Ok(())
    }
}

/// One entry of a [`Rootfs`], its parent already resolved: every operation
/// acts on the entry itself (never following it if it is a symlink). Valid
/// while nothing replaces one of its parent directories.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    rootfs: &'a Rootfs,
    path: PathBuf,
    host: PathBuf,
    is_root: bool,
}

impl Entry<'_> {
    /// The path in the image, as given.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the entry is on the host.
    pub fn host(&self) -> &Path {
        &self.host
    }

    fn io(&self, op: &'static str, source: io::Error) -> RootfsError {
        self.rootfs.io(op, &self.path, &self.host, source)
    }

    fn not_root(&self, op: &'static str) -> Result<()> {
        if self.is_root {
            return Err(RootfsError::IsRoot {
                op,
                op_past: "replaced",
                path: self.path.clone(),
            });
        }
        Ok(())
    }

    /// `lstat`; `Ok(None)` when it does not exist.
    pub fn metadata(&self) -> Result<Option<fs::Metadata>> {
        match fs::symlink_metadata(&self.host) {
            Ok(m) => Ok(Some(m)),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(self.io("reading metadata of", e)),
        }
    }

    fn remove_non_dir(&self, op: &'static str) -> Result<()> {
        self.not_root(op)?;
        match fs::symlink_metadata(&self.host) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.io(op, e)),
            Ok(m) if m.is_dir() => Err(self.io(op, io::Error::from_raw_os_error(libc::EISDIR))),
            Ok(_) => fs::remove_file(&self.host).map_err(|e| self.io(op, e)),
        }
    }

    /// See [`Rootfs::create_file`].
    pub fn create_file(&self, mode: u32) -> Result<File> {
        self.remove_non_dir("creating file")?;
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode & 0o7777)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&self.host)
            .map_err(|e| self.io("creating file", e))?;
        file.set_permissions(fs::Permissions::from_mode(mode & 0o7777))
            .map_err(|e| self.io("setting mode of", e))?;
        Ok(file)
    }

    /// See [`Rootfs::symlink`].
    pub fn symlink(&self, target: impl AsRef<Path>) -> Result<()> {
        self.remove_non_dir("creating symlink")?;
        std::os::unix::fs::symlink(target.as_ref(), &self.host)
            .map_err(|e| self.io("creating symlink", e))
    }

    /// Makes this entry a hard link to `existing` (of the same rootfs).
    pub fn hard_link_to(&self, existing: &Entry) -> Result<()> {
        if self.host == existing.host {
            return Ok(());
        }
        self.remove_non_dir("creating hard link")?;
        nix::unistd::linkat(
            None,
            existing.host.as_path(),
            None,
            self.host.as_path(),
            // No AT_SYMLINK_FOLLOW: link the entry itself.
            nix::fcntl::AtFlags::empty(),
        )
        .map_err(|e| self.io("creating hard link", io::Error::from(e)))
    }

    /// See [`Rootfs::set_owner`].
    pub fn set_owner(&self, uid: u32, gid: u32) -> Result<()> {
        lchown(&self.path, &self.host, uid, gid)
    }

    /// See [`Rootfs::set_mode`].
    pub fn set_mode(&self, mode: u32) -> Result<()> {
        let meta = fs::symlink_metadata(&self.host).map_err(|e| self.io("changing mode of", e))?;
        if meta.file_type().is_symlink() {
            return Ok(());
        }
        fs::set_permissions(&self.host, fs::Permissions::from_mode(mode & 0o7777))
            .map_err(|e| self.io("changing mode of", e))
    }

    /// See [`Rootfs::set_mtime`].
    pub fn set_mtime(&self, secs: i64, nanos: u32) -> Result<()> {
        let ts = TimeSpec::new(secs, i64::from(nanos.min(999_999_999)));
        utimensat(
            None,
            self.host.as_path(),
            &ts,
            &ts,
            UtimensatFlags::NoFollowSymlink,
        )
        .map_err(|e| self.io("setting mtime of", io::Error::from(e)))
    }

    /// See [`Rootfs::remove`].
    pub fn remove(&self) -> Result<()> {
        if self.is_root {
            return Err(RootfsError::IsRoot {
                op: "removing",
                op_past: "removed",
                path: self.path.clone(),
            });
        }
        match fs::symlink_metadata(&self.host) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.io("removing", e)),
            // remove_dir_all never follows symlinks inside the tree.
            Ok(m) if m.is_dir() => {
                fs::remove_dir_all(&self.host).map_err(|e| self.io("removing", e))
            }
            Ok(_) => fs::remove_file(&self.host).map_err(|e| self.io("removing", e)),
        }
    }
}

/// `lchown`, with EINVAL — the id has no mapping in this user namespace —
/// turned into an error that says so; the bare errno helps nobody.
fn lchown(path: &Path, host: &Path, uid: u32, gid: u32) -> Result<()> {
    std::os::unix::fs::lchown(host, Some(uid), Some(gid)).map_err(|source| {
        if source.raw_os_error() == Some(libc::EINVAL) {
            RootfsError::UnmappedId {
                path: path.to_path_buf(),
                uid,
                gid,
            }
        } else {
            RootfsError::Io {
                op: "changing owner of",
                path: path.to_path_buf(),
                host: host.to_path_buf(),
                source,
            }
        }
    })
}

/// Pushes the components of `path` so that its first component is popped
/// next. Root and `.` components vanish (the caller clears for absolute).
fn push_front(pending: &mut Vec<OsString>, path: &Path) {
    let names: Vec<&OsStr> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n),
            Component::ParentDir => Some(OsStr::new("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect();
    pending.extend(names.into_iter().rev().map(OsStr::to_os_string));
}

/// Cleans a path in the image lexically (no symlinks): absolute, no `.`,
/// `..` clamped at `/`. `"a/../../b"` → `"/b"`.
pub fn clean_image_path(path: impl AsRef<Path>) -> PathBuf {
    let mut out: Vec<&OsStr> = Vec::new();
    for c in path.as_ref().components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    let mut p = PathBuf::from("/");
    p.extend(out);
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::unix::fs::{symlink, MetadataExt};

    fn setup() -> (tempfile::TempDir, Rootfs, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        fs::create_dir(&root).unwrap();
        (dir, Rootfs::new(root.clone()), root)
    }

    #[test]
    fn plain_paths_resolve_under_root() {
        let (_d, fs_, root) = setup();
        assert_eq!(fs_.resolve("/").unwrap(), root);
        assert_eq!(fs_.resolve("").unwrap(), root);
        assert_eq!(fs_.resolve("/a/b").unwrap(), root.join("a/b"));
        assert_eq!(fs_.resolve("a/./b/../c").unwrap(), root.join("a/c"));
        assert_eq!(
            fs_.resolve("../../../etc/passwd").unwrap(),
            root.join("etc/passwd")
        );
    }

    #[test]
    fn absolute_symlink_to_root_is_rerooted() {
        let (d, fs_, root) = setup();
        symlink("/", root.join("etc")).unwrap();
        assert_eq!(fs_.resolve("/etc/passwd").unwrap(), root.join("passwd"));
        let mut f = fs_.create_file("/etc/shadow", 0o600).unwrap();
        f.write_all(b"x").unwrap();
        assert!(root.join("shadow").is_file());
        assert!(!d.path().join("shadow").exists());
        assert!(!Path::new("/shadow").exists());
    }

    #[test]
    fn relative_dotdot_symlinks_are_clamped() {
        let (d, fs_, root) = setup();
        fs::create_dir(root.join("x")).unwrap();
        symlink("../../../..", root.join("x/a")).unwrap();
        assert_eq!(fs_.resolve("/x/a/outside").unwrap(), root.join("outside"));
        fs_.create_dir_all("/x/a/made/deep", NewDir::default())
            .unwrap();
        assert!(root.join("made/deep").is_dir());
        assert!(!d.path().join("made").exists());
    }

    #[test]
    fn symlink_to_host_absolute_path_stays_inside() {
        let (d, fs_, root) = setup();
        let outside = d.path().join("outside");
        fs::create_dir(&outside).unwrap();
        symlink(&outside, root.join("evil")).unwrap();
        // The re-rooted target does not exist yet: writing into it fails...
        assert!(fs_.create_file("/evil/file", 0o644).is_err());
        // ...and creating it makes it inside the root.
        fs_.create_dir_all("/evil", NewDir::default()).unwrap();
        let mut f = fs_.create_file("/evil/file", 0o644).unwrap();
        f.write_all(b"x").unwrap();
        assert!(fs::read_dir(&outside).unwrap().next().is_none());
        assert!(root
            .join(outside.strip_prefix("/").unwrap())
            .join("file")
            .is_file());
    }

    #[test]
    fn symlink_loops_are_errors() {
        let (_d, fs_, root) = setup();
        symlink("b", root.join("a")).unwrap();
        symlink("a", root.join("b")).unwrap();
        assert!(matches!(
            fs_.resolve("/a/x"),
            Err(RootfsError::TooManySymlinks { .. })
        ));
        symlink("self/x", root.join("self")).unwrap();
        assert!(matches!(
            fs_.resolve("/self"),
            Err(RootfsError::TooManySymlinks { .. })
        ));
        // Not following the last component does not touch the loop.
        assert_eq!(fs_.resolve_nofollow("/a").unwrap(), root.join("a"));
    }

    #[test]
    fn create_file_replaces_a_symlink_instead_of_writing_through() {
        let (d, fs_, root) = setup();
        let victim = d.path().join("victim");
        fs::write(&victim, b"keep").unwrap();
        symlink(&victim, root.join("f")).unwrap();
        let mut f = fs_.create_file("/f", 0o640).unwrap();
        f.write_all(b"new").unwrap();
        drop(f);
        assert_eq!(fs::read(&victim).unwrap(), b"keep");
        let meta = fs::symlink_metadata(root.join("f")).unwrap();
        assert!(meta.is_file());
        assert_eq!(meta.mode() & 0o7777, 0o640);
    }

    #[test]
    fn create_file_sets_exact_mode_despite_umask() {
        let (_d, fs_, root) = setup();
        drop(fs_.create_file("/s", 0o4777).unwrap());
        assert_eq!(
            fs::metadata(root.join("s")).unwrap().mode() & 0o7777,
            0o4777
        );
    }

    #[test]
    fn create_dir_all_through_symlinked_parent() {
        let (_d, fs_, root) = setup();
        fs::create_dir(root.join("real")).unwrap();
        symlink("/real", root.join("link")).unwrap();
        let host = fs_
            .create_dir_all(
                "/link/a/b",
                NewDir {
                    mode: 0o700,
                    owner: Some((12, 34)),
                },
            )
            .unwrap();
        assert_eq!(host, root.join("real/a/b"));
        let m = fs::metadata(root.join("real/a")).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o700);
        if nix::unistd::geteuid().is_root() {
            assert_eq!((m.uid(), m.gid()), (12, 34));
        }
        // Existing dirs are left alone.
        assert_eq!(
            fs::metadata(root.join("real")).unwrap().mode() & 0o7777,
            0o755
        );
        assert_eq!(
            fs_.resolve_in_image("/link/a").unwrap(),
            Path::new("/real/a")
        );
    }

    #[test]
    fn create_dir_all_over_a_file_fails() {
        let (_d, fs_, root) = setup();
        fs::write(root.join("f"), b"").unwrap();
        let err = fs_.create_dir_all("/f", NewDir::default()).unwrap_err();
        assert!(err.to_string().contains("\"/f\""), "{err}");
        assert!(fs_.create_dir_all("/f/sub", NewDir::default()).is_err());
    }

    #[test]
    fn hard_link_and_symlink_stay_inside() {
        let (_d, fs_, root) = setup();
        fs::write(root.join("a"), b"data").unwrap();
        fs_.hard_link("/b", "/a").unwrap();
        assert_eq!(
            fs::metadata(root.join("a")).unwrap().ino(),
            fs::metadata(root.join("b")).unwrap().ino()
        );
        fs_.symlink("/s", "/etc/passwd").unwrap();
        assert_eq!(
            fs::read_link(root.join("s")).unwrap(),
            Path::new("/etc/passwd")
        );
        // A hard link to a symlink links the symlink itself.
        fs_.hard_link("/s2", "/s").unwrap();
        assert!(fs::symlink_metadata(root.join("s2"))
            .unwrap()
            .file_type()
            .is_symlink());
        // Linking to something outside via `..` is clamped to the root.
        fs::write(root.join("top"), b"t").unwrap();
        fs_.hard_link("/c", "/../../top").unwrap();
        assert_eq!(fs::read(root.join("c")).unwrap(), b"t");
    }

    #[test]
    fn owner_mode_mtime_act_on_the_entry_not_the_target() {
        let (d, fs_, root) = setup();
        let victim = d.path().join("victim");
        fs::write(&victim, b"").unwrap();
        fs::set_permissions(&victim, fs::Permissions::from_mode(0o644)).unwrap();
        symlink(&victim, root.join("l")).unwrap();
        fs_.set_mode("/l", 0o777).unwrap();
        fs_.set_mtime("/l", 1_000_000, 5).unwrap();
        fs_.set_owner("/l", 0, 0).unwrap();
        let vm = fs::metadata(&victim).unwrap();
        assert_eq!(vm.mode() & 0o7777, 0o644);
        assert_ne!(vm.mtime(), 1_000_000);
        assert_eq!(
            fs::symlink_metadata(root.join("l")).unwrap().mtime(),
            1_000_000
        );
        fs::write(root.join("f"), b"").unwrap();
        fs_.set_mtime("/f", 42, 7).unwrap();
        fs_.set_mode("/f", 0o2750).unwrap();
        let m = fs::metadata(root.join("f")).unwrap();
        assert_eq!(
            (m.mtime(), m.mtime_nsec(), m.mode() & 0o7777),
            (42, 7, 0o2750)
        );
    }

    #[test]
    fn remove_removes_link_not_target_and_never_root() {
        let (d, fs_, root) = setup();
        let outside = d.path().join("outside");
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("keep"), b"").unwrap();
        symlink(&outside, root.join("l")).unwrap();
        fs::create_dir_all(root.join("dir/sub")).unwrap();
        symlink(&outside, root.join("dir/sub/l")).unwrap();
        fs_.remove("/l").unwrap();
        fs_.remove("/dir").unwrap();
        fs_.remove("/missing").unwrap();
        assert!(outside.join("keep").exists());
        assert!(!root.join("dir").exists());
        assert!(matches!(fs_.remove("/"), Err(RootfsError::IsRoot { .. })));
        assert!(matches!(fs_.remove("/.."), Err(RootfsError::IsRoot { .. })));
    }

    #[test]
    fn open_follows_symlinks_inside_root() {
        let (d, fs_, root) = setup();
        fs::write(d.path().join("secret"), b"host").unwrap();
        fs::write(root.join("secret"), b"image").unwrap();
        symlink(d.path().join("secret"), root.join("abs")).unwrap();
        symlink("../../secret", root.join("rel")).unwrap();
        let mut s = String::new();
        fs_.open("/rel").unwrap().read_to_string(&mut s).unwrap();
        assert_eq!(s, "image");
        // `abs` points at <tmp>/secret, re-rooted: not in the image.
        let err = fs_.open("/abs").unwrap_err();
        assert_eq!(err.io_kind(), Some(io::ErrorKind::NotFound));
    }

    #[test]
    fn clean_image_path_clamps() {
        assert_eq!(clean_image_path("a/../../b"), Path::new("/b"));
        assert_eq!(clean_image_path("./x/./y/"), Path::new("/x/y"));
        assert_eq!(clean_image_path(""), Path::new("/"));
    }
}
