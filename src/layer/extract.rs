//! Safe extraction of a layer (or any rootfs tarball) into a directory.
//!
//! Nothing is ever written outside `dest`:
//! - entry names are cleaned: a leading `/` is dropped (the entry lands
//!   inside `dest`, as GNU tar does), `.` components are dropped, and a name
//!   with a `..` component is rejected;
//! - parents are resolved by the kernel inside `dest` (see `scoped.rs`), so a
//!   symlink in the layer — absolute or full of `..` — leads back inside
//!   `dest`, never out of it; the last component is never followed;
//! - hardlink targets are resolved the same way and must already exist in
//!   `dest` (a link to a file outside, or to nothing, is rejected).
//!
//! In layer mode OCI whiteouts become overlay's on-disk form, so every
//! extracted layer is a valid overlay lowerdir under `userxattr`:
//! `.wh.NAME` → a 0/0 character device `NAME`, `.wh..wh..opq` → the xattr
//! `user.overlay.opaque=y` on its directory. Owners, modes, mtimes, allowed
//! xattrs, symlinks and hardlinks are kept; device nodes are made when the
//! kernel allows (not in a user namespace, not unprivileged), else skipped
//! with a warning; 0/0 whiteout devices any user may make (Linux >= 5.8).
//! Directory modes and mtimes are applied last, once nothing more is
//! created inside them. The diff ID is hashed from the uncompressed
//! stream as it is read.

use std::collections::HashSet;
use std::fs::{self, File, Permissions};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use xattr::FileExt;

use super::compress::{decompressing_reader_format, sniff, StreamFormat};
use super::diff::{OPAQUE_MARKER, WHITEOUT_PREFIX};
use super::error::{LayerError, Result};
use super::scoped::{self, cname, Root};
use super::tar_reader::{ReadEntry, TarReader};
use super::xattrs::{self, OPAQUE_XATTR};
use crate::digest::{Digest, Hasher};

/// How owners are restored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtractOptions {
    /// Give every entry the uid/gid the tar says (default). When false,
    /// entries keep the extracting process's ids (single-id rootless mode).
    pub preserve_owners: bool,
}

impl Default for ExtractOptions {
    fn default() -> ExtractOptions {
        ExtractOptions {
            preserve_owners: true,
        }
    }
}

/// What an extraction read and wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtractStats {
    /// sha256 of the uncompressed tar stream.
    pub diff_id: Digest,
    pub diff_size: u64,
    /// sha256 and size of the bytes read from the input (the blob).
    pub blob_digest: Digest,
    pub blob_size: u64,
    pub format: StreamFormat,
    pub entries: u64,
    pub whiteouts: u64,
    pub opaque_dirs: u64,
    /// Device nodes the kernel refused to create (user namespace).
    pub devices_skipped: u64,
    /// xattrs the filesystem or kernel refused.
    pub xattrs_skipped: u64,
    /// Entries of kinds that cannot be extracted (e.g. GNU sparse files).
    pub entries_skipped: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// OCI layer: whiteouts mapped to overlay form.
    Layer,
    /// A plain rootfs tarball: `.wh.` names are ordinary files.
    Plain,
}

/// Extracts an OCI layer (compressed or not: the format is sniffed) into
/// `dest` (created if missing) as an overlay lowerdir.
pub fn extract_layer(
    r: impl Read + Send,
    dest: &Path,
    opts: &ExtractOptions,
) -> Result<ExtractStats> {
    extract(r, dest, opts, Mode::Layer)
}

/// Extracts a rootfs tarball (for `rbuild import`) into `dest` with the same
/// safety rules, without interpreting whiteouts.
pub fn extract_plain(
    r: impl Read + Send,
    dest: &Path,
    opts: &ExtractOptions,
) -> Result<ExtractStats> {
    extract(r, dest, opts, Mode::Plain)
}

/// Bytes hashed and counted as they are read.
#[derive(Default)]
struct Counted {
    hasher: Hasher,
    size: u64,
}

struct HashRead<'a, R> {
    inner: R,
    state: Option<&'a mut Counted>,
}

impl<R: Read> Read for HashRead<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(s) = self.state.as_mut() {
            s.hasher.update(&buf[..n]);
            s.size += n as u64;
        }
        Ok(n)
    }
}

