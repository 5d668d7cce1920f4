//! ADD: COPY plus local tar archives extracted and `http(s)://` downloads.
//!
//! - A local source that is a tar archive — plain, gzip, bzip2, xz or zstd,
//!   recognised by its *content*, never its name — is extracted into `dest`
//!   (a directory, trailing slash or not) through a [`Rootfs`] rooted at
//!   `dest`, as docker's chrooted untar does: no entry (`..`, absolute
//!   names, symlinks, symlinked parents, hard links) can land outside
//!   `dest`. File xattrs from pax headers (`SCHILY.xattr.*`) are applied.
//!   Any other source is copied as COPY does.
//! - A URL is streamed to a temporary file while it is hashed;
//!   `--checksum=sha256:…` must match (the error names both digests). The
//!   file keeps its name from the URL path (`__unnamed__` when it has
//!   none, as BuildKit), gets mode 0600 (docker's rule,
//!   `--chmod` overrides) and the `Last-Modified` time. Downloads are never
//!   extracted (docker's rule).
//! - Git sources are refused with a clear error: not supported yet.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use nix::sys::stat::SFlag;

use crate::digest::{Digest, DigestWriter};
use crate::layer::rootfs::{clean_image_path, Rootfs};

use super::context::SourceTree;
use super::copy::{
    dest_path, exclude_matcher, make_special, plan, CopyError, CopyOptions, CopyStats, Target,
    Writer,
};

/// Why an ADD failed.
#[derive(Debug, thiserror::Error)]
pub enum AddError {
    #[error(transparent)]
    Copy(#[from] CopyError),
    #[error("ADD {url}: checksum mismatch: expected {expected}, downloaded content is {actual}")]
    ChecksumMismatch {
        url: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("ADD --checksum can only be used with http(s):// sources, not {source_path:?}")]
    ChecksumNeedsUrl { source_path: String },
    #[error("ADD {url}: downloading failed: {reason}")]
    Download { url: String, reason: String },
    #[error("ADD {source_path}: git sources are not supported yet; clone in a RUN step or COPY a checked-out tree")]
    GitUnsupported { source_path: String },
    #[error("ADD: extracting archive {archive:?} at entry {entry:?}: {reason}")]
    Archive {
        archive: PathBuf,
        entry: String,
        reason: String,
    },
}

/// ADD's options: COPY's plus `--checksum` and `--keep-git-dir`.
#[derive(Debug, Clone, Default)]
pub struct AddOptions {
    pub copy: CopyOptions,
    pub checksum: Option<Digest>,
    pub keep_git_dir: bool,
}

/// Compression of a tar stream, as sniffed from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveKind {
    Tar,
    Gzip,
    Bzip2,
    Xz,
    Zstd,
}

/// Runs ADD: `sources` are context paths or URLs.
pub fn add_into(
    rootfs: &Rootfs,
    tree: &SourceTree,
    sources: &[String],
    dest: &str,
    opts: &AddOptions,
) -> Result<CopyStats, AddError> {
    let (dest_abs, dir_syntax) = dest_path(dest, &opts.copy.workdir);
    if sources.len() > 1 && !dir_syntax {
        return Err(CopyError::DestNotDir {
            dest: dest.to_string(),
        }
        .into());
    }
    let (urls, locals): (Vec<&String>, Vec<&String>) = sources.iter().partition(|s| is_url(s));
    for s in sources {
        if is_git(s) {
            return Err(AddError::GitUnsupported {
                source_path: s.clone(),
            });
        }
    }
    if opts.checksum.is_some() {
        if let Some(local) = locals.first() {
            return Err(AddError::ChecksumNeedsUrl {
                source_path: local.to_string(),
            });
        }
    }
    let mut writer = Writer::new(rootfs, tree, &opts.copy);
    if !locals.is_empty() {
        let locals: Vec<String> = locals.into_iter().cloned().collect();
        let plan = plan(rootfs, tree, &locals, dest, &opts.copy)?;
        let exclude = exclude_matcher(&opts.copy)?;
        for (m, target) in &plan.items {
            let kind = if m.meta.is_file() {
                sniff_file(&m.host).map_err(|source| CopyError::Io {
                    op: "reading",
                    path: m.host.clone(),
                    source,
                })?
            } else {
                None
            };
            match (kind, target) {
                (Some(kind), Target::File(_)) => {
                    let into = if opts.copy.parents {
                        match target {
                            Target::File(p) => {
                                p.parent().map(Path::to_path_buf).unwrap_or_default()
                            }
                            Target::DirContents(p) => p.clone(),
                        }
                    } else {
                        dest_abs.clone()
                    };
                    extract_file(&mut writer, rootfs, &m.host, kind, &into, &opts.copy)?;
                }
                _ => writer.copy_match(tree, m, target, &exclude)?,
            }
        }
    }
    for url in urls {
        add_url(
            &mut writer,
            rootfs,
            url,
            &dest_abs,
            dir_syntax,
            sources.len(),
            opts,
        )?;
    }
    Ok(writer.finish()?)
}

fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

fn is_git(s: &str) -> bool {
    s.starts_with("git@")
        || s.starts_with("git://")
        || (is_url(s)
            && s.split(['?', '#'])
                .next()
                .is_some_and(|p| p.ends_with(".git")))
}

/// The archive kind of a file, or `None` if it is not a tar stream.
pub fn sniff_file(path: &Path) -> io::Result<Option<ArchiveKind>> {
    let file = File::open(path)?;
    sniff(BufReader::new(file))
}

/// Sniffs a stream: a known compression magic whose decompressed start is a
/// tar header, or a plain tar header.
pub fn sniff(mut r: impl BufRead) -> io::Result<Option<ArchiveKind>> {
    let head = r.fill_buf()?.to_vec();
    let kind = compression_of(&head);
    let mut block = Vec::with_capacity(512);
    let decoded = decoder(kind, r)?;
    // A corrupt compressed stream is not an archive: copy it as it is.
    if decoded.take(512).read_to_end(&mut block).is_err() {
        return Ok(None);
    }
    Ok(is_tar_header(&block).then_some(kind))
}

fn compression_of(head: &[u8]) -> ArchiveKind {
    if head.starts_with(&[0x1f, 0x8b]) {
        ArchiveKind::Gzip
    } else if head.starts_with(b"BZh") {
        ArchiveKind::Bzip2
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        ArchiveKind::Xz
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        ArchiveKind::Zstd
    } else {
        ArchiveKind::Tar
    }
}

fn decoder<'r>(kind: ArchiveKind, r: impl BufRead + 'r) -> io::Result<Box<dyn Read + 'r>> {
    Ok(match kind {
        ArchiveKind::Tar => Box::new(r),
        ArchiveKind::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(r)),
        ArchiveKind::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(r)),
        ArchiveKind::Xz => Box::new(xz2::bufread::XzDecoder::new_multi_decoder(r)),
        ArchiveKind::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(r)?),
    })
}

/// A 512-byte block is a tar header if its checksum adds up (covers v7,
/// ustar, GNU and pax headers alike) and it names something.
fn is_tar_header(block: &[u8]) -> bool {
    if block.len() < 512 || block[0] == 0 {
        return false;
    }
    let field = &block[148..156];
    let text: String = field
        .iter()
        .take_while(|b| **b != 0 && **b != b' ')
        .map(|b| *b as char)
        .collect();
    let text = text.trim();
    let Ok(stored) = u32::from_str_radix(text, 8) else {
        return false;
    };
    let sum: u32 = block[..512]
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                u32::from(b' ')
            } else {
                u32::from(*b)
            }
        })
        .sum();
    sum == stored
}

/// What pax records say about an entry beyond its ustar header.
#[derive(Debug, Default)]
struct PaxMeta {
    mtime: Option<(i64, u32)>,
    uid: Option<u32>,
    gid: Option<u32>,
    /// `SCHILY.xattr.*` records (file capabilities and the like).
    xattrs: Vec<(String, Vec<u8>)>,
    /// GNU PAX sparse 1.0: the real name and size; the data starts with the map.
    sparse: Option<(Option<String>, u64)>,
    /// Older PAX sparse formats (0.0, 0.1), which are refused.
    old_sparse: bool,
}

