//! Layer compression: media types, the one-pass export of a layer
//! directory, and sniffing decompression for reading any layer blob.
//!
//! [`export_layer`] streams tar → sha256 (diff ID) → compressor → sha256
//! (blob digest) → output in a single pass: nothing is written twice and
//! no temporary file is made. Gzip is [`ParGzEncoder`] (parallel,
//! thread-count independent), zstd uses libzstd's own worker threads (its
//! output is the same for any number of workers ≥ 1). Both levels are fixed
//! so a layer's blob digest is reproducible.

use std::fmt;
use std::io::{self, BufReader, Read, Write};
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::diff::{write_diff_tar, DiffStats, TarOptions};
use super::error::{LayerError, Result};
use super::pgzip::ParGzEncoder;
use super::pipe;
use super::tee::Tee;
use crate::digest::{Digest, DigestWriter};

/// gzip level. zlib-rs level 1 (zlib-ng's `deflate_quick`, static Huffman
/// codes only) makes layers of text and binaries about a fifth larger than
/// `gzip -1`; level 3 (`deflate_fast`) is within 5% of `gzip -6` at twice
/// level 1's CPU and about the same as level 2's. Incompressible data costs
/// the same at every level: the encoder stores it (see `pgzip`).
pub const GZIP_LEVEL: u32 = 3;
/// zstd level, as `zstd -3` (the CLI default).
pub const ZSTD_LEVEL: i32 = 3;

/// zstd job size: a fixed value, so output stays independent of the thread count.
pub const ZSTD_JOB_SIZE: u32 = 2 << 20;

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// The OCI image-spec media type of a layer compressed this way.
    pub fn oci_media_type(self) -> &'static str {
        match self {
            Compression::None => "application/vnd.oci.image.layer.v1.tar",
            Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }

    /// The Docker schema 2 media type. Docker defines none for zstd: a
    /// docker-format image with zstd layers is refused by docker itself, so
    /// callers must choose gzip (or OCI) there.
    pub fn docker_media_type(self) -> Option<&'static str> {
        match self {
            Compression::None => Some("application/vnd.docker.image.rootfs.diff.tar"),
            Compression::Gzip => Some("application/vnd.docker.image.rootfs.diff.tar.gzip"),
            Compression::Zstd => None,
        }
    }

    /// The compression a layer media type (OCI or Docker) declares.
    pub fn from_media_type(media_type: &str) -> Option<Compression> {
        match media_type {
            "application/vnd.oci.image.layer.v1.tar"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar"
            | "application/vnd.docker.image.rootfs.diff.tar" => Some(Compression::None),
            "application/vnd.oci.image.layer.v1.tar+gzip"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => {
                Some(Compression::Gzip)
            }
            "application/vnd.oci.image.layer.v1.tar+zstd"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd" => {
                Some(Compression::Zstd)
            }
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a compression name was not understood.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown compression format {0:?}: expected gzip, zstd or none")]
pub struct UnknownCompression(pub String);

impl FromStr for Compression {
    type Err = UnknownCompression;

    fn from_str(s: &str) -> Result<Compression, UnknownCompression> {
        match s {
            "none" | "uncompressed" => Ok(Compression::None),
            "gzip" => Ok(Compression::Gzip),
            "zstd" => Ok(Compression::Zstd),
            _ => Err(UnknownCompression(s.to_string())),
        }
    }
}

/// What an export produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exported {
    /// sha256 of the uncompressed tar.
    pub diff_id: Digest,
    /// Size of the uncompressed tar.
    pub diff_size: u64,
    /// sha256 of the bytes written to `out`.
    pub blob_digest: Digest,
    pub blob_size: u64,
    pub compression: Compression,
    pub stats: DiffStats,
}