fn extract(
    r: impl Read + Send,
    dest: &Path,
    opts: &ExtractOptions,
    mode: Mode,
) -> Result<ExtractStats> {
    fs::create_dir_all(dest).map_err(|e| LayerError::io("creating", dest, e))?;
    let root = Root::open(dest).map_err(|e| LayerError::io("opening", dest, e))?;
    let read_err = |entry: Option<String>| move |source| LayerError::Read { entry, source };

    // Sniff before wrapping so an uncompressed stream is hashed once, not twice.
    let mut r = r;
    let mut head = [0u8; 6];
    let mut got = 0;
    while got < head.len() {
        match r.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(read_err(None)(e)),
        }
    }
    let plain = sniff(&head[..got]) == StreamFormat::Plain;
    let input = io::Cursor::new(head).take(got as u64).chain(r);

    let mut blob = Counted::default();
    let mut diff = Counted::default();
    let mut x = Extractor {
        root,
        opts: *opts,
        mode,
        dirs: Vec::new(),
        buf: vec![0u8; 1 << 20],
        stats: Stats::default(),
    };
    let format = {
        let raw = HashRead {
            inner: input,
            state: if plain { None } else { Some(&mut blob) },
        };
        let (format, decoded) = decompressing_reader_format(raw)?;
        let mut archive = TarReader::new(HashRead {
            inner: decoded,
            state: Some(&mut diff),
        });
        let mut index = 0u64;
        while let Some(entry) = archive
            .next_entry()
            .map_err(read_err(Some(format!("#{index}"))))?
        {
            x.entry(index, entry, &mut archive)?;
            index += 1;
        }
        x.finish_dirs()?;
        // Hash what follows the end-of-archive marker too: the diff ID covers
        // the whole stream.
        let mut rest = archive.into_inner();
        io::copy(&mut rest, &mut io::sink()).map_err(read_err(None))?;
        format
    };
    let (diff_id, diff_size) = (diff.hasher.finish(), diff.size);
    let (blob_digest, blob_size) = if plain {
        (diff_id, diff_size)
    } else {
        (blob.hasher.finish(), blob.size)
    };
    let s = x.stats;
    Ok(ExtractStats {
        diff_id,
        diff_size,
        blob_digest,
        blob_size,
        format,
        entries: s.entries,
        whiteouts: s.whiteouts,
        opaque_dirs: s.opaque_dirs,
        devices_skipped: s.devices_skipped,
        xattrs_skipped: s.xattrs_skipped,
        entries_skipped: s.entries_skipped,
    })
}

#[derive(Default)]
struct Stats {
    entries: u64,
    whiteouts: u64,
    opaque_dirs: u64,
    devices_skipped: u64,
    xattrs_skipped: u64,
    entries_skipped: u64,
}

/// Metadata of one entry, PAX overrides applied.
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: i64,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// The entry being extracted, for error messages.
struct At<'a> {
    index: u64,
    name: &'a str,
}

impl At<'_> {
    fn bad(&self, reason: impl Into<String>) -> LayerError {
        LayerError::BadEntry {
            index: self.index,
            entry: self.name.to_string(),
            reason: reason.into(),
        }
    }

    fn op(&self, op: &'static str) -> impl FnOnce(io::Error) -> LayerError + '_ {
        move |source| LayerError::Extract {
            index: self.index,
            entry: self.name.to_string(),
            op,
            source,
        }
    }
}

struct Extractor {
    root: Root,
    opts: ExtractOptions,
    mode: Mode,
    /// Directories whose mode and mtime are applied at the end.
    dirs: Vec<(Vec<Vec<u8>>, u32, i64)>,
    buf: Vec<u8>,
    stats: Stats,
}

/// Splits a tar name into clean components: no leading `/`, no `.`, and
/// an error for `..`.
fn clean(name: &[u8]) -> std::result::Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    for c in name.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                return Err("the name contains a \"..\" component; refusing to extract it".into())
            }
            c => out.push(c.to_vec()),
        }
    }
    Ok(out)
}

fn refs(c: &[Vec<u8>]) -> Vec<&[u8]> {
    c.iter().map(|v| v.as_slice()).collect()
}

