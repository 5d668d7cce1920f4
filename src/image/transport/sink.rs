//! Where exported blobs land: a directory (OCI layout, `dir:`) or a tar
//! stream (`oci-archive:`, `docker-archive:`).
//!
//! Both hash while writing and name the blob only once its digest is known:
//! a directory through a temp file renamed into place, a tar by writing the
//! member's header after its data (the file is seekable), so no blob is
//! staged twice and nothing half-written carries a digest's name.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::ExportError;
use crate::digest::{Digest, DigestWriter};
use crate::image::source::{BlobInfo, SourceError};

/// Write buffer: large writes keep syscalls off the profile of a 1 GiB export.
const BUFFER: usize = 1 << 20;

/// What a blob is, which decides its name in some destinations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlobKind {
    Layer,
    Config,
    Manifest,
}

/// How blob names are formed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Naming {
    /// `blobs/sha256/<hex>` (OCI layout).
    OciBlobs,
    /// `<hex>` (containers/image `dir:`).
    Flat,
    /// `<hex>.tar` layers, `<hex>.json` config (docker save).
    DockerSave,
}

impl Naming {
    pub fn name(self, kind: BlobKind, digest: &Digest) -> String {
        match (self, kind) {
            (Naming::OciBlobs, _) => format!("blobs/sha256/{}", digest.hex()),
            (Naming::Flat, _) => digest.hex(),
            (Naming::DockerSave, BlobKind::Layer) => format!("{}.tar", digest.hex()),
            (Naming::DockerSave, _) => format!("{}.json", digest.hex()),
        }
    }
}

/// A producer of blob bytes: writes into the sink's writer, returns what it
/// believes it wrote (checked against what the sink hashed).
pub type Produce<'a> = &'a mut dyn FnMut(&mut dyn Write) -> Result<BlobInfo, SourceError>;

/// A destination for blobs.
pub trait BlobSink {
    /// The destination already holds this blob under its name.
    fn has(&self, kind: BlobKind, digest: &Digest) -> bool;

    /// Streams a blob whose digest is known only at the end.
    fn put_stream(&mut self, kind: BlobKind, produce: Produce<'_>)
        -> Result<BlobInfo, ExportError>;

    /// Copies a finished blob from `path`, checking it is what `info` says.
    fn put_file(&mut self, kind: BlobKind, info: BlobInfo, path: &Path) -> Result<(), ExportError>;

    fn put_bytes(&mut self, kind: BlobKind, bytes: &[u8]) -> Result<BlobInfo, ExportError> {
        let mut produce = |w: &mut dyn Write| -> Result<BlobInfo, SourceError> {
            w.write_all(bytes)?;
            Ok(BlobInfo {
                digest: Digest::of(bytes),
                size: bytes.len() as u64,
            })
        };
        self.put_stream(kind, &mut produce)
    }
}

fn io_err(what: &str, path: &Path) -> impl FnOnce(io::Error) -> ExportError {
    let what = what.to_string();
    let path = path.to_path_buf();
    move |source| ExportError::Io { what, path, source }
}

/// How much of a producer's claim to check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Check {
    /// The producer hashed these very bytes on their way out (the layer
    /// exporter does, in its one pass): count them, don't hash them again —
    /// a second sha256 would cost about a fifth of a zstd export.
    Size,
    /// Bytes read back from disk (a cached blob) could have changed since
    /// they were hashed: hash them while copying.
    Hash,
}

/// Counts bytes on their way to `inner`.
struct Counter<W> {
    inner: W,
    written: u64,
}

impl<W: Write> Write for Counter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Runs `produce` into `out` and checks the producer's claim.
fn stream_checked<W: Write>(
    out: W,
    produce: Produce<'_>,
    dest: &Path,
    check: Check,
) -> Result<(W, BlobInfo), ExportError> {
    let source_err = |source| ExportError::Source {
        what: format!("writing a blob into {}", dest.display()),
        source,
    };
    let (out, claimed, got) = match check {
        Check::Hash => {
            let mut writer = DigestWriter::new(out);
            let claimed = produce(&mut writer).map_err(source_err)?;
            let (out, digest, size) = writer.finish();
            (out, claimed, BlobInfo { digest, size })
        }
        Check::Size => {
            let mut writer = Counter {
                inner: out,
                written: 0,
            };
            let claimed = produce(&mut writer).map_err(source_err)?;
            let got = BlobInfo {
                digest: claimed.digest,
                size: writer.written,
            };
            (writer.inner, claimed, got)
        }
    };
    if claimed != got {
        return Err(ExportError::BlobMismatch {
            path: dest.to_path_buf(),
            claimed,
            got,
        });
    }
    Ok((out, got))
}