fn pax_meta<R: Read>(entry: &mut tar::Entry<R>) -> PaxMeta {
    let mut meta = PaxMeta::default();
    let Ok(Some(exts)) = entry.pax_extensions() else {
        return meta;
    };
    let (mut major, mut minor, mut name, mut realsize) = (None, None, None, None);
    for ext in exts.flatten() {
        let Ok(key) = ext.key() else { continue };
        let value = ext.value().unwrap_or("");
        match key {
            "mtime" => meta.mtime = parse_pax_time(value),
            "uid" => meta.uid = value.parse().ok(),
            "gid" => meta.gid = value.parse().ok(),
            "GNU.sparse.major" => major = Some(value.to_string()),
            "GNU.sparse.minor" => minor = Some(value.to_string()),
            "GNU.sparse.name" => name = Some(value.to_string()),
            "GNU.sparse.realsize" | "GNU.sparse.size" => realsize = value.parse().ok(),
            "GNU.sparse.map" | "GNU.sparse.offset" | "GNU.sparse.numblocks" => {
                meta.old_sparse = true
            }
            k => {
                if let Some(x) = k.strip_prefix("SCHILY.xattr.") {
                    meta.xattrs
                        .push((x.to_string(), ext.value_bytes().to_vec()));
                }
            }
        }
    }
    if major.as_deref() == Some("1") && minor.as_deref() == Some("0") {
        meta.sparse = Some((name, realsize.unwrap_or(0)));
    }
    meta
}

/// A pax time, `secs[.fraction]`, to (secs, nanos).
fn parse_pax_time(v: &str) -> Option<(i64, u32)> {
    let (secs, frac) = v.split_once('.').unwrap_or((v, ""));
    let secs: i64 = secs.parse().ok()?;
    let digits: String = frac.chars().take(9).collect();
    let nanos = if digits.is_empty() {
        0
    } else {
        format!("{digits:0<9}").parse().ok()?
    };
    // A negative time with a fraction counts back from secs.
    Some(if secs < 0 && nanos > 0 {
        (secs - 1, 1_000_000_000 - nanos)
    } else {
        (secs, nanos)
    })
}

fn apply_xattrs(xattrs: &[(String, Vec<u8>)], target: &crate::layer::rootfs::Entry) {
    for (name, value) in xattrs {
        if let Err(e) = xattr::set(target.host(), name, value) {
            log::warn!("setting xattr {name} on {:?}: {e}", target.path());
        }
    }
}

/// Writes a GNU PAX 1.0 sparse member: a decimal map (count, then offset
/// and size per chunk, one per line, padded to 512 bytes), then the chunks.
fn write_sparse(mut data: impl Read, out: &mut File, realsize: u64) -> io::Result<u64> {
    let mut consumed = 0u64;
    let read_number = |data: &mut dyn Read, consumed: &mut u64| -> io::Result<u64> {
        let mut digits = String::new();
        loop {
            let mut b = [0u8; 1];
            data.read_exact(&mut b)?;
            *consumed += 1;
            match b[0] {
                b'\n' => break,
                c @ b'0'..=b'9' if digits.len() < 20 => digits.push(c as char),
                _ => return Err(io::Error::new(io::ErrorKind::InvalidData, "bad sparse map")),
            }
        }
        digits
            .parse()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad sparse map"))
    };
    let count = read_number(&mut data, &mut consumed)?;
    let mut chunks = Vec::new();
    for _ in 0..count.min(1 << 20) {
        let offset = read_number(&mut data, &mut consumed)?;
        let size = read_number(&mut data, &mut consumed)?;
        chunks.push((offset, size));
    }
    let pad = (512 - consumed % 512) % 512;
    io::copy(&mut (&mut data).take(pad), &mut io::sink())?;
    let mut written = 0;
    for (offset, size) in chunks {
        if offset.checked_add(size).is_none_or(|end| end > realsize) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "sparse chunk past the file's end",
            ));
        }
        out.seek(io::SeekFrom::Start(offset))?;
        let n = io::copy(&mut (&mut data).take(size), out)?;
        if n != size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "sparse data ends early",
            ));
        }
        written += n;
    }
    out.set_len(realsize)?;
    Ok(written)
}