impl Extractor {
    fn entry<R: Read>(
        &mut self,
        index: u64,
        mut e: ReadEntry,
        archive: &mut TarReader<R>,
    ) -> Result<()> {
        let kind = e.typeflag;
        let name = String::from_utf8_lossy(&e.path).into_owned();
        let at = At { index, name: &name };
        let comps = clean(&e.path).map_err(|r| at.bad(r))?;
        let meta = self.meta(&mut e, &at)?;
        self.stats.entries += 1;

        let Some((last, parent)) = comps.split_last() else {
            if kind != b'5' {
                return Err(at.bad("only a directory may name the destination root"));
            }
            return self.dir(&at, &[], meta);
        };
        if self.mode == Mode::Layer {
            if last == OPAQUE_MARKER.as_bytes() {
                return self.opaque(&at, parent);
            }
            if let Some(hidden) = last.strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
                return self.whiteout(&at, parent, hidden, meta);
            }
        }
        if kind == b'5' {
            return self.dir(&at, &comps, meta);
        }
        // Regular ('0', contiguous '7'), hardlink, symlink, char, block, FIFO.
        if !matches!(kind, b'0' | b'7' | b'1' | b'2' | b'3' | b'4' | b'6') {
            log::warn!(
                "layer entry #{index} {name:?}: entry type {:?} (e.g. a GNU sparse file) cannot \
                 be extracted; skipped",
                kind as char
            );
            self.stats.entries_skipped += 1;
            return Ok(());
        }
        let pfd = self.parents(&at, parent)?;
        let cn = cname(last).map_err(|e| at.bad(e.to_string()))?;

