//! A streaming tar reader for extraction: ustar, GNU and PAX.
//!
//! Written here rather than taken from the `tar` crate because that crate
//! splits PAX records on newlines instead of using their length prefix, so
//! a path or an xattr value containing `\n` — a binary `security.capability`
//! can — is silently misread. PAX records here are parsed by length; PAX
//! `path`, `linkpath`, `size`, `uid`, `gid`, `mtime` and `SCHILY.xattr.*`
//! override the header, as do GNU long names (`L`) and long links (`K`).
//! Header-only types (links, devices, directories, FIFOs) carry no data,
//! as in Go's `archive/tar`. Memory is bounded: extended headers are
//! limited to [`MAX_EXTENDED`] bytes and file data is streamed.

use std::io::{self, Read};

use super::tar_writer::Xattrs;

const BLOCK: usize = 512;
/// The largest PAX or GNU long-name header accepted.
pub const MAX_EXTENDED: u64 = 16 << 20;

/// One entry's header, every override applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadEntry {
    pub path: Vec<u8>,
    /// The raw typeflag (`b'0'`, `b'5'`, …; `0` is read as `b'0'`).
    pub typeflag: u8,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: i64,
    /// Bytes of data that follow (0 for header-only types).
    pub size: u64,
    pub link: Vec<u8>,
    pub dev_major: u32,
    pub dev_minor: u32,
    pub xattrs: Xattrs,
}

/// Reads entries one after another; the data of the current entry is read
/// with [`TarReader::data`], and skipped if left unread.
pub struct TarReader<R: Read> {
    inner: R,
    /// Unread data of the current entry, then its padding.
    remaining: u64,
    padding: u64,
    done: bool,
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// Overrides collected from PAX / GNU extended headers for the next entry.
#[derive(Default)]
struct Pending {
    path: Option<Vec<u8>>,
    link: Option<Vec<u8>>,
    size: Option<u64>,
    uid: Option<u64>,
    gid: Option<u64>,
    mtime: Option<i64>,
    xattrs: Xattrs,
}

impl<R: Read> TarReader<R> {
    pub fn new(inner: R) -> TarReader<R> {
        TarReader {
            inner,
            remaining: 0,
            padding: 0,
            done: false,
        }
    }