/// The device number of a char/block entry.
fn device(header: &tar::Header) -> u64 {
    let major = header.device_major().ok().flatten().unwrap_or(0);
    let minor = header.device_minor().ok().flatten().unwrap_or(0);
    nix::sys::stat::makedev(u64::from(major), u64::from(minor))
}

/// `name` from an archive as a clean relative path: `..` clamped at the
/// archive root, leading `/` dropped.
fn archive_rel(name: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in name.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

fn extract_file(
    writer: &mut Writer,
    rootfs: &Rootfs,
    archive_path: &Path,
    kind: ArchiveKind,
    into: &Path,
    opts: &CopyOptions,
) -> Result<(), AddError> {
    let io_err = |entry: &str, e: &dyn std::fmt::Display| AddError::Archive {
        archive: archive_path.to_path_buf(),
        entry: entry.to_string(),
        reason: e.to_string(),
    };
    let file = File::open(archive_path).map_err(|e| io_err("", &e))?;
    let stream = decoder(kind, BufReader::new(file)).map_err(|e| io_err("", &e))?;
    // Docker and BuildKit extract chrooted into the destination: the
    // archive's `/`, `..` and absolute symlinks all stop at `into`.
    let into_host = rootfs
        .create_dir_all(into, writer.new_dir())
        .map_err(CopyError::from)?;
    let rootfs = &Rootfs::new(into_host);
    let into = Path::new("/");
    let mut archive = tar::Archive::new(stream);
    let mut dir_times = Vec::new();
    let mut last_parent: Option<PathBuf> = None;
    for entry in archive.entries().map_err(|e| io_err("", &e))? {
        let mut entry = entry.map_err(|e| io_err("", &e))?;
        let pax = pax_meta(&mut entry);
        let mut raw_name = entry.path().map_err(|e| io_err("", &e))?.into_owned();
        if let Some((Some(real), _)) = &pax.sparse {
            raw_name = PathBuf::from(real);
        }
        let name = raw_name.display().to_string();
        if pax.old_sparse {
            return Err(io_err(&name, &"GNU PAX sparse format 0.x is not supported; re-create the archive with --format=gnu or without --sparse"));
        }
        let rel = archive_rel(&raw_name);
        let path = clean_image_path(into.join(&rel));
        let header = entry.header().clone();
        let mode = opts
            .chmod
            .unwrap_or(header.mode().unwrap_or(0o644) & 0o7777);
        let owner = opts.chown.unwrap_or((
            pax.uid.unwrap_or(header.uid().unwrap_or(0) as u32),
            pax.gid.unwrap_or(header.gid().unwrap_or(0) as u32),
        ));
        let (mtime, mtime_ns) = pax.mtime.unwrap_or((header.mtime().unwrap_or(0) as i64, 0));
        let kind = header.entry_type();
        let result: Result<(), CopyError> = (|| {
            if let Some(parent) = path.parent() {
                // Siblings come in a row: their parent was just made. Each
                // write below still resolves its own path inside the root.
                if last_parent.as_deref() != Some(parent) {
                    rootfs.create_dir_all(parent, writer.new_dir())?;
                    last_parent = Some(parent.to_path_buf());
                }
            }
            match kind {
                tar::EntryType::Directory => {
                    if rel.as_os_str().is_empty() {
                        return Ok(());
                    }
                    if rootfs.symlink_metadata(&path)?.is_some_and(|m| !m.is_dir()) {
                        rootfs.remove(&path)?;
                    }
                    rootfs.create_dir_all(&path, writer.new_dir())?;
                    let dir = rootfs.entry(&path)?;
                    dir.set_owner(owner.0, owner.1)?;
                    dir.set_mode(mode)?;
                    apply_xattrs(&pax.xattrs, &dir);
                    dir_times.push((path.clone(), mtime, mtime_ns));
                    Ok(())
                }
                tar::EntryType::Regular
                | tar::EntryType::Continuous
                | tar::EntryType::GNUSparse => {
                    let target = rootfs.entry(&path)?;
                    if target.metadata()?.is_some_and(|m| m.is_dir()) {
                        target.remove()?;
                    }
                    if let Some((_, realsize)) = pax.sparse {
                        let mut out = target.create_file(mode)?;
                        write_sparse(&mut entry, &mut out, realsize).map_err(|source| {
                            CopyError::Io {
                                op: "writing sparse file",
                                path: path.clone(),
                                source,
                            }
                        })?;
                        drop(out);
                        target.set_owner(owner.0, owner.1)?;
                        target.set_mode(mode)?;
                    } else {
                        writer.write_file_at(&target, &mut entry, mode, owner)?;
                    }
                    target.set_mtime(mtime, mtime_ns)?;
                    apply_xattrs(&pax.xattrs, &target);
                    Ok(())
                }
                tar::EntryType::Symlink => {
                    let target = entry
                        .link_name()
                        .ok()
                        .flatten()
                        .map(|t| t.into_owned())
                        .unwrap_or_default();
                    rootfs.symlink(&path, &target)?;
                    rootfs.set_owner(&path, owner.0, owner.1)?;
                    rootfs.set_mtime(&path, mtime, mtime_ns)?;
                    Ok(())
                }
                tar::EntryType::Link => {
                    let target = entry
                        .link_name()
                        .ok()
                        .flatten()
                        .map(|t| archive_rel(&t))
                        .unwrap_or_default();
                    // Hard links point inside the archive's own tree only.
                    rootfs.hard_link(&path, clean_image_path(into.join(target)))?;
                    Ok(())
                }
                tar::EntryType::Fifo | tar::EntryType::Char | tar::EntryType::Block => {
                    let target = rootfs.entry(&path)?;
                    let (sflag, dev) = match kind {
                        tar::EntryType::Fifo => (SFlag::S_IFIFO, 0),
                        tar::EntryType::Char => (SFlag::S_IFCHR, device(&header)),
                        _ => (SFlag::S_IFBLK, device(&header)),
                    };
                    if !make_special(&target, sflag, dev)? {
                        return Ok(());
                    }
                    target.set_owner(owner.0, owner.1)?;
                    target.set_mode(mode)?;
                    target.set_mtime(mtime, mtime_ns)?;
                    Ok(())
                }
                other => {
                    log::warn!("ADD {archive_path:?}: skipping {name:?} ({other:?} entries are not extracted)");
                    Ok(())
                }
            }
        })();
        result.map_err(|e| io_err(&name, &e))?;
    }
    for (path, mtime, mtime_ns) in dir_times.iter().rev() {
        rootfs
            .set_mtime(path, *mtime, *mtime_ns)
            .map_err(CopyError::from)?;
    }
    Ok(())
}

fn add_url(
    writer: &mut Writer,
    rootfs: &Rootfs,
    url: &str,
    dest_abs: &Path,
    dir_syntax: bool,
    nsources: usize,
    opts: &AddOptions,
) -> Result<(), AddError> {
    let download = |reason: String| AddError::Download {
        url: url.to_string(),
        reason,
    };
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(30))
        .timeout_read(Duration::from_secs(300))
        .try_proxy_from_env(true)
        .build();
    let resp = agent.get(url).call().map_err(|e| download(e.to_string()))?;
    let last_modified = resp.header("Last-Modified").and_then(parse_http_date);
    let mut tmp =
        tempfile::tempfile().map_err(|e| download(format!("creating a temporary file: {e}")))?;
    let mut w = DigestWriter::new(&mut tmp);
    io::copy(&mut resp.into_reader(), &mut w).map_err(|e| download(e.to_string()))?;
    let (_, actual, _) = w.finish();
    if let Some(expected) = opts.checksum {
        if expected != actual {
            return Err(AddError::ChecksumMismatch {
                url: url.to_string(),
                expected,
                actual,
            });
        }
    }
    let name = url_file_name(url);
    let dest_is_dir = rootfs
        .metadata(dest_abs)
        .map_err(CopyError::from)?
        .is_some_and(|m| m.is_dir());
    let path = if dir_syntax || dest_is_dir || nsources > 1 {
        // BuildKit's name for a URL whose path has no last segment.
        dest_abs.join(name.as_deref().unwrap_or("__unnamed__"))
    } else {
        dest_abs.to_path_buf()
    };
    tmp.rewind().map_err(|e| download(e.to_string()))?;
    if let Some(parent) = path.parent() {
        rootfs
            .create_dir_all(parent, writer.new_dir())
            .map_err(CopyError::from)?;
    }
    let mode = opts.copy.chmod.unwrap_or(0o600);
    writer.write_file(tmp, &path, mode, opts.copy.chown.unwrap_or((0, 0)))?;
    if let Some(secs) = last_modified {
        rootfs.set_mtime(&path, secs, 0).map_err(CopyError::from)?;
    }
    Ok(())
}

