//! A minimal, deterministic tar encoder: ustar headers with PAX extended
//! headers only where ustar cannot hold a value (long names, large ids,
//! sizes or times, xattrs).
//!
//! Every header field is a pure function of the [`Entry`]: no user or group
//! names, no access/change times, device numbers only for devices, integer
//! seconds only. Two writers given the same entries produce the same bytes,
//! which is what makes a layer's diff ID reproducible. What goes *into* the
//! entries (walk order, whiteouts, clamping) is `diff.rs`'s job.

use std::io::{self, Read, Write};

const BLOCK: usize = 512;
const NAME_LEN: usize = 100;
/// The largest value an 8-byte octal field holds (7 digits + NUL).
const MAX_OCTAL_8: u64 = 0o7_777_777;
/// The largest value a 12-byte octal field holds (11 digits + NUL).
const MAX_OCTAL_12: u64 = 0o77_777_777_777;

/// The kind of a tar entry and the data only that kind has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    Regular { size: u64 },
    Directory,
    Symlink { target: Vec<u8> },
    Hardlink { target: Vec<u8> },
    CharDevice { major: u32, minor: u32 },
    BlockDevice { major: u32, minor: u32 },
    Fifo,
}

impl EntryKind {
    fn typeflag(&self) -> u8 {
        match self {
            EntryKind::Regular { .. } => b'0',
            EntryKind::Hardlink { .. } => b'1',
            EntryKind::Symlink { .. } => b'2',
            EntryKind::CharDevice { .. } => b'3',
            EntryKind::BlockDevice { .. } => b'4',
            EntryKind::Directory => b'5',
            EntryKind::Fifo => b'6',
        }
    }
}

/// One tar entry's metadata. `path` is relative, without a leading `./`;
/// directories end in `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: Vec<u8>,
    pub kind: EntryKind,
    /// Permission bits including setuid/setgid/sticky (`& 0o7777`).
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    /// Seconds since the epoch (already clamped by the caller).
    pub mtime: i64,
    /// Extended attributes, sorted by name.
    pub xattrs: Xattrs,
}

/// Extended attributes as (name, value) pairs.
pub type Xattrs = Vec<(Vec<u8>, Vec<u8>)>;

/// Writes entries to `out`, counting bytes; [`TarWriter::finish`] writes the
/// end-of-archive marker (two zero blocks, no record padding).
pub struct TarWriter<W: Write> {
    out: W,
    written: u64,
    buf: Vec<u8>,
}

impl<W: Write> TarWriter<W> {
    pub fn new(out: W) -> TarWriter<W> {
        TarWriter {
            out,
            written: 0,
            buf: Vec::new(),
        }
    }

    /// Bytes of tar written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Writes the header(s) of `entry`. For a regular file the caller must
    /// then call [`TarWriter::write_data`] with exactly its size.
    pub fn append_header(&mut self, entry: &Entry) -> io::Result<()> {
        let pax = pax_records(entry);
        if !pax.is_empty() {
            let mut name = b"PaxHeaders.0/".to_vec();
            let base = entry
                .path
                .strip_suffix(b"/")
                .unwrap_or(&entry.path)
                .rsplit(|&b| b == b'/')
                .next()
                .unwrap_or_default();
            name.extend_from_slice(base);
            name.truncate(NAME_LEN);
            let block = ustar_block(
                &name,
                b'x',
                0o644,
                0,
                0,
                pax.len() as u64,
                entry.mtime.clamp(0, MAX_OCTAL_12 as i64),
                &[],
                None,
            );
            self.write_raw(&block)?;
            self.write_raw(&pax)?;
            self.pad(pax.len() as u64)?;
        }
        let (size, link, dev) = match &entry.kind {
            EntryKind::Regular { size } => (*size, &[][..], None),
            EntryKind::Symlink { target } | EntryKind::Hardlink { target } => {
                (0, &target[..], None)
            }
            EntryKind::CharDevice { major, minor } | EntryKind::BlockDevice { major, minor } => {
                (0, &[][..], Some((*major, *minor)))
            }
            EntryKind::Directory | EntryKind::Fifo => (0, &[][..], None),
        };
        let fit = |v: u64, max: u64| if v > max { 0 } else { v };
        let block = ustar_block(
            prefix_fit(&entry.path, NAME_LEN),
            entry.kind.typeflag(),
            entry.mode & 0o7777,
            fit(entry.uid, MAX_OCTAL_8),
            fit(entry.gid, MAX_OCTAL_8),
            fit(size, MAX_OCTAL_12),
            entry.mtime.clamp(0, MAX_OCTAL_12 as i64),
            prefix_fit(link, NAME_LEN),
            dev,
        );
        self.write_raw(&block)
    }

