//! The diff of an overlay upper dir as a deterministic OCI layer tar.
//!
//! The upper dir *is* the change set of a step: one walk turns it into a
//! tar stream. Names are visited depth-first, each directory's entries in
//! byte order of their tar names, so the same tree always gives the same
//! bytes. Overlay's on-disk conventions become OCI's:
//!
//! - a 0/0 character device `NAME` (kernel overlay) or a regular file
//!   `.wh.NAME` (fuse-overlayfs fallback) → an empty file `.wh.NAME`;
//! - a directory marked opaque (`user.overlay.opaque=y`,
//!   `trusted.overlay.opaque=y`, `user.fuseoverlayfs.opaque=y`, or holding a
//!   `.wh..wh..opq` file) → the directory entry followed by
//!   `DIR/.wh..wh..opq`.
//!
//! The kernel makes every whiteout a hardlink of one shared inode, so
//! whiteouts are classified *before* hardlinks are tracked; otherwise the
//! second whiteout would become a hardlink to the first. Real hardlinks
//! become tar hardlink entries pointing at the first name walked.
//! Sockets are skipped (they cannot be archived). Owners are written as
//! found on disk: the caller runs inside the build's user namespace, where
//! on-disk ids are the image's ids.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::error::{LayerError, Result};
use super::tar_writer::{Entry, EntryKind, TarWriter};
use super::xattrs;
use crate::digest::{Digest, DigestWriter};

/// The OCI whiteout prefix.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// The OCI opaque-directory marker's file name.
pub const OPAQUE_MARKER: &str = ".wh..wh..opq";
/// Mode written on whiteout and opaque-marker entries (their own mode has no meaning).
pub(crate) const WHITEOUT_MODE: u32 = 0o600;

/// How the tar stream is made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TarOptions {
    /// `SOURCE_DATE_EPOCH`-style clamp: no entry's mtime is later than this
    /// (seconds since the epoch). `None` keeps mtimes as on disk.
    pub mtime_clamp: Option<i64>,
}

/// What a diff contained.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiffStats {
    /// Tar entries written (whiteouts and opaque markers included).
    pub entries: u64,
    pub whiteouts: u64,
    pub opaque_dirs: u64,
    pub hardlinks: u64,
    /// Unix sockets found and left out.
    pub sockets_skipped: u64,
    /// Size of the uncompressed tar stream in bytes.
    pub tar_size: u64,
}

/// Streams the diff of `dir` (an overlay upper dir, or any directory) as a
/// tar to `out`. Memory is bounded by the directory depth and width and the
/// number of multiply-linked files, never by file sizes.
pub fn write_diff_tar(dir: &Path, opts: &TarOptions, out: impl Write) -> Result<DiffStats> {
    let mut walk = Walk {
        opts: *opts,
        tar: TarWriter::new(out),
        links: HashMap::new(),
        stats: DiffStats::default(),
    };
    walk.run(dir)?;
    let tar_size = walk.tar.written() + 1024;
    walk.tar.finish().map_err(LayerError::Write)?;
    Ok(DiffStats {
        tar_size,
        ..walk.stats
    })
}

/// The diff ID (sha256 of the uncompressed tar) and tar size of `dir`, in one
/// hashing pass that writes nothing.
pub fn diff_id(dir: &Path, opts: &TarOptions) -> Result<(Digest, u64)> {
    let mut hashed = DigestWriter::new(io::sink());
    write_diff_tar(dir, opts, &mut hashed)?;
    let (_, digest, size) = hashed.finish();
    Ok((digest, size))
}

/// One directory being walked: its host path, its path in the tar (empty or
/// ending in `/`), and its remaining names in reverse byte order.
struct Frame {
    host: PathBuf,
    rel: Vec<u8>,
    names: Vec<OsString>,
}

struct Walk<W: Write> {
    opts: TarOptions,
    tar: TarWriter<W>,
    /// (dev, ino) of multiply-linked files → the tar path of their first name.
    links: HashMap<(u64, u64), Vec<u8>>,
    stats: DiffStats,
}