/// Worker threads for compression: every core.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A writer compressing with `compression`; `finish` ends the stream.
pub enum Compressor<W: Write> {
    None(W),
    Gzip(ParGzEncoder<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> Compressor<W> {
    /// Output does not depend on `threads` (for gzip and for zstd).
    pub fn new(compression: Compression, threads: usize, out: W) -> io::Result<Compressor<W>> {
        let threads = threads.max(1);
        Ok(match compression {
            Compression::None => Compressor::None(out),
            Compression::Gzip => Compressor::Gzip(ParGzEncoder::new(out, GZIP_LEVEL, threads)?),
            Compression::Zstd => {
                let mut enc = zstd::stream::write::Encoder::new(out, ZSTD_LEVEL)?;
                // Always ≥ 1 worker: single-threaded mode (0) frames output differently.
                enc.multithread(threads as u32)?;
                enc.include_checksum(true)?;
                // Smaller jobs than libzstd's default (4 × window = 8 MiB at
                // level 3) keep the in-flight buffers, and so peak RSS, low.
                enc.set_parameter(zstd::stream::raw::CParameter::JobSize(ZSTD_JOB_SIZE))?;
                Compressor::Zstd(enc)
            }
        })
    }

    pub fn finish(self) -> io::Result<W> {
        match self {
            Compressor::None(mut w) => {
                w.flush()?;
                Ok(w)
            }
            Compressor::Gzip(e) => e.finish(),
            Compressor::Zstd(e) => e.finish(),
        }
    }
}

impl<W: Write> Write for Compressor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Compressor::None(w) => w.write(buf),
            Compressor::Gzip(e) => e.write(buf),
            Compressor::Zstd(e) => e.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Compressor::None(w) => w.flush(),
            Compressor::Gzip(e) => e.flush(),
            Compressor::Zstd(e) => e.flush(),
        }
    }
}

/// Exports the layer in `dir` as one compressed blob written to `out`, in a
/// single pass, with [`default_threads`] workers.
pub fn export_layer(
    dir: &Path,
    opts: &TarOptions,
    compression: Compression,
    out: impl Write,
) -> Result<Exported> {
    export_layer_threads(dir, opts, compression, default_threads(), out)
}

/// [`export_layer`] with an explicit number of compression threads (the
/// output is the same for every value).
pub fn export_layer_threads(
    dir: &Path,
    opts: &TarOptions,
    compression: Compression,
    threads: usize,
    out: impl Write,
) -> Result<Exported> {
    if compression == Compression::None {
        let mut blob = DigestWriter::new(out);
        let stats = write_diff_tar(dir, opts, &mut blob)?;
        let (_, digest, size) = blob.finish();
        return Ok(Exported {
            diff_id: digest,
            diff_size: size,
            blob_digest: digest,
            blob_size: size,
            compression,
            stats,
        });
    }
    // Stages on their own threads, as `tar | tee >(sha256) | zstd | sha256`
    // runs as processes: one thread walks and reads, one hashes the tar
    // (diff ID), the compressor's workers compress, and this thread hashes
    // and writes the blob (so `out` need not be `Send`).
    std::thread::scope(|scope| {
        let (pipe, receiver) = pipe::channel();
        let producer = scope.spawn(move || -> Result<(DiffStats, Digest, u64)> {
            let (tar_hash, tar_hasher) = pipe::spawn(scope, io::sink());
            let compressed = (|| {
                let compressor =
                    Compressor::new(compression, threads, pipe).map_err(LayerError::Write)?;
                let mut tee = Tee {
                    main: compressor,
                    copy: tar_hash,
                };
                let stats = write_diff_tar(dir, opts, &mut tee)?;
                tee.copy.close().map_err(LayerError::Write)?;
                let pipe = tee.main.finish().map_err(LayerError::Write)?;
                pipe.close().map_err(LayerError::Write)?;
                Ok(stats)
            })();
            let (_, diff_id, diff_size) = tar_hasher
                .join()
                .map_err(|_| panicked("tar hashing"))?
                .map_err(LayerError::Write)?;
            Ok((compressed?, diff_id, diff_size))
        });
        let written = receiver.drain_into(out);
        let produced = producer.join().map_err(|_| panicked("layer walking"))?;
        // The output's own error (disk full…) explains the producer's broken
        // pipe better than the pipe does, so it wins.
        let (_, blob_digest, blob_size) = written.map_err(LayerError::Write)?;
        let (stats, diff_id, diff_size) = produced?;
        Ok(Exported {
            diff_id,
            diff_size,
            blob_digest,
            blob_size,
            compression,
            stats,
        })
    })
}

fn panicked(what: &str) -> LayerError {
    LayerError::Write(io::Error::other(format!("the {what} thread panicked")))
}

/// [`export_layer`] for a committed layer whose diff ID is known: fails with
/// [`LayerError::DiffIdMismatch`] when the stream hashes differently (the
/// blob written to `out` must then be discarded by the caller).
pub fn export_layer_verified(
    dir: &Path,
    opts: &TarOptions,
    compression: Compression,
    expected_diff_id: Digest,
    out: impl Write,
) -> Result<Exported> {
    let exported = export_layer(dir, opts, compression, out)?;
    if exported.diff_id != expected_diff_id {
        return Err(LayerError::DiffIdMismatch {
            dir: dir.to_path_buf(),
            expected: expected_diff_id,
            found: exported.diff_id,
        });
    }
    Ok(exported)
}

/// A stream format recognised by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamFormat {
    Plain,
    Gzip,
    Zstd,
    Bzip2,
    Xz,
}