    /// The underlying reader, positioned after the end-of-archive block (or
    /// wherever reading stopped).
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// The next entry, or `None` at the end of the archive.
    pub fn next_entry(&mut self) -> io::Result<Option<ReadEntry>> {
        let mut pending = Pending::default();
        loop {
            self.skip_rest()?;
            if self.done {
                return Ok(None);
            }
            let mut block = [0u8; BLOCK];
            if !read_block(&mut self.inner, &mut block)? {
                // No end-of-archive marker: accept the stream's end as one.
                self.done = true;
                return Ok(None);
            }
            if block.iter().all(|&b| b == 0) {
                self.done = true;
                return Ok(None);
            }
            check_sum(&block)?;
            let typeflag = match block[156] {
                0 => b'0',
                t => t,
            };
            let size = numeric(&block[124..136]).map_err(|e| invalid(format!("size: {e}")))?;
            match typeflag {
                b'x' | b'g' | b'L' | b'K' => {
                    if size > MAX_EXTENDED {
                        return Err(invalid(format!(
                            "extended header of {size} bytes is larger than the {MAX_EXTENDED} allowed"
                        )));
                    }
                    let data = self.read_extended(size)?;
                    match typeflag {
                        b'x' => parse_pax(&data, &mut pending)?,
                        // Global headers would apply to every later entry;
                        // no layer writer uses them for anything we keep.
                        b'g' => {}
                        b'L' => pending.path = Some(trim_nul(data)),
                        _ => pending.link = Some(trim_nul(data)),
                    }
                    continue;
                }
                _ => {}
            }
            let gnu = &block[257..265] == b"ustar  \0";
            let mut path = cstr(&block[..100]).to_vec();
            if !gnu && &block[257..262] == b"ustar" {
                let prefix = cstr(&block[345..500]);
                if !prefix.is_empty() {
                    let mut full = prefix.to_vec();
                    full.push(b'/');
                    full.extend_from_slice(&path);
                    path = full;
                }
            }
            let num = |range: std::ops::Range<usize>, what: &str| {
                numeric(&block[range]).map_err(|e| invalid(format!("{what}: {e}")))
            };
            let header_only = matches!(typeflag, b'1' | b'2' | b'3' | b'4' | b'5' | b'6');
            let mut entry = ReadEntry {
                path: pending.path.take().unwrap_or(path),
                typeflag,
                mode: (num(100..108, "mode")? & 0o7777) as u32,
                uid: pending.uid.unwrap_or(num(108..116, "uid")?),
                gid: pending.gid.unwrap_or(num(116..124, "gid")?),
                mtime: match pending.mtime {
                    Some(m) => m,
                    None => signed_numeric(&block[136..148])
                        .map_err(|e| invalid(format!("mtime: {e}")))?,
                },
                size: pending.size.unwrap_or(size),
                link: pending
                    .link
                    .take()
                    .unwrap_or_else(|| cstr(&block[157..257]).to_vec()),
                dev_major: 0,
                dev_minor: 0,
                xattrs: std::mem::take(&mut pending.xattrs),
            };
            if matches!(typeflag, b'3' | b'4') {
                // Some writers leave these fields empty or garbage for non-devices;
                // for devices they must parse.
                entry.dev_major = u32::try_from(num(329..337, "devmajor")?)
                    .map_err(|_| invalid("devmajor out of range"))?;
                entry.dev_minor = u32::try_from(num(337..345, "devminor")?)
                    .map_err(|_| invalid("devminor out of range"))?;
            }
            let data = if header_only { 0 } else { entry.size };
            entry.size = data;
            self.remaining = data;
            self.padding = (BLOCK as u64 - data % BLOCK as u64) % BLOCK as u64;
            return Ok(Some(entry));
        }
    }

    /// Reads the current entry's data.
    pub fn data(&mut self) -> EntryData<'_, R> {
        EntryData { tar: self }
    }

    fn read_extended(&mut self, size: u64) -> io::Result<Vec<u8>> {
        let mut data = Vec::with_capacity(size as usize);
        (&mut self.inner).take(size).read_to_end(&mut data)?;
        if (data.len() as u64) < size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "truncated extended header",
            ));
        }
        self.remaining = 0;
        self.padding = (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64;
        Ok(data)
    }

    fn skip_rest(&mut self) -> io::Result<()> {
        let n = self.remaining + self.padding;
        if n > 0 {
            let skipped = io::copy(&mut (&mut self.inner).take(n), &mut io::sink())?;
            if skipped < n {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the archive ends inside an entry",
                ));
            }
            self.remaining = 0;
            self.padding = 0;
        }
        Ok(())
    }
}

/// The data of the current entry; reads end at its size.
pub struct EntryData<'a, R: Read> {
    tar: &'a mut TarReader<R>,
}

impl<R: Read> Read for EntryData<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.tar.remaining == 0 {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(self.tar.remaining.min(usize::MAX as u64) as usize);
        let n = self.tar.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the archive ends inside a file's data",
            ));
        }
        self.tar.remaining -= n as u64;
        Ok(n)
    }
}

