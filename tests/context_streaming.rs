//! Large inputs stream: ADD of a 64 MiB download and of a tar holding a
//! 64 MiB file, and COPY of a 64 MiB file, grow the process's peak RSS
//! by far less than the file size. One test in its own binary, so nothing
//! else moves the high-water mark.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::thread;

use rbuild::build::add::{add_into, AddOptions};
use rbuild::build::context::SourceTree;
use rbuild::build::copy::{copy_into, CopyOptions};
use rbuild::build::ignore::IgnoreMatcher;
use rbuild::digest::{Digest, DigestWriter};
use rbuild::layer::rootfs::Rootfs;

const SIZE: u64 = 64 << 20;
const LIMIT: i64 = 24 << 20;

fn max_rss_bytes() -> i64 {
    let mut r: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage only writes into the struct we pass.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut r) };
    r.ru_maxrss * 1024
}

/// A pseudo-random, incompressible-ish byte stream that is cheap to make.
fn body() -> impl Read {
    let mut state = 0x9e3779b97f4a7c15u64;
    let mut chunk = vec![0u8; 64 * 1024];
    let mut remaining = SIZE;
    let mut buf = Vec::new();
    let mut pos = 0;
    io::from_fn(move |out: &mut [u8]| {
        if pos == buf.len() {
            if remaining == 0 {
                return Ok(0);
            }
            for b in chunk.iter_mut() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                *b = state as u8;
            }
            let n = remaining.min(chunk.len() as u64) as usize;
            buf = chunk[..n].to_vec();
            remaining -= n as u64;
            pos = 0;
        }
        let n = out.len().min(buf.len() - pos);
        out[..n].copy_from_slice(&buf[pos..pos + n]);
        pos += n;
        Ok(n)
    })
}

mod io {
    pub use std::io::*;
    /// A `Read` from a closure (std has none on stable).
    pub fn from_fn<F: FnMut(&mut [u8]) -> Result<usize>>(f: F) -> FromFn<F> {
        FromFn(f)
    }
    pub struct FromFn<F>(F);
    impl<F: FnMut(&mut [u8]) -> Result<usize>> Read for FromFn<F> {
        fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
            (self.0)(buf)
        }
    }
}

fn digest_of_body() -> Digest {
    let mut w = DigestWriter::new(io::sink());
    io::copy(&mut body(), &mut w).unwrap();
    w.finish().1
}

#[test]
fn big_inputs_stream_with_bounded_memory() {
    let expected = digest_of_body();
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let ctx = dir.path().join("ctx");
    let root = dir.path().join("root");
    fs::create_dir_all(&ctx).unwrap();
    fs::create_dir_all(&root).unwrap();

    // Inputs made before measuring.
    io::copy(
        &mut body(),
        &mut fs::File::create(ctx.join("big.bin")).unwrap(),
    )
    .unwrap();
    {
        let mut b = tar::Builder::new(fs::File::create(ctx.join("big.tar")).unwrap());
        let mut h = tar::Header::new_gnu();
        h.set_path("inner/big.bin").unwrap();
        h.set_size(SIZE);
        h.set_mode(0o644);
        h.set_cksum();
        b.append(&h, body()).unwrap();
        b.finish().unwrap();
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/files/big.bin", listener.local_addr().unwrap());
    thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap() > 0 && line != "\r\n" {
            line.clear();
        }
        write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Length: {SIZE}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        io::copy(&mut body(), &mut stream).unwrap();
    });

    let tree = SourceTree::context(ctx, IgnoreMatcher::default());
    let rootfs = Rootfs::new(root.clone());
    let before = max_rss_bytes();
    let opts = AddOptions {
        checksum: Some(expected),
        ..AddOptions::default()
    };
    add_into(&rootfs, &tree, &[url], "/dl/", &opts).unwrap();
    add_into(
        &rootfs,
        &tree,
        &["big.tar".to_string()],
        "/x",
        &AddOptions::default(),
    )
    .unwrap();
    copy_into(
        &rootfs,
        &tree,
        &["big.bin".to_string()],
        "/c",
        &CopyOptions::default(),
    )
    .unwrap();
    let grew = max_rss_bytes() - before;
    eprintln!("peak RSS grew by {} KiB", grew >> 10);

    for p in ["dl/big.bin", "x/inner/big.bin", "c"] {
        let mut w = DigestWriter::new(io::sink());
        io::copy(&mut fs::File::open(root.join(p)).unwrap(), &mut w).unwrap();
        assert_eq!(w.finish().1, expected, "{p}");
    }
    assert!(
        grew < LIMIT,
        "peak RSS grew by {} MiB while moving 3 x {} MiB",
        grew >> 20,
        SIZE >> 20
    );
}