/// Recognises gzip, zstd, bzip2 and xz by their magic numbers; anything else
/// is taken as plain (a tar, or garbage the tar reader will reject).
pub fn sniff(head: &[u8]) -> StreamFormat {
    if head.starts_with(&[0x1f, 0x8b]) {
        StreamFormat::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        StreamFormat::Zstd
    } else if head.starts_with(b"BZh") {
        StreamFormat::Bzip2
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        StreamFormat::Xz
    } else {
        StreamFormat::Plain
    }
}

/// A reader that decompresses `r` whatever it is compressed with (gzip,
/// zstd, bzip2, xz — multi-member streams included) or passes it through.
pub fn decompressing_reader<'a, R: Read + Send + 'a>(r: R) -> Result<Box<dyn Read + Send + 'a>> {
    Ok(decompressing_reader_format(r)?.1)
}

/// [`decompressing_reader`], also saying which format was found.
pub fn decompressing_reader_format<'a, R: Read + Send + 'a>(
    r: R,
) -> Result<(StreamFormat, Box<dyn Read + Send + 'a>)> {
    let mut r = r;
    let (head, got) = read_head::<6, _>(&mut r)?;
    let format = sniff(&head[..got]);
    let buf = BufReader::with_capacity(256 * 1024, io::Cursor::new(head).take(got as u64).chain(r));
    let read_err = |e| LayerError::Read {
        entry: None,
        source: e,
    };
    let reader: Box<dyn Read + Send + 'a> = match format {
        StreamFormat::Plain => Box::new(buf),
        StreamFormat::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buf)),
        StreamFormat::Zstd => {
            Box::new(zstd::stream::read::Decoder::with_buffer(buf).map_err(read_err)?)
        }
        StreamFormat::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(buf)),
        StreamFormat::Xz => Box::new(xz2::bufread::XzDecoder::new_multi_decoder(buf)),
    };
    Ok((format, reader))
}

/// Reads up to `N` bytes (fewer only at end of stream).
fn read_head<const N: usize, R: Read>(r: &mut R) -> Result<([u8; N], usize)> {
    let mut head = [0u8; N];
    let mut got = 0;
    while got < N {
        match r.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(LayerError::Read {
                    entry: None,
                    source: e,
                })
            }
        }
    }
    Ok((head, got))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_media_types() {
        for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
            assert_eq!(c.name().parse::<Compression>().unwrap(), c);
            assert_eq!(Compression::from_media_type(c.oci_media_type()), Some(c));
            if let Some(d) = c.docker_media_type() {
                assert_eq!(Compression::from_media_type(d), Some(c));
            }
        }
        assert!("lz4".parse::<Compression>().is_err());
    }

    #[test]
    fn verified_export_catches_a_changed_layer() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), b"one").unwrap();
        let opts = TarOptions::default();
        let (id, _) = crate::layer::diff_id(dir.path(), &opts).unwrap();
        let ok = export_layer_verified(dir.path(), &opts, Compression::Gzip, id, io::sink());
        assert_eq!(ok.unwrap().diff_id, id);
        std::fs::write(dir.path().join("f"), b"two").unwrap();
        let err = export_layer_verified(dir.path(), &opts, Compression::Gzip, id, io::sink());
        assert!(
            matches!(err, Err(LayerError::DiffIdMismatch { .. })),
            "{err:?}"
        );
    }

    #[test]
    fn sniffs_and_decompresses_every_format() {
        let data = b"some tar bytes, repeated ".repeat(1000);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&data).unwrap();
        let gz = gz.finish().unwrap();
        let zst = zstd::encode_all(&data[..], 3).unwrap();
        let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        bz.write_all(&data).unwrap();
        let bz = bz.finish().unwrap();
        let mut xz = xz2::write::XzEncoder::new(Vec::new(), 1);
        xz.write_all(&data).unwrap();
        let xz = xz.finish().unwrap();
        for (bytes, want) in [
            (&data[..], StreamFormat::Plain),
            (&gz[..], StreamFormat::Gzip),
            (&zst[..], StreamFormat::Zstd),
            (&bz[..], StreamFormat::Bzip2),
            (&xz[..], StreamFormat::Xz),
        ] {
            let (format, mut r) = decompressing_reader_format(bytes).unwrap();
            assert_eq!(format, want);
            let mut back = Vec::new();
            r.read_to_end(&mut back).unwrap();
            assert_eq!(back, data, "{want:?}");
        }
        let mut empty = Vec::new();
        decompressing_reader(&b""[..])
            .unwrap()
            .read_to_end(&mut empty)
            .unwrap();
        assert!(empty.is_empty());
    }
}