/// Reads one block; false on a clean end of stream before its first byte.
fn read_block<R: Read>(r: &mut R, block: &mut [u8; BLOCK]) -> io::Result<bool> {
    let mut got = 0;
    while got < BLOCK {
        match r.read(&mut block[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the archive ends inside a header",
                ))
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

fn check_sum(block: &[u8; BLOCK]) -> io::Result<()> {
    let stored = numeric(&block[148..156]).map_err(|e| invalid(format!("checksum: {e}")))?;
    let mut unsigned: u64 = 0;
    let mut signed: i64 = 0;
    for (i, &b) in block.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += b as u64;
        signed += (b as i8) as i64;
    }
    if stored != unsigned && stored as i64 != signed {
        return Err(invalid(format!(
            "header checksum mismatch (stored {stored}, computed {unsigned}): not a tar stream, or a corrupt one"
        )));
    }
    Ok(())
}

/// Bytes up to the first NUL.
fn cstr(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    &field[..end]
}

fn trim_nul(mut v: Vec<u8>) -> Vec<u8> {
    while v.last() == Some(&0) {
        v.pop();
    }
    v
}

/// An octal field (spaces and NULs around it allowed) or GNU base-256.
fn numeric(field: &[u8]) -> Result<u64, String> {
    if field.first().is_some_and(|&b| b & 0x80 != 0) {
        if field[0] == 0xff {
            return Err("negative base-256 value".into());
        }
        let mut v: u64 = (field[0] & 0x7f) as u64;
        for &b in &field[1..] {
            v = v
                .checked_mul(256)
                .and_then(|v| v.checked_add(b as u64))
                .ok_or("base-256 value overflows 64 bits")?;
        }
        return Ok(v);
    }
    let text = cstr(field);
    let text = std::str::from_utf8(text).map_err(|_| "not ASCII".to_string())?;
    let text = text.trim_matches(|c: char| c == ' ' || c == '\0');
    if text.is_empty() {
        return Ok(0);
    }
    u64::from_str_radix(text, 8).map_err(|_| format!("{text:?} is not an octal number"))
}

/// Like [`numeric`], accepting negative base-256 (times before 1970).
fn signed_numeric(field: &[u8]) -> Result<i64, String> {
    if field.first() == Some(&0xff) {
        let mut v: i64 = -1;
        for &b in &field[1..] {
            v = v.checked_mul(256).ok_or("base-256 value overflows")? | b as i64;
        }
        return Ok(v);
    }
    let v = numeric(field)?;
    i64::try_from(v).map_err(|_| "value too large".to_string())
}

/// Parses `"<len> <key>=<value>\n"` records by their length prefix.
fn parse_pax(mut data: &[u8], pending: &mut Pending) -> io::Result<()> {
    while !data.is_empty() {
        if data.iter().all(|&b| b == 0) {
            break;
        }
        let space = data
            .iter()
            .position(|&b| b == b' ')
            .ok_or_else(|| invalid("PAX record without a length"))?;
        let len: usize = std::str::from_utf8(&data[..space])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| invalid("PAX record with a bad length"))?;
        if len <= space + 1 || len > data.len() || data[len - 1] != b'\n' {
            return Err(invalid("PAX record length does not match its content"));
        }
        let record = &data[space + 1..len - 1];
        data = &data[len..];
        let eq = record
            .iter()
            .position(|&b| b == b'=')
            .ok_or_else(|| invalid("PAX record without '='"))?;
        let (key, value) = (&record[..eq], &record[eq + 1..]);
        let number = |what: &str| -> io::Result<&str> {
            std::str::from_utf8(value).map_err(|_| invalid(format!("PAX {what} is not a number")))
        };
        match key {
            b"path" => pending.path = Some(value.to_vec()),
            b"linkpath" => pending.link = Some(value.to_vec()),
            b"size" => {
                pending.size = Some(
                    number("size")?
                        .parse()
                        .map_err(|_| invalid("bad PAX size"))?,
                )
            }
            b"uid" => {
                pending.uid = Some(number("uid")?.parse().map_err(|_| invalid("bad PAX uid"))?)
            }
            b"gid" => {
                pending.gid = Some(number("gid")?.parse().map_err(|_| invalid("bad PAX gid"))?)
            }
            b"mtime" => {
                // Whole seconds: "-1.5" is -1 (layers keep no sub-second times).
                let text = number("mtime")?;
                let whole = text.split('.').next().unwrap_or("");
                pending.mtime = Some(whole.parse().map_err(|_| invalid("bad PAX mtime"))?);
            }
            k => {
                if let Some(name) = k.strip_prefix(b"SCHILY.xattr.") {
                    pending.xattrs.push((name.to_vec(), value.to_vec()));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::tar_writer::{Entry, EntryKind, TarWriter};

    fn read_all(bytes: &[u8]) -> Vec<(ReadEntry, Vec<u8>)> {
        let mut r = TarReader::new(bytes);
        let mut out = Vec::new();
        while let Some(e) = r.next_entry().unwrap() {
            let mut data = Vec::new();
            r.data().read_to_end(&mut data).unwrap();
            out.push((e, data));
        }
        out
    }

    #[test]
    fn reads_gnu_tar_output_with_long_names() {
        let dir = tempfile::tempdir().unwrap();
        let long = "x".repeat(150);
        std::fs::create_dir(dir.path().join("d")).unwrap();
        std::fs::write(dir.path().join("d").join(&long), b"data").unwrap();
        std::os::unix::fs::symlink("y".repeat(120), dir.path().join("s")).unwrap();
        for format in ["gnu", "posix", "ustar"] {
            let out = std::process::Command::new("tar")
                .arg("-C")
                .arg(dir.path())
                .arg(format!("--format={format}"))
                .args(["--sort=name", "-cf", "-", "d", "s"])
                .output()
                .unwrap();
            if format == "ustar" {
                // ustar cannot hold a 120-byte link target: GNU tar refuses.
                continue;
            }
            assert!(out.status.success(), "{format}: {out:?}");
            let entries = read_all(&out.stdout);
            let names: Vec<String> = entries
                .iter()
                .map(|(e, _)| String::from_utf8(e.path.clone()).unwrap())
                .collect();
            assert_eq!(names, ["d/", format!("d/{long}").as_str(), "s"], "{format}");
            assert_eq!(entries[1].1, b"data");
            assert_eq!(entries[2].0.link, "y".repeat(120).into_bytes());
            assert_eq!(entries[2].0.typeflag, b'2');
        }
    }

    #[test]
    fn pax_values_with_newlines_survive() {
        let path = b"a\nb/".repeat(40);
        let mut path = path[..path.len() - 1].to_vec();
        path.extend_from_slice(b"\nend");
        let cap = vec![1, 0, 0, 2, 0x0a, 0, 0, 0, 0x0a, 0x0a];
        let mut w = TarWriter::new(Vec::new());
        let e = Entry {
            path: path.clone(),
            kind: EntryKind::Regular { size: 2 },
            mode: 0o755,
            uid: 0,
            gid: 0,
            mtime: 5,
            xattrs: vec![(b"security.capability".to_vec(), cap.clone())],
        };
        w.append_header(&e).unwrap();
        w.write_data(&mut &b"hi"[..], 2).unwrap();
        let bytes = w.finish().unwrap();
        let entries = read_all(&bytes);
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].0.path, path);
        assert_eq!(
            entries[0].0.xattrs,
            vec![(b"security.capability".to_vec(), cap)]
        );
        assert_eq!(entries[0].1, b"hi");
    }

    #[test]
    fn numbers() {
        assert_eq!(numeric(b"0000644\0").unwrap(), 0o644);
        assert_eq!(numeric(b"  644 \0").unwrap(), 0o644);
        assert_eq!(numeric(b"\0\0\0\0").unwrap(), 0);
        assert_eq!(numeric(&[0x80, 0, 0, 0, 0, 0, 1, 0]).unwrap(), 256);
        assert!(numeric(b"9\0").is_err());
        assert_eq!(signed_numeric(&[0xff; 12]).unwrap(), -1);
    }

    #[test]
    fn corrupt_and_truncated_streams_are_errors() {
        let mut w = TarWriter::new(Vec::new());
        let e = Entry {
            path: b"f".to_vec(),
            kind: EntryKind::Regular { size: 1000 },
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: 0,
            xattrs: vec![],
        };
        w.append_header(&e).unwrap();
        w.write_data(&mut &[1u8; 1000][..], 1000).unwrap();
        let bytes = w.finish().unwrap();
        let mut bad = bytes.clone();
        bad[10] ^= 1;
        assert!(TarReader::new(&bad[..]).next_entry().is_err());
        let mut r = TarReader::new(&bytes[..700]);
        r.next_entry().unwrap().unwrap();
        assert!(r.data().read_to_end(&mut Vec::new()).is_err());
        let mut r = TarReader::new(&bytes[..300]);
        assert!(r.next_entry().is_err());
    }
}
