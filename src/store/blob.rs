//! The content store: blobs written once under `blobs/sha256/<hex>`.
//!
//! Shaped like containerd's local content store: a [`BlobWriter`] streams into
//! a staging file in `tmp/` while hashing; only [`BlobWriter::commit`] makes
//! the bytes visible under their digest, after fsync and the size/digest
//! checks, so nothing half-written is ever reachable by digest.
//!
//! Writes start their writeback as they go ([`Writeback`]), so the final
//! fsync of a GiB-sized layer blob waits for the last few MiB, not for all
//! of it. A [`Store::blob_copy_writer`] keeps a copy of bytes the caller is
//! already hashing on their way elsewhere (a push teeing its compressed
//! layer into the store): hashing them a second time would cost a whole
//! sha256 pass for nothing.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use crate::digest::{Digest, DigestWriter};
use crate::store::error::{Result, StoreError};
use crate::store::fsutil::{self, create_tmp_file, Writeback};
use crate::store::Store;

/// `read_blob` refuses blobs larger than this: it is for JSON, not layers.
const READ_BLOB_LIMIT: u64 = 64 << 20;

/// An open, uncommitted blob: write bytes, then [`commit`](Self::commit).
/// Dropping it without committing removes the staging file.
pub struct BlobWriter {
    store: Store,
    out: Option<Staging>,
    tmp_path: PathBuf,
}

/// The staging file, and who computes the digest of what goes into it.
enum Staging {
    /// The writer hashes every byte.
    Hashed(DigestWriter<BufWriter<Writeback>>),
    /// The caller hashes the bytes elsewhere and names the digest at commit.
    Copy {
        file: BufWriter<Writeback>,
        written: u64,
    },
}

impl Staging {
    fn written(&self) -> u64 {
        match self {
            Staging::Hashed(w) => w.written(),
            Staging::Copy { written, .. } => *written,
        }
    }
}

const STAGING_BUFFER: usize = 256 << 10;

impl Store {
    /// Starts a new blob in `tmp/`.
    pub fn blob_writer(&self) -> Result<BlobWriter> {
        let (file, tmp_path) = create_tmp_file(&self.tmp_dir(), "blob")?;
        let file = BufWriter::with_capacity(STAGING_BUFFER, Writeback::new(file));
        Ok(BlobWriter {
            store: self.clone(),
            out: Some(Staging::Hashed(DigestWriter::new(file))),
            tmp_path,
        })
    }

    /// Starts a blob whose bytes the caller hashes itself while it writes
    /// them here and to another destination: [`BlobWriter::commit`] then
    /// needs the digest and checks only the size. Use it only with a digest
    /// taken from these very bytes on their way in, never a claimed one.
    pub fn blob_copy_writer(&self) -> Result<BlobWriter> {
        let (file, tmp_path) = create_tmp_file(&self.tmp_dir(), "blob")?;
        let file = BufWriter::with_capacity(STAGING_BUFFER, Writeback::new(file));
        Ok(BlobWriter {
            store: self.clone(),
            out: Some(Staging::Copy { file, written: 0 }),
            tmp_path,
        })
    }

    /// Stores `bytes` as a blob (not rewritten if already present).
    pub fn put_blob(&self, bytes: &[u8]) -> Result<Digest> {
        let digest = Digest::of(bytes);
        if self.has_blob(&digest) {
            fsutil::touch(&self.blob_path(&digest))?;
            return Ok(digest);
        }
        let mut w = self.blob_writer()?;
        w.write_all(bytes)
            .map_err(StoreError::io("write blob staging file", &w.tmp_path))?;
        w.commit(Some((digest, bytes.len() as u64)))
    }

    /// Streams `reader` into a blob, checking `expected` (digest, size) if given.
    pub fn put_blob_from(
        &self,
        reader: &mut dyn Read,
        expected: Option<(Digest, u64)>,
    ) -> Result<Digest> {
        if let Some((digest, _)) = expected {
            if self.has_blob(&digest) {
                fsutil::touch(&self.blob_path(&digest))?;
                return Ok(digest);
            }
        }
        let mut w = self.blob_writer()?;
        io::copy(reader, &mut w)
            .map_err(StoreError::io("copy into blob staging file", &w.tmp_path))?;
        w.commit(expected)
    }