    /// Streams exactly `size` bytes of file data from `data` and pads the
    /// last block. Returns how many bytes `data` actually gave (less than
    /// `size` means it shrank: the rest is zero-filled to keep the archive
    /// well-formed, and the caller reports the change).
    pub fn write_data(&mut self, data: &mut impl Read, size: u64) -> io::Result<u64> {
        const CHUNK: usize = 256 * 1024;
        if self.buf.len() < CHUNK {
            self.buf.resize(CHUNK, 0);
        }
        let mut left = size;
        let mut got = 0u64;
        while left > 0 {
            let want = left.min(CHUNK as u64) as usize;
            let n = match data.read(&mut self.buf[..want]) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.out.write_all(&self.buf[..n])?;
            self.written += n as u64;
            left -= n as u64;
            got += n as u64;
        }
        if left > 0 {
            self.buf[..CHUNK].fill(0);
            while left > 0 {
                let n = left.min(CHUNK as u64) as usize;
                self.out.write_all(&self.buf[..n])?;
                self.written += n as u64;
                left -= n as u64;
            }
        }
        self.pad(size)?;
        Ok(got)
    }

    /// Writes the two zero blocks that end an archive and returns the output.
    pub fn finish(mut self) -> io::Result<W> {
        self.write_raw(&[0u8; 2 * BLOCK])?;
        self.out.flush()?;
        Ok(self.out)
    }

    fn pad(&mut self, len: u64) -> io::Result<()> {
        let rem = (len % BLOCK as u64) as usize;
        if rem != 0 {
            self.write_raw(&[0u8; BLOCK][..BLOCK - rem])?;
        }
        Ok(())
    }

    fn write_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }
}

/// The bytes that fit the ustar field; longer values travel in PAX records
/// and the field keeps a deterministic truncation.
fn prefix_fit(v: &[u8], len: usize) -> &[u8] {
    &v[..v.len().min(len)]
}

/// The PAX records `entry` needs, in a fixed order (xattrs sorted by name).
fn pax_records(entry: &Entry) -> Vec<u8> {
    let mut out = Vec::new();
    if entry.path.len() > NAME_LEN {
        pax_record(&mut out, b"path", &entry.path);
    }
    match &entry.kind {
        EntryKind::Symlink { target } | EntryKind::Hardlink { target }
            if target.len() > NAME_LEN =>
        {
            pax_record(&mut out, b"linkpath", target);
        }
        EntryKind::Regular { size } if *size > MAX_OCTAL_12 => {
            pax_record(&mut out, b"size", size.to_string().as_bytes());
        }
        _ => {}
    }
    if entry.uid > MAX_OCTAL_8 {
        pax_record(&mut out, b"uid", entry.uid.to_string().as_bytes());
    }
    if entry.gid > MAX_OCTAL_8 {
        pax_record(&mut out, b"gid", entry.gid.to_string().as_bytes());
    }
    if entry.mtime < 0 || entry.mtime > MAX_OCTAL_12 as i64 {
        pax_record(&mut out, b"mtime", entry.mtime.to_string().as_bytes());
    }
    for (name, value) in &entry.xattrs {
        let mut key = b"SCHILY.xattr.".to_vec();
        key.extend_from_slice(name);
        pax_record(&mut out, &key, value);
    }
    out
}