/// Copies `path` into `out`, hashing, and checks it against `info`.
fn copy_checked<W: Write>(out: W, info: BlobInfo, path: &Path) -> Result<W, ExportError> {
    let mut file = File::open(path).map_err(io_err("opening cached blob", path))?;
    let mut produce = |w: &mut dyn Write| -> Result<BlobInfo, SourceError> {
        io::copy(&mut file, w)?;
        Ok(info)
    };
    stream_checked(out, &mut produce, path, Check::Hash).map(|(w, _)| w)
}

/// Blobs as files under a directory.
pub struct DirSink {
    root: PathBuf,
    naming: Naming,
}

impl DirSink {
    pub fn new(root: &Path, naming: Naming) -> Result<DirSink, ExportError> {
        let sink = DirSink {
            root: root.to_path_buf(),
            naming,
        };
        let blob_dir = sink.path(BlobKind::Layer, &Digest::of(b""));
        let parent = blob_dir.parent().unwrap_or(root);
        fs::create_dir_all(parent).map_err(io_err("creating blob directory", parent))?;
        Ok(sink)
    }

    pub fn path(&self, kind: BlobKind, digest: &Digest) -> PathBuf {
        self.root.join(self.naming.name(kind, digest))
    }

    /// A temp file in the destination's root: the same filesystem as the
    /// blobs (so the rename is atomic), but never inside `blobs/sha256`,
    /// where tools expect only digest names.
    fn temp_in(&self) -> Result<tempfile::NamedTempFile, ExportError> {
        tempfile::Builder::new()
            .prefix(".tmp-blob-")
            .tempfile_in(&self.root)
            .map_err(io_err("creating a temp file", &self.root))
    }

    /// fsync, make world-readable and rename into place; an existing target
    /// (the same content) counts as success.
    fn commit(
        &self,
        tmp: tempfile::NamedTempFile,
        kind: BlobKind,
        info: BlobInfo,
    ) -> Result<(), ExportError> {
        let target = self.path(kind, &info.digest);
        tmp.as_file()
            .sync_all()
            .map_err(io_err("syncing blob", &target))?;
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o644))
            .map_err(io_err("setting blob permissions", &target))?;
        if target.exists() {
            return Ok(());
        }
        tmp.persist(&target)
            .map_err(|e| io_err("renaming blob into place", &target)(e.error))?;
        sync_parent(&target);
        Ok(())
    }
}

/// fsyncs the directory holding `path`, so a rename survives a crash. A
/// failure is logged, not returned: the file is already complete and named.
pub(super) fn sync_parent(path: &Path) {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if let Err(e) = File::open(dir).and_then(|d| d.sync_all()) {
        log::warn!("syncing directory {}: {e}", dir.display());
    }
}

impl BlobSink for DirSink {
    fn has(&self, kind: BlobKind, digest: &Digest) -> bool {
        self.path(kind, digest).is_file()
    }

    fn put_stream(
        &mut self,
        kind: BlobKind,
        produce: Produce<'_>,
    ) -> Result<BlobInfo, ExportError> {
        let tmp = self.temp_in()?;
        let file = tmp
            .reopen()
            .map_err(io_err("opening temp blob", tmp.path()))?;
        let (buffered, info) = stream_checked(
            BufWriter::with_capacity(BUFFER, file),
            produce,
            &self.root,
            Check::Size,
        )?;
        buffered
            .into_inner()
            .map_err(|e| io_err("writing blob", tmp.path())(e.into_error()))?;
        self.commit(tmp, kind, info)?;
        Ok(info)
    }