impl<W: Write> Walk<W> {
    fn run(&mut self, root: &Path) -> Result<()> {
        let meta = fs::symlink_metadata(root).map_err(|e| LayerError::io("lstat", root, e))?;
        if !meta.is_dir() {
            return Err(LayerError::io(
                "walking",
                root,
                io::Error::other("not a directory: a layer diff must be a directory"),
            ));
        }
        let mut stack = vec![frame(root.to_path_buf(), Vec::new())?];
        while let Some(top) = stack.last_mut() {
            let Some(name) = top.names.pop() else {
                stack.pop();
                continue;
            };
            let host = top.host.join(&name);
            let mut rel = top.rel.clone();
            rel.extend_from_slice(name.as_bytes());
            let parent_rel = top.rel.clone();
            if let Some(child) = self.entry(&host, &parent_rel, &name, rel)? {
                stack.push(child);
            }
        }
        Ok(())
    }

    /// Writes the entry for one name; returns a frame when it is a directory
    /// to descend into.
    fn entry(
        &mut self,
        host: &Path,
        parent_rel: &[u8],
        name: &OsString,
        mut rel: Vec<u8>,
    ) -> Result<Option<Frame>> {
        let name = name.as_bytes();
        if name == OPAQUE_MARKER.as_bytes() {
            // fuse-overlayfs' marker file: emitted right after its directory.
            return Ok(None);
        }
        let meta = fs::symlink_metadata(host).map_err(|e| LayerError::io("lstat", host, e))?;
        let ft = meta.file_type();
        let mtime = self.clamp(meta.mtime());
        let base = |path: Vec<u8>, kind: EntryKind, meta: &Metadata| Entry {
            path,
            kind,
            mode: meta.mode() & 0o7777,
            uid: meta.uid() as u64,
            gid: meta.gid() as u64,
            mtime,
            xattrs: Vec::new(),
        };

        // Whiteouts first: they share one inode, so they must never reach
        // the hardlink table.
        let kernel_whiteout = ft.is_char_device() && meta.rdev() == 0;
        let fuse_whiteout = !ft.is_dir() && name.starts_with(WHITEOUT_PREFIX.as_bytes());
        if kernel_whiteout || fuse_whiteout {
            let mut path = parent_rel.to_vec();
            if kernel_whiteout {
                path.extend_from_slice(WHITEOUT_PREFIX.as_bytes());
            }
            path.extend_from_slice(name);
            let mut e = base(path, EntryKind::Regular { size: 0 }, &meta);
            e.mode = WHITEOUT_MODE;
            self.header(&e)?;
            self.stats.whiteouts += 1;
            return Ok(None);
        }
        if ft.is_socket() {
            log::warn!(
                "{}: a socket cannot be stored in a layer; skipped",
                host.display()
            );
            self.stats.sockets_skipped += 1;
            return Ok(None);
        }
        if ft.is_dir() {
            let (xattrs, mut opaque) = xattrs::read(host)?;
            opaque |= fs::symlink_metadata(host.join(OPAQUE_MARKER)).is_ok();
            rel.push(b'/');
            let mut e = base(rel.clone(), EntryKind::Directory, &meta);
            e.xattrs = xattrs;
            self.header(&e)?;
            if opaque {
                let mut marker = rel.clone();
                marker.extend_from_slice(OPAQUE_MARKER.as_bytes());
                let mut m = base(marker, EntryKind::Regular { size: 0 }, &meta);
                m.mode = WHITEOUT_MODE;
                self.header(&m)?;
                self.stats.opaque_dirs += 1;
            }
            return Ok(Some(frame(host.to_path_buf(), rel)?));
        }
        if meta.nlink() > 1 {
            let key = (meta.dev(), meta.ino());
            if let Some(first) = self.links.get(&key) {
                let e = base(
                    rel,
                    EntryKind::Hardlink {
                        target: first.clone(),
                    },
                    &meta,
                );
                self.header(&e)?;
                self.stats.hardlinks += 1;
                return Ok(None);
            }
            self.links.insert(key, rel.clone());
        }
        if ft.is_file() {
            self.file(
                host,
                base(rel, EntryKind::Regular { size: meta.len() }, &meta),
            )
        } else if ft.is_symlink() {
            let target = fs::read_link(host).map_err(|e| LayerError::io("readlink", host, e))?;
            let kind = EntryKind::Symlink {
                target: target.into_os_string().into_vec(),
            };
            self.header(&base(rel, kind, &meta))
        } else if ft.is_char_device() || ft.is_block_device() {
            let (major, minor) = (libc::major(meta.rdev()), libc::minor(meta.rdev()));
            let kind = if ft.is_char_device() {
                EntryKind::CharDevice { major, minor }
            } else {
                EntryKind::BlockDevice { major, minor }
            };
            self.header(&base(rel, kind, &meta))
        } else {
            self.header(&base(rel, EntryKind::Fifo, &meta))
        }?;
        Ok(None)
    }