/// Appends `"<len> <key>=<value>\n"`, where `len` counts the whole record
/// including its own digits.
fn pax_record(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    let body = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

#[allow(clippy::too_many_arguments)]
fn ustar_block(
    name: &[u8],
    typeflag: u8,
    mode: u32,
    uid: u64,
    gid: u64,
    size: u64,
    mtime: i64,
    link: &[u8],
    dev: Option<(u32, u32)>,
) -> [u8; BLOCK] {
    let mut b = [0u8; BLOCK];
    b[..name.len()].copy_from_slice(name);
    octal(&mut b[100..108], mode as u64);
    octal(&mut b[108..116], uid);
    octal(&mut b[116..124], gid);
    octal(&mut b[124..136], size);
    octal(&mut b[136..148], mtime as u64);
    b[156] = typeflag;
    b[157..157 + link.len()].copy_from_slice(link);
    b[257..263].copy_from_slice(b"ustar\0");
    b[263..265].copy_from_slice(b"00");
    if let Some((major, minor)) = dev {
        octal(&mut b[329..337], major as u64);
        octal(&mut b[337..345], minor as u64);
    }
    // The checksum is computed with its own field read as spaces.
    b[148..156].fill(b' ');
    let sum: u32 = b.iter().map(|&x| x as u32).sum();
    octal(&mut b[148..155], sum as u64);
    b
}

/// Zero-padded octal filling all but the last byte, which stays NUL.
fn octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let s = format!("{value:0digits$o}");
    debug_assert!(s.len() == digits, "octal value {value} overflows its field");
    field[..digits].copy_from_slice(&s.as_bytes()[s.len() - digits..]);
    field[digits] = 0;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, kind: EntryKind) -> Entry {
        Entry {
            path: path.as_bytes().to_vec(),
            kind,
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: 1_700_000_000,
            xattrs: vec![],
        }
    }

    fn archive(entries: &[(Entry, &[u8])]) -> Vec<u8> {
        let mut w = TarWriter::new(Vec::new());
        for (e, data) in entries {
            w.append_header(e).unwrap();
            if let EntryKind::Regular { size } = e.kind {
                w.write_data(&mut &data[..], size).unwrap();
            }
        }
        let n = w.written();
        let out = w.finish().unwrap();
        assert_eq!(n + 1024, out.len() as u64);
        out
    }

    #[test]
    fn pax_record_length_counts_itself() {
        let mut out = Vec::new();
        pax_record(&mut out, b"path", &[b'a'; 93]);
        // 3 digits + ' ' + "path" + '=' + 93 + '\n' = 103
        assert!(out.starts_with(b"103 path="));
        assert_eq!(out.len(), 103);
        let mut out = Vec::new();
        pax_record(&mut out, b"uid", b"1");
        assert_eq!(out, b"8 uid=1\n");
    }

    #[test]
    fn tar_crate_reads_every_kind_and_long_values() {
        let long = "d/".repeat(80) + "file";
        let long_target = "t".repeat(300);
        let mut big_ids = entry("ids", EntryKind::Regular { size: 3 });
        big_ids.uid = 10_000_000;
        big_ids.gid = 3_000_000_000;
        big_ids.xattrs = vec![(b"user.k".to_vec(), vec![0, 1, 2, 255])];
        let bytes = archive(&[
            (entry("dir/", EntryKind::Directory), b""),
            (entry(&long, EntryKind::Regular { size: 5 }), b"hello"),
            (
                entry(
                    "sym",
                    EntryKind::Symlink {
                        target: long_target.clone().into_bytes(),
                    },
                ),
                b"",
            ),
            (
                entry(
                    "hard",
                    EntryKind::Hardlink {
                        target: b"ids".to_vec(),
                    },
                ),
                b"",
            ),
            (
                entry("null", EntryKind::CharDevice { major: 1, minor: 3 }),
                b"",
            ),
            (entry("fifo", EntryKind::Fifo), b""),
            (big_ids, b"abc"),
        ]);
        let mut ar = tar::Archive::new(&bytes[..]);
        let mut seen = vec![];
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            let path = String::from_utf8(e.path_bytes().into_owned()).unwrap();
            let link = e
                .link_name_bytes()
                .map(|l| String::from_utf8(l.into_owned()).unwrap());
            let h = e.header().clone();
            let mut xattrs = vec![];
            if let Some(exts) = e.pax_extensions().unwrap() {
                for x in exts {
                    let x = x.unwrap();
                    xattrs.push((x.key().unwrap().to_string(), x.value_bytes().to_vec()));
                }
            }
            let mut data = vec![];
            e.read_to_end(&mut data).unwrap();
            seen.push((path, h.entry_type(), link, data, xattrs, h));
        }
        assert_eq!(seen.len(), 7);
        assert_eq!(seen[1].0, long);
        assert_eq!(seen[1].3, b"hello");
        assert_eq!(seen[2].2.as_deref(), Some(long_target.as_str()));
        assert_eq!(seen[3].1, tar::EntryType::Link);
        assert_eq!(seen[4].5.device_major().unwrap(), Some(1));
        assert_eq!(seen[4].5.device_minor().unwrap(), Some(3));
        assert_eq!(seen[6].3, b"abc");
        let keys: Vec<_> = seen[6].4.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["uid", "gid", "SCHILY.xattr.user.k"]);
        assert_eq!(seen[6].4[2].1, vec![0, 1, 2, 255]);
        assert_eq!(seen[0].5.username_bytes(), Some(&b""[..]));
    }

    #[test]
    fn same_entries_same_bytes_and_gnu_tar_agrees() {
        let entries = [
            (entry("a/", EntryKind::Directory), &b""[..]),
            (entry("a/b", EntryKind::Regular { size: 2 }), &b"hi"[..]),
        ];
        let one = archive(&entries);
        assert_eq!(one, archive(&entries));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.tar");
        std::fs::write(&file, &one).unwrap();
        let out = std::process::Command::new("tar")
            .arg("-tvf")
            .arg(&file)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let listing = String::from_utf8_lossy(&out.stdout);
        assert!(listing.contains("a/b"), "{listing}");
    }

    #[test]
    fn short_data_is_zero_filled_and_reported() {
        let mut w = TarWriter::new(Vec::new());
        w.append_header(&entry("f", EntryKind::Regular { size: 10 }))
            .unwrap();
        let got = w.write_data(&mut &b"abc"[..], 10).unwrap();
        assert_eq!(got, 3);
        assert_eq!(w.written(), 1024);
    }

    use proptest::prelude::*;

    fn component() -> impl Strategy<Value = Vec<u8>> {
        // Any bytes but NUL and '/', never "." or "..".
        proptest::collection::vec(1u8..=255, 1..40).prop_map(|mut c| {
            c.iter_mut().for_each(|b| {
                if *b == b'/' {
                    *b = b'_'
                }
            });
            if c == b"." || c == b".." {
                c.push(b'x');
            }
            c
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Whatever the names, ids, times and xattrs, the tar crate reads
        /// back exactly what was written (PAX overrides applied).
        #[test]
        fn any_entry_reads_back(
            comps in proptest::collection::vec(component(), 1..8),
            mode in 0u32..0o7777,
            uid in prop_oneof![0u64..70_000, 0u64..(1u64 << 32)],
            gid in 0u64..(1u64 << 32),
            mtime in prop_oneof![0i64..2_000_000_000, -(1i64 << 40)..(1i64 << 40)],
            data in proptest::collection::vec(any::<u8>(), 0..1500),
            xattr_value in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            let path = comps.join(&b'/');
            let e = Entry {
                path: path.clone(),
                kind: EntryKind::Regular { size: data.len() as u64 },
                mode,
                uid,
                gid,
                mtime,
                xattrs: vec![(b"user.p".to_vec(), xattr_value.clone())],
            };
            let bytes = archive(&[(e, &data[..])]);
            // Read back with rbuild's own reader: the tar crate splits PAX
            // records on '\n' and misreads such names (see tar_reader.rs).
            let mut r = crate::layer::tar_reader::TarReader::new(&bytes[..]);
            let got = r.next_entry().unwrap().unwrap();
            prop_assert_eq!(&got.path, &path);
            prop_assert_eq!(got.mode, mode);
            prop_assert_eq!((got.uid, got.gid, got.mtime), (uid, gid, mtime));
            prop_assert_eq!(&got.xattrs, &vec![(b"user.p".to_vec(), xattr_value)]);
            let mut back = Vec::new();
            r.data().read_to_end(&mut back).unwrap();
            prop_assert_eq!(back, data);
            prop_assert!(r.next_entry().unwrap().is_none());
            // GNU tar agrees on the name whenever it is printable.
            if path.iter().all(|b| b.is_ascii_graphic() && *b != b'\\') && path.len() < 400 {
                let dir = tempfile::tempdir().unwrap();
                let file = dir.path().join("t.tar");
                std::fs::write(&file, &bytes).unwrap();
                let out = std::process::Command::new("tar").arg("-tf").arg(&file).output().unwrap();
                prop_assert!(out.status.success());
                prop_assert_eq!(out.stdout.strip_suffix(b"\n").unwrap_or(&out.stdout), &path[..]);
            }
        }
    }
}