    fn put_file(&mut self, kind: BlobKind, info: BlobInfo, path: &Path) -> Result<(), ExportError> {
        if self.has(kind, &info.digest) {
            return Ok(());
        }
        let tmp = self.temp_in()?;
        let file = tmp
            .reopen()
            .map_err(io_err("opening temp blob", tmp.path()))?;
        copy_checked(BufWriter::with_capacity(BUFFER, file), info, path)?
            .into_inner()
            .map_err(|e| io_err("writing blob", tmp.path())(e.into_error()))?;
        self.commit(tmp, kind, info)
    }
}

/// Blobs as members of a tar file being written.
pub struct TarSink {
    file: BufWriter<File>,
    path: PathBuf,
    naming: Naming,
    written: HashSet<String>,
}

const BLOCK: u64 = 512;

impl TarSink {
    /// Writes into `file` (a fresh temp file), reporting errors against `path`.
    pub fn new(file: File, path: &Path, naming: Naming) -> TarSink {
        TarSink {
            file: BufWriter::with_capacity(BUFFER, file),
            path: path.to_path_buf(),
            naming,
            written: HashSet::new(),
        }
    }

    fn header(name: &str, size: u64, dir: bool) -> Result<tar::Header, io::Error> {
        let mut header = tar::Header::new_ustar();
        header.set_path(name)?;
        header.set_size(size);
        header.set_mode(if dir { 0o755 } else { 0o644 });
        header.set_entry_type(if dir {
            tar::EntryType::Directory
        } else {
            tar::EntryType::Regular
        });
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_cksum();
        Ok(header)
    }

    /// A directory member, so tools that expect parents find them.
    pub fn put_dir(&mut self, name: &str) -> Result<(), ExportError> {
        let header =
            Self::header(name, 0, true).map_err(io_err("writing tar header", &self.path))?;
        self.file
            .write_all(header.as_bytes())
            .map_err(io_err("writing tar", &self.path))?;
        Ok(())
    }

    /// A small member with a known name.
    pub fn put_named(&mut self, name: &str, bytes: &[u8]) -> Result<(), ExportError> {
        let header = Self::header(name, bytes.len() as u64, false)
            .map_err(io_err("writing tar header", &self.path))?;
        let pad = (BLOCK - bytes.len() as u64 % BLOCK) % BLOCK;
        let path = self.path.clone();
        (|| {
            self.file.write_all(header.as_bytes())?;
            self.file.write_all(bytes)?;
            self.file.write_all(&vec![0; pad as usize])
        })()
        .map_err(io_err("writing tar", &path))?;
        self.written.insert(name.to_string());
        Ok(())
    }

    /// Streams a member whose name and size are known only after its data:
    /// a placeholder header first, patched once the digest is known.
    fn put_member(
        &mut self,
        kind: BlobKind,
        fill: &mut dyn FnMut(&mut BufWriter<File>) -> Result<BlobInfo, ExportError>,
    ) -> Result<BlobInfo, ExportError> {
        let path = self.path.clone();
        let start = self
            .file
            .stream_position()
            .map_err(io_err("seeking in tar", &path))?;
        self.file
            .write_all(&[0; BLOCK as usize])
            .map_err(io_err("writing tar", &path))?;
        let info = fill(&mut self.file)?;
        let name = self.naming.name(kind, &info.digest);
        if !self.written.insert(name.clone()) {
            // The same blob twice (identical layers): drop the second copy.
            self.file.flush().map_err(io_err("writing tar", &path))?;
            self.file
                .get_ref()
                .set_len(start)
                .map_err(io_err("truncating tar", &path))?;
            self.file
                .seek(SeekFrom::Start(start))
                .map_err(io_err("seeking in tar", &path))?;
            return Ok(info);
        }
        let pad = (BLOCK - info.size % BLOCK) % BLOCK;
        let header =
            Self::header(&name, info.size, false).map_err(io_err("writing tar header", &path))?;
        (|| {
            self.file.write_all(&vec![0; pad as usize])?;
            let end = self.file.stream_position()?;
            self.file.seek(SeekFrom::Start(start))?;
            self.file.write_all(header.as_bytes())?;
            self.file.seek(SeekFrom::Start(end))?;
            Ok(())
        })()
        .map_err(io_err("patching tar header", &path))?;
        Ok(info)
    }