    fn file(&mut self, host: &Path, mut e: Entry) -> Result<()> {
        let EntryKind::Regular { size } = e.kind else {
            unreachable!("file() is only called for regular files")
        };
        let mut file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(host)
            .map_err(|err| LayerError::io("opening", host, err))?;
        e.xattrs = xattrs::read(host)?.0;
        self.header(&e)?;
        let mut tagged = TaggedRead {
            inner: &mut file,
            error: None,
        };
        let got = match self.tar.write_data(&mut tagged, size) {
            Ok(got) => got,
            Err(err) => {
                return Err(match tagged.error {
                    Some(read_err) => LayerError::io("reading", host, read_err),
                    None => LayerError::Write(err),
                })
            }
        };
        let grew = got == size && file.read(&mut [0u8; 1]).map(|n| n > 0).unwrap_or(false);
        if got != size || grew {
            let found = if grew { size + 1 } else { got };
            return Err(LayerError::FileChanged {
                path: host.to_path_buf(),
                expected: size,
                found,
            });
        }
        Ok(())
    }

    fn header(&mut self, e: &Entry) -> Result<()> {
        self.stats.entries += 1;
        self.tar.append_header(e).map_err(LayerError::Write)
    }

    fn clamp(&self, mtime: i64) -> i64 {
        match self.opts.mtime_clamp {
            Some(c) => mtime.min(c),
            None => mtime,
        }
    }
}

/// Reads and sorts a directory's names (reversed, so `pop` yields byte
/// order). A kernel whiteout `NAME` sorts as the `.wh.NAME` it becomes, so
/// kernel and fuse-overlayfs upper dirs give the same tar.
fn frame(host: PathBuf, rel: Vec<u8>) -> Result<Frame> {
    let mut keyed = Vec::new();
    let rd = fs::read_dir(&host).map_err(|e| LayerError::io("reading directory", &host, e))?;
    for ent in rd {
        let ent = ent.map_err(|e| LayerError::io("reading directory", &host, e))?;
        let name = ent.file_name();
        let is_char = ent.file_type().map(|t| t.is_char_device()).unwrap_or(false);
        let whiteout = is_char
            && fs::symlink_metadata(ent.path())
                .map(|m| m.rdev() == 0)
                .unwrap_or(false);
        let key = if whiteout {
            [WHITEOUT_PREFIX.as_bytes(), name.as_bytes()].concat()
        } else {
            name.as_bytes().to_vec()
        };
        keyed.push((key, name));
    }
    keyed.sort_unstable_by(|a, b| b.0.cmp(&a.0));
    let names = keyed.into_iter().map(|(_, n)| n).collect();
    Ok(Frame { host, rel, names })
}

/// Remembers a read error so it is not mistaken for a write error.
struct TaggedRead<'a> {
    inner: &'a mut File,
    error: Option<io::Error>,
}

impl Read for TaggedRead<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).map_err(|e| {
            let copy = io::Error::new(e.kind(), e.to_string());
            self.error = Some(e);
            copy
        })
    }
}