    /// Whether the blob is present.
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Opens a blob for reading.
    pub fn open_blob(&self, digest: &Digest) -> Result<File> {
        let path = self.blob_path(digest);
        File::open(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => StoreError::BlobNotFound(*digest),
            _ => StoreError::io("open blob", path)(e),
        })
    }

    /// The size in bytes of a blob.
    pub fn blob_size(&self, digest: &Digest) -> Result<u64> {
        let path = self.blob_path(digest);
        match fs::metadata(&path) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(StoreError::BlobNotFound(*digest)),
            Err(e) => Err(StoreError::io("stat blob", path)(e)),
        }
    }

    /// Reads a small blob (config, manifest) into memory.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        let file = self.open_blob(digest)?;
        let path = self.blob_path(digest);
        let mut bytes = Vec::new();
        file.take(READ_BLOB_LIMIT + 1)
            .read_to_end(&mut bytes)
            .map_err(StoreError::io("read blob", &path))?;
        if bytes.len() as u64 > READ_BLOB_LIMIT {
            return Err(StoreError::Corrupt {
                path,
                reason: format!(
                    "blob is larger than {READ_BLOB_LIMIT} bytes; stream it with open_blob instead"
                ),
            });
        }
        Ok(bytes)
    }
}

impl BlobWriter {
    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.out.as_ref().map_or(0, Staging::written)
    }

    /// Makes the blob visible under its digest and returns the digest.
    ///
    /// Steps, in the order containerd's local writer uses: flush and fsync
    /// the staging file, check size then digest against `expected` (a
    /// mismatch discards the data and names both values), treat an existing
    /// target as success, make the file read-only, rename it into
    /// `blobs/sha256/<hex>`, fsync the directory. A failure of that last
    /// fsync is logged, not returned: the blob is already correct. A
    /// [`Store::blob_copy_writer`] needs `expected`: its digest is that one.
    pub fn commit(mut self, expected: Option<(Digest, u64)>) -> Result<Digest> {
        let out = self.out.take().ok_or_else(|| StoreError::Corrupt {
            path: self.tmp_path.clone(),
            reason: "blob writer already committed".into(),
        })?;
        let (buffered, digest, size) = match out {
            Staging::Hashed(w) => w.finish(),
            Staging::Copy { file, written } => {
                let (digest, _) = expected.ok_or_else(|| StoreError::Corrupt {
                    path: self.tmp_path.clone(),
                    reason: "a blob copy was committed without the digest of its bytes".into(),
                })?;
                (file, digest, written)
            }
        };
        let file = buffered.into_inner().map_err(|e| {
            StoreError::io("flush blob staging file", &self.tmp_path)(e.into_error())
        })?;
        file.sync_all()
            .map_err(StoreError::io("fsync blob staging file", &self.tmp_path))?;
        drop(file);
        if let Some((want, want_size)) = expected {
            if size != want_size {
                return Err(StoreError::SizeMismatch {
                    digest: want,
                    expected: want_size,
                    actual: size,
                    actual_digest: digest,
                });
            }
            if digest != want {
                return Err(StoreError::DigestMismatch {
                    expected: want,
                    actual: digest,
                });
            }
        }
        let target = self.store.blob_path(&digest);
        if target.is_file() {
            fsutil::touch(&target)?;
            return Ok(digest);
        }
        fs::set_permissions(&self.tmp_path, fs::Permissions::from_mode(0o444))
            .map_err(StoreError::io("make blob read-only", &self.tmp_path))?;
        fs::rename(&self.tmp_path, &target).map_err(StoreError::io("rename blob into", &target))?;
        if let Err(e) = fsutil::fsync_dir(&self.store.blobs_dir()) {
            log::warn!("blob {digest} committed, but: {e}");
        }
        Ok(digest)
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.out.as_mut() {
            Some(Staging::Hashed(out)) => out.write(buf),
            Some(Staging::Copy { file, written }) => {
                let n = file.write(buf)?;
                *written += n as u64;
                Ok(n)
            }
            None => Err(io::Error::other("blob writer already committed")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.out.as_mut() {
            Some(Staging::Hashed(out)) => out.flush(),
            Some(Staging::Copy { file, .. }) => file.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        // After a successful rename the path no longer exists; otherwise
        // (error, mismatch, abandoned writer) this discards the staging file.
        let _ = fs::remove_file(&self.tmp_path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        (dir, store)
    }

    fn tmp_entries(store: &Store) -> usize {
        fs::read_dir(store.tmp_dir()).unwrap().count()
    }

    #[test]
    fn plain_write_is_hashed_and_read_only() {
        let (_d, s) = store();
        let mut w = s.blob_writer().unwrap();
        w.write_all(b"hello ").unwrap();
        assert!(!s.has_blob(&Digest::of(b"hello world")));
        w.write_all(b"world").unwrap();
        assert_eq!(w.written(), 11);
        let d = w.commit(None).unwrap();
        assert_eq!(d, Digest::of(b"hello world"));
        assert_eq!(s.read_blob(&d).unwrap(), b"hello world");
        assert_eq!(s.blob_size(&d).unwrap(), 11);
        let mode = fs::metadata(s.blob_path(&d)).unwrap().permissions().mode();
        assert_eq!(mode & 0o222, 0, "blob must be read-only");
        assert_eq!(tmp_entries(&s), 0);
    }

    #[test]
    fn existing_blob_is_success() {
        let (_d, s) = store();
        let a = s.put_blob(b"same").unwrap();
        let mut w = s.blob_writer().unwrap();
        w.write_all(b"same").unwrap();
        assert_eq!(w.commit(Some((a, 4))).unwrap(), a);
        assert_eq!(s.put_blob(b"same").unwrap(), a);
        assert_eq!(tmp_entries(&s), 0);
    }

    #[test]
    fn wrong_digest_names_both_and_discards() {
        let (_d, s) = store();
        let want = Digest::of(b"other");
        let mut w = s.blob_writer().unwrap();
        w.write_all(b"bytes").unwrap();
        let err = w.commit(Some((want, 5))).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(&want.to_string()), "{msg}");
        assert!(msg.contains(&Digest::of(b"bytes").to_string()), "{msg}");
        assert!(!s.has_blob(&Digest::of(b"bytes")));
        assert!(!s.has_blob(&want));
        assert_eq!(tmp_entries(&s), 0);
    }

    #[test]
    fn wrong_size_is_refused() {
        let (_d, s) = store();
        let d = Digest::of(b"bytes");
        let mut w = s.blob_writer().unwrap();
        w.write_all(b"bytes").unwrap();
        let err = w.commit(Some((d, 6))).unwrap_err();
        assert!(matches!(
            err,
            StoreError::SizeMismatch {
                expected: 6,
                actual: 5,
                ..
            }
        ));
        assert!(!s.has_blob(&d));
        assert_eq!(tmp_entries(&s), 0);
    }

    #[test]
    fn a_copy_takes_the_callers_digest_and_checks_the_size() {
        let (_d, s) = store();
        let data = vec![3u8; 3 << 20];
        let d = Digest::of(&data);
        let mut w = s.blob_copy_writer().unwrap();
        w.write_all(&data).unwrap();
        assert_eq!(w.written(), data.len() as u64);
        assert_eq!(w.commit(Some((d, data.len() as u64))).unwrap(), d);
        assert_eq!(s.blob_size(&d).unwrap(), data.len() as u64);

        let mut short = s.blob_copy_writer().unwrap();
        short.write_all(b"abc").unwrap();
        let other = Digest::of(b"abcd");
        assert!(matches!(
            short.commit(Some((other, 4))).unwrap_err(),
            StoreError::SizeMismatch { .. }
        ));
        assert!(!s.has_blob(&other));

        let mut nameless = s.blob_copy_writer().unwrap();
        nameless.write_all(b"abc").unwrap();
        assert!(nameless.commit(None).is_err());
        assert_eq!(tmp_entries(&s), 0);
    }

    #[test]
    fn blobs_past_the_writeback_step_keep_every_byte() {
        // 20 MiB in odd-sized writes: the writer starts writeback twice
        // (every 8 MiB) mid-stream; hashed and copy writers alike.
        let (_d, s) = store();
        let data: Vec<u8> = (0..20u32 << 20).map(|i| (i % 251) as u8).collect();
        let d = Digest::of(&data);
        for copy in [false, true] {
            let mut w = if copy {
                s.blob_copy_writer().unwrap()
            } else {
                s.blob_writer().unwrap()
            };
            for piece in data.chunks(1_000_003) {
                w.write_all(piece).unwrap();
            }
            assert_eq!(w.commit(Some((d, data.len() as u64))).unwrap(), d);
            assert_eq!(Digest::of(&fs::read(s.blob_path(&d)).unwrap()), d);
            fs::set_permissions(s.blob_path(&d), fs::Permissions::from_mode(0o644)).unwrap();
            fs::remove_file(s.blob_path(&d)).unwrap();
        }
        assert_eq!(tmp_entries(&s), 0);
    }

    #[test]
    fn abandoned_writer_leaves_nothing() {
        let (_d, s) = store();
        let mut w = s.blob_writer().unwrap();
        w.write_all(b"partial").unwrap();
        drop(w);
        assert_eq!(tmp_entries(&s), 0);
    }

    #[test]
    fn missing_blob_is_not_found() {
        let (_d, s) = store();
        let d = Digest::of(b"nope");
        assert!(s.open_blob(&d).unwrap_err().is_not_found());
        assert!(s.blob_size(&d).unwrap_err().is_not_found());
    }

    #[test]
    fn put_blob_from_streams_and_verifies() {
        let (_d, s) = store();
        let data = vec![7u8; 1 << 20];
        let d = Digest::of(&data);
        assert_eq!(
            s.put_blob_from(&mut &data[..], Some((d, data.len() as u64)))
                .unwrap(),
            d
        );
        assert_eq!(s.blob_size(&d).unwrap(), 1 << 20);
    }
}