/// The last non-empty segment of a URL's path, percent-decoding left out
/// (docker keeps it as written).
pub fn url_file_name(url: &str) -> Option<String> {
    let after_scheme = url.split_once("://").map_or(url, |(_, r)| r);
    let path = after_scheme.split(['?', '#']).next().unwrap_or("");
    let path = path.split_once('/').map(|(_, p)| p)?;
    path.rsplit('/')
        .find(|s| !s.is_empty() && *s != "." && *s != "..")
        .map(str::to_string)
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` (RFC 9110 IMF-fixdate) to Unix seconds.
pub fn parse_http_date(s: &str) -> Option<i64> {
    time::OffsetDateTime::parse(s.trim(), &time::format_description::well_known::Rfc2822)
        .ok()
        .map(|t| t.unix_timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_from_urls() {
        assert_eq!(
            url_file_name("http://h/a/b.tar.gz").as_deref(),
            Some("b.tar.gz")
        );
        assert_eq!(
            url_file_name("https://h:8080/x/y/?q=1#f").as_deref(),
            Some("y")
        );
        assert_eq!(url_file_name("http://h/"), None);
        assert_eq!(url_file_name("http://h"), None);
    }

    #[test]
    fn http_dates() {
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(parse_http_date("garbage"), None);
    }

    #[test]
    fn pax_times() {
        assert_eq!(parse_pax_time("1600000000"), Some((1_600_000_000, 0)));
        assert_eq!(
            parse_pax_time("1600000000.5"),
            Some((1_600_000_000, 500_000_000))
        );
        assert_eq!(parse_pax_time("1.1234567891"), Some((1, 123_456_789)));
        assert_eq!(parse_pax_time("-1.25"), Some((-2, 750_000_000)));
        assert_eq!(parse_pax_time("x"), None);
    }

    #[test]
    fn pax_sparse_map_is_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let mut out = File::create(dir.path().join("f")).unwrap();
        let mut data = b"2\n3\n2\n10\n1\n".to_vec();
        data.resize(512, 0);
        data.extend_from_slice(b"abZ");
        write_sparse(&data[..], &mut out, 16).unwrap();
        let got = std::fs::read(dir.path().join("f")).unwrap();
        assert_eq!(got, b"\0\0\0ab\0\0\0\0\0Z\0\0\0\0\0");
        let mut bad = b"1\n10\n9\n".to_vec();
        bad.resize(512, 0);
        assert!(write_sparse(&bad[..], &mut out, 16).is_err());
    }

    #[test]
    fn git_sources_are_recognised() {
        assert!(is_git("git@github.com:o/r.git"));
        assert!(is_git("https://github.com/o/r.git#main"));
        assert!(!is_git("https://example.com/file.tar.gz"));
    }

    #[test]
    fn tar_header_checksum() {
        let mut h = tar::Header::new_gnu();
        h.set_path("x").unwrap();
        h.set_size(0);
        h.set_cksum();
        assert!(is_tar_header(h.as_bytes()));
        let mut bad = h.as_bytes().to_vec();
        bad[0] = b'y';
        assert!(!is_tar_header(&bad));
        assert!(!is_tar_header(&[0u8; 512]));
        assert!(!is_tar_header(b"short"));
    }
}