    /// Two zero blocks; returns the file for the caller to rename.
    ///
    /// No fsync, as containers/image and docker write their archives: the
    /// archive is a copy of what the store holds durably, and waiting for a
    /// GiB-sized one to reach the disk would add seconds to every export.
    /// The temp file and rename keep a killed export from leaving a partial
    /// archive under the final name; after a power cut the archive may be
    /// short (export it again), the store is intact.
    pub fn finish(mut self) -> Result<File, ExportError> {
        let path = self.path.clone();
        self.file
            .write_all(&[0; 2 * BLOCK as usize])
            .map_err(io_err("writing tar", &path))?;
        self.file
            .into_inner()
            .map_err(|e| io_err("writing tar", &path)(e.into_error()))
    }
}

impl BlobSink for TarSink {
    fn has(&self, kind: BlobKind, digest: &Digest) -> bool {
        self.written.contains(&self.naming.name(kind, digest))
    }

    fn put_stream(
        &mut self,
        kind: BlobKind,
        produce: Produce<'_>,
    ) -> Result<BlobInfo, ExportError> {
        let path = self.path.clone();
        self.put_member(kind, &mut |out| {
            stream_checked(out, produce, &path, Check::Size).map(|(_, info)| info)
        })
    }

    fn put_file(&mut self, kind: BlobKind, info: BlobInfo, src: &Path) -> Result<(), ExportError> {
        if self.has(kind, &info.digest) {
            return Ok(());
        }
        self.put_member(kind, &mut |out| copy_checked(out, info, src).map(|_| info))
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn dir_sink_writes_once_and_checks_claims() {
        let tmp = tempfile::tempdir().unwrap();
        let mut sink = DirSink::new(tmp.path(), Naming::OciBlobs).unwrap();
        let info = sink.put_bytes(BlobKind::Config, b"{}").unwrap();
        let path = sink.path(BlobKind::Config, &info.digest);
        assert_eq!(fs::read(&path).unwrap(), b"{}");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o644
        );
        assert!(sink.has(BlobKind::Config, &Digest::of(b"{}")));

        // A producer that dropped bytes on the way is caught by the count.
        let mut liar = |w: &mut dyn Write| -> Result<BlobInfo, SourceError> {
            w.write_all(b"abc")?;
            Ok(BlobInfo {
                digest: Digest::of(b"abcd"),
                size: 4,
            })
        };
        let err = sink.put_stream(BlobKind::Layer, &mut liar).unwrap_err();
        assert!(matches!(err, ExportError::BlobMismatch { .. }), "{err}");
        // Nothing but the good blob is left, and no temp file.
        let root: Vec<_> = fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(root, vec!["blobs"]);
        let names: Vec<_> = fs::read_dir(tmp.path().join("blobs/sha256"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn tar_sink_patches_headers_and_dedups() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("x.tar");
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&out)
            .unwrap();
        let mut sink = TarSink::new(file, &out, Naming::DockerSave);
        sink.put_bytes(BlobKind::Layer, b"layer-bytes").unwrap();
        sink.put_bytes(BlobKind::Layer, b"layer-bytes").unwrap();
        sink.put_bytes(BlobKind::Config, b"{}").unwrap();
        sink.put_named("manifest.json", b"[]").unwrap();
        sink.finish().unwrap();

        let mut archive = tar::Archive::new(File::open(&out).unwrap());
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let mut body = Vec::new();
            entry.read_to_end(&mut body).unwrap();
            seen.push((entry.path().unwrap().display().to_string(), body));
        }
        assert_eq!(
            seen,
            vec![
                (
                    format!("{}.tar", Digest::of(b"layer-bytes").hex()),
                    b"layer-bytes".to_vec()
                ),
                (format!("{}.json", Digest::of(b"{}").hex()), b"{}".to_vec()),
                ("manifest.json".to_string(), b"[]".to_vec()),
            ]
        );
    }
}