        if kind == b'1' {
            return self.hardlink(&at, &e, &comps, &pfd, &cn);
        }
        scoped::remove_all_at(&pfd, &cn).map_err(at.op("replacing an existing entry"))?;
        if kind == b'0' || kind == b'7' {
            let mut file = scoped::openat(
                &pfd,
                &cn,
                libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL,
                0o600,
            )
            .map_err(at.op("creating the file"))?;
            self.copy_data(&at, archive, &mut file)?;
            self.chown_fd(&at, &file, &meta)?;
            file.set_permissions(Permissions::from_mode(meta.mode))
                .map_err(at.op("chmod"))?;
            self.set_xattrs(&at, &file, &meta);
            set_mtime_fd(&file, meta.mtime).map_err(at.op("setting mtime"))?;
            return Ok(());
        }
        if kind == b'2' {
            if e.link.is_empty() {
                return Err(at.bad("symlink without a target"));
            }
            let target = cname(&e.link).map_err(|e| at.bad(e.to_string()))?;
            scoped::symlinkat(&target, &pfd, &cn).map_err(at.op("creating the symlink"))?;
            self.chown_at(&at, &pfd, &cn, &meta)?;
            return scoped::set_mtime_at(&pfd, &cn, meta.mtime).map_err(at.op("setting mtime"));
        }
        // Devices and FIFOs.
        let (fmt, dev) = if kind == b'6' {
            (libc::S_IFIFO, 0)
        } else {
            let (major, minor) = (e.dev_major, e.dev_minor);
            let fmt = if kind == b'3' {
                libc::S_IFCHR
            } else {
                libc::S_IFBLK
            };
            (fmt, libc::makedev(major, minor))
        };
        if let Err(err) = scoped::mknodat(&pfd, &cn, fmt | meta.mode, dev) {
            if fmt != libc::S_IFIFO && err.raw_os_error() == Some(libc::EPERM) {
                log::warn!(
                    "layer entry #{index} {name:?}: creating a device node is not permitted here \
                     (user namespace); skipped"
                );
                self.stats.devices_skipped += 1;
                return Ok(());
            }
            return Err(at.op("creating the device node")(err));
        }
        self.chown_at(&at, &pfd, &cn, &meta)?;
        scoped::chmod_at(&pfd, &cn, meta.mode).map_err(at.op("chmod"))?;
        scoped::set_mtime_at(&pfd, &cn, meta.mtime).map_err(at.op("setting mtime"))
    }

    fn meta(&self, e: &mut ReadEntry, at: &At) -> Result<Meta> {
        let id = |v: u64, what: &str| {
            u32::try_from(v).map_err(|_| at.bad(format!("{what} {v} is larger than 2^32-1")))
        };
        let xattrs = std::mem::take(&mut e.xattrs)
            .into_iter()
            .filter(|(name, _)| xattrs::allowed(name))
            .collect();
        Ok(Meta {
            mode: e.mode & 0o7777,
            uid: id(e.uid, "uid")?,
            gid: id(e.gid, "gid")?,
            mtime: e.mtime,
            xattrs,
        })
    }

    fn dir(&mut self, at: &At, comps: &[Vec<u8>], meta: Meta) -> Result<()> {
        let dir = if let Some((last, parent)) = comps.split_last() {
            let pfd = self.parents(at, parent)?;
            let cn = cname(last).map_err(|e| at.bad(e.to_string()))?;
            match scoped::lstat_at(&pfd, &cn).map_err(at.op("lstat"))? {
                Some(st) if scoped::is_dir(&st) => {}
                existing => {
                    if existing.is_some() {
                        scoped::remove_all_at(&pfd, &cn)
                            .map_err(at.op("replacing an existing entry"))?;
                    }
                    scoped::mkdirat(&pfd, &cn, 0o700).map_err(at.op("mkdir"))?;
                }
            }
            scoped::openat(&pfd, &cn, libc::O_RDONLY | libc::O_DIRECTORY, 0)
                .map_err(at.op("opening the directory"))?
        } else {
            File::from(
                self.root
                    .resolve(&[], libc::O_RDONLY | libc::O_DIRECTORY)
                    .map_err(at.op("opening the directory"))?,
            )
        };
        self.chown_fd(at, &dir, &meta)?;
        self.set_xattrs(at, &dir, &meta);
        self.dirs.push((comps.to_vec(), meta.mode, meta.mtime));
        Ok(())
    }

    fn opaque(&mut self, at: &At, parent: &[Vec<u8>]) -> Result<()> {
        self.parents(at, parent)?;
        let dir = File::from(
            self.root
                .resolve(&refs(parent), libc::O_RDONLY | libc::O_DIRECTORY)
                .map_err(at.op("opening the directory"))?,
        );
        dir.set_xattr(OPAQUE_XATTR, b"y")
            .map_err(|source| LayerError::OpaqueRefused {
                index: at.index,
                entry: at.name.to_string(),
                path: self.host_path(parent),
                source,
            })?;
        self.stats.opaque_dirs += 1;
        Ok(())
    }

    fn whiteout(&mut self, at: &At, parent: &[Vec<u8>], hidden: &[u8], meta: Meta) -> Result<()> {
        if hidden.is_empty() || hidden == b"." || hidden == b".." {
            return Err(at.bad("a whiteout must name an entry (not \"\", \".\" or \"..\")"));
        }
        let pfd = self.parents(at, parent)?;
        let cn = cname(hidden).map_err(|e| at.bad(e.to_string()))?;
        scoped::remove_all_at(&pfd, &cn).map_err(at.op("replacing an existing entry"))?;
        scoped::mknodat(&pfd, &cn, libc::S_IFCHR | meta.mode, libc::makedev(0, 0)).map_err(
            |source| {
                let mut p = parent.to_vec();
                p.push(hidden.to_vec());
                LayerError::WhiteoutRefused {
                    index: at.index,
                    entry: at.name.to_string(),
                    path: self.host_path(&p),
                    source,
                }
            },
        )?;
        self.chown_at(at, &pfd, &cn, &meta)?;
        scoped::chmod_at(&pfd, &cn, meta.mode).map_err(at.op("chmod"))?;
        scoped::set_mtime_at(&pfd, &cn, meta.mtime).map_err(at.op("setting mtime"))?;
        self.stats.whiteouts += 1;
        Ok(())
    }

    fn hardlink(
        &mut self,
        at: &At,
        e: &ReadEntry,
        comps: &[Vec<u8>],
        pfd: &OwnedFd,
        cn: &std::ffi::CStr,
    ) -> Result<()> {
        let target = &e.link;
        let tcomps = clean(target).map_err(|r| at.bad(format!("hardlink target: {r}")))?;
        if tcomps == comps {
            return Ok(());
        }
        let Some((tlast, tparent)) = tcomps.split_last() else {
            return Err(at.bad("a hardlink cannot point at the destination root"));
        };
        let missing = || {
            at.bad(format!(
                "hardlink target {:?} does not exist earlier in this layer",
                String::from_utf8_lossy(target)
            ))
        };
        let tfd = self
            .root
            .resolve(&refs(tparent), libc::O_PATH | libc::O_DIRECTORY)
            .map_err(|_| missing())?;
        let tcn = cname(tlast).map_err(|e| at.bad(e.to_string()))?;
        match scoped::lstat_at(&tfd, &tcn).map_err(at.op("lstat of the hardlink target"))? {
            None => return Err(missing()),
            Some(st) if scoped::is_dir(&st) => {
                return Err(at.bad("a hardlink cannot point at a directory"))
            }
            Some(_) => {}
        }
        scoped::remove_all_at(pfd, cn).map_err(at.op("replacing an existing entry"))?;
        scoped::linkat(&tfd, &tcn, pfd, cn).map_err(at.op("creating the hardlink"))
    }

    fn copy_data<R: Read>(
        &mut self,
        at: &At,
        archive: &mut TarReader<R>,
        file: &mut File,
    ) -> Result<()> {
        let mut data = archive.data();
        loop {
            let n = match data.read(&mut self.buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(LayerError::Read {
                        entry: Some(at.name.to_string()),
                        source,
                    })
                }
            };
            file.write_all(&self.buf[..n])
                .map_err(at.op("writing file data"))?;
        }
    }

    fn chown_fd(&self, at: &At, file: &File, meta: &Meta) -> Result<()> {
        if !self.opts.preserve_owners {
            return Ok(());
        }
        std::os::unix::fs::fchown(file, Some(meta.uid), Some(meta.gid))
            .map_err(|source| chown_error(at, meta, source))
    }

    fn chown_at(&self, at: &At, dir: &OwnedFd, name: &std::ffi::CStr, meta: &Meta) -> Result<()> {
        if !self.opts.preserve_owners {
            return Ok(());
        }
        scoped::chown_at(dir, name, meta.uid, meta.gid)
            .map_err(|source| chown_error(at, meta, source))
    }

    fn set_xattrs(&mut self, at: &At, file: &File, meta: &Meta) {
        for (name, value) in &meta.xattrs {
            let key = String::from_utf8_lossy(name);
            if let Err(err) = file.set_xattr(key.as_ref(), value) {
                log::warn!(
                    "layer entry #{} {:?}: xattr {key} not set: {err}",
                    at.index,
                    at.name
                );
                self.stats.xattrs_skipped += 1;
            }
        }
    }

    /// Applies directory modes and mtimes, latest entry per directory winning.
    fn finish_dirs(&mut self) -> Result<()> {
        let mut done = HashSet::new();
        for (comps, mode, mtime) in self.dirs.iter().rev() {
            if !done.insert(comps.clone()) {
                continue;
            }
            let fd = match self.root.resolve(
                &refs(comps),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
            ) {
                Ok(fd) => File::from(fd),
                // Replaced by a later entry (a file, a symlink) or whited out.
                Err(_) => continue,
            };
            let path = self.host_path(comps);
            fd.set_permissions(Permissions::from_mode(*mode))
                .map_err(|e| LayerError::io("chmod", &path, e))?;
            set_mtime_fd(&fd, *mtime).map_err(|e| LayerError::io("setting mtime of", &path, e))?;
        }
        Ok(())
    }

    /// The parent directory of an entry, created inside the root if missing.
    fn parents(&self, at: &At, parent: &[Vec<u8>]) -> Result<OwnedFd> {
        self.root
            .make_parents(&refs(parent))
            .map_err(|e| match e.raw_os_error() {
                Some(libc::ENOENT) => at.bad(
                    "a parent directory is a symlink to nothing inside the destination; \
                 refusing to follow it",
                ),
                Some(libc::ENOTDIR) => at.bad("a parent is not a directory"),
                Some(libc::ELOOP) => at.bad("too many levels of symlinks in a parent"),
                _ => at.op("creating parent directories")(e),
            })
    }

    fn host_path(&self, comps: &[Vec<u8>]) -> PathBuf {
        let mut p = self.root.path().to_path_buf();
        for c in comps {
            p.push(String::from_utf8_lossy(c).as_ref());
        }
        p
    }
}

fn chown_error(at: &At, meta: &Meta, source: io::Error) -> LayerError {
    LayerError::Chown {
        index: at.index,
        entry: at.name.to_string(),
        uid: meta.uid as u64,
        gid: meta.gid as u64,
        source,
    }
}

fn set_mtime_fd(file: &File, secs: i64) -> io::Result<()> {
    let ts = libc::timespec {
        tv_sec: secs as libc::time_t,
        tv_nsec: 0,
    };
    let times = [ts, ts];
    // SAFETY: valid fd and a two-element timespec array.
    if unsafe { libc::futimens(file.as_raw_fd(), times.as_ptr()) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_names() {
        assert_eq!(
            clean(b"/a/./b//c/").unwrap(),
            vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]
        );
        assert_eq!(clean(b"./").unwrap(), Vec::<Vec<u8>>::new());
        assert!(clean(b"a/../b").is_err());
        assert!(clean(b"../x").is_err());
    }
}
