//! ADD: archives sniffed by content and extracted safely, URLs downloaded
//! from a real HTTP server on 127.0.0.1 with checksums, names, modes, mtimes.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::thread;

use rbuild::build::add::{add_into, sniff_file, AddError, AddOptions, ArchiveKind};
use rbuild::build::context::SourceTree;
use rbuild::build::copy::CopyOptions;
use rbuild::digest::Digest;
use rbuild::layer::rootfs::Rootfs;

struct Fixture {
    dir: tempfile::TempDir,
    ctx: PathBuf,
    root: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let ctx = dir.path().join("ctx");
        let root = dir.path().join("rootfs");
        fs::create_dir_all(&ctx).unwrap();
        fs::create_dir_all(&root).unwrap();
        Fixture { dir, ctx, root }
    }

    fn add(&self, sources: &[&str], dest: &str, opts: &AddOptions) -> Result<(), AddError> {
        let tree = SourceTree::open_context(self.ctx.clone(), None).unwrap();
        let sources: Vec<String> = sources.iter().map(|s| s.to_string()).collect();
        add_into(&Rootfs::new(self.root.clone()), &tree, &sources, dest, opts).map(|_| ())
    }

    fn img(&self, p: &str) -> PathBuf {
        self.root.join(p.trim_start_matches('/'))
    }
}

/// A tar with a dir, a file (mode, owner, mtime), a symlink and a hard link.
fn sample_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_path("pkg/").unwrap();
    h.set_mode(0o750);
    h.set_size(0);
    h.set_mtime(1_000_000);
    h.set_cksum();
    b.append(&h, &[][..]).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_path("pkg/bin").unwrap();
    h.set_mode(0o755);
    h.set_uid(1234);
    h.set_gid(4321);
    h.set_size(5);
    h.set_mtime(1_500_000_000);
    h.set_cksum();
    b.append(&h, &b"hello"[..]).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_path("pkg/link").unwrap();
    h.set_link_name("bin").unwrap();
    h.set_size(0);
    h.set_cksum();
    b.append(&h, &[][..]).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Link);
    h.set_path("pkg/hard").unwrap();
    h.set_link_name("pkg/bin").unwrap();
    h.set_size(0);
    h.set_cksum();
    b.append(&h, &[][..]).unwrap();
    b.into_inner().unwrap()
}

fn compress(kind: ArchiveKind, data: &[u8]) -> Vec<u8> {
    match kind {
        ArchiveKind::Tar => data.to_vec(),
        ArchiveKind::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        ArchiveKind::Bzip2 => {
            let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        ArchiveKind::Xz => {
            let mut e = xz2::write::XzEncoder::new(Vec::new(), 1);
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        ArchiveKind::Zstd => zstd::encode_all(data, 1).unwrap(),
    }
}

#[test]
fn every_compression_is_sniffed_by_content_and_extracted() {
    for kind in [
        ArchiveKind::Tar,
        ArchiveKind::Gzip,
        ArchiveKind::Bzip2,
        ArchiveKind::Xz,
        ArchiveKind::Zstd,
    ] {
        let f = Fixture::new();
        // A misleading name: the content decides.
        fs::write(f.ctx.join("payload.txt"), compress(kind, &sample_tar())).unwrap();
        assert_eq!(sniff_file(&f.ctx.join("payload.txt")).unwrap(), Some(kind));
        f.add(&["payload.txt"], "/opt", &AddOptions::default())
            .unwrap();
        assert_eq!(
            fs::read(f.img("/opt/pkg/bin")).unwrap(),
            b"hello",
            "{kind:?}"
        );
        let m = fs::metadata(f.img("/opt/pkg/bin")).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o755);
        assert_eq!(m.mtime(), 1_500_000_000);
        if nix::unistd::geteuid().is_root() {
            assert_eq!((m.uid(), m.gid()), (1234, 4321));
        }
        assert_eq!(
            fs::metadata(f.img("/opt/pkg")).unwrap().mode() & 0o7777,
            0o750
        );
        assert_eq!(fs::metadata(f.img("/opt/pkg")).unwrap().mtime(), 1_000_000);
        assert_eq!(
            fs::read_link(f.img("/opt/pkg/link")).unwrap(),
            Path::new("bin")
        );
        assert_eq!(m.ino(), fs::metadata(f.img("/opt/pkg/hard")).unwrap().ino());
        assert!(!f.img("/opt/payload.txt").exists());
    }
}

#[test]
fn non_archives_are_copied_as_they_are() {
    let f = Fixture::new();
    fs::write(f.ctx.join("notes.tar.gz"), b"just text, not gzip").unwrap();
    // gzip of something that is not a tar: copied, not extracted.
    fs::write(f.ctx.join("plain.gz"), compress(ArchiveKind::Gzip, b"text")).unwrap();
    f.add(&["notes.tar.gz", "plain.gz"], "/d/", &AddOptions::default())
        .unwrap();
    assert_eq!(
        fs::read(f.img("/d/notes.tar.gz")).unwrap(),
        b"just text, not gzip"
    );
    assert_eq!(
        fs::read(f.img("/d/plain.gz")).unwrap(),
        compress(ArchiveKind::Gzip, b"text")
    );
}

/// A header with a raw name, bypassing the tar crate's `..` checks.
fn raw_entry(
    b: &mut tar::Builder<Vec<u8>>,
    kind: tar::EntryType,
    name: &str,
    link: &str,
    body: &[u8],
) {
    let mut h = tar::Header::new_old();
    h.set_entry_type(kind);
    h.set_mode(0o644);
    h.set_size(body.len() as u64);
    {
        let old = h.as_old_mut();
        old.name[..name.len()].copy_from_slice(name.as_bytes());
        old.linkname[..link.len()].copy_from_slice(link.as_bytes());
    }
    h.set_cksum();
    b.append(&h, body).unwrap();
}

#[test]
fn malicious_archives_stay_inside_the_rootfs() {
    let f = Fixture::new();
    let outside = f.dir.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("victim"), b"untouched").unwrap();
    let mut b = tar::Builder::new(Vec::new());
    raw_entry(&mut b, tar::EntryType::Regular, "../../escape", "", b"x");
    raw_entry(&mut b, tar::EntryType::Regular, "/abs/file", "", b"a");
    // Symlink to outside, then a write through it.
    let out = outside.to_str().unwrap();
    raw_entry(&mut b, tar::EntryType::Symlink, "link", out, b"");
    raw_entry(
        &mut b,
        tar::EntryType::Regular,
        "link/victim",
        "",
        b"overwritten",
    );
    raw_entry(&mut b, tar::EntryType::Symlink, "root", "/", b"");
    raw_entry(&mut b, tar::EntryType::Regular, "root/etc/evil", "", b"e");
    // Hard link to a file outside.
    let victim = outside.join("victim");
    raw_entry(
        &mut b,
        tar::EntryType::Link,
        "hl",
        victim.to_str().unwrap(),
        b"",
    );
    raw_entry(
        &mut b,
        tar::EntryType::Link,
        "hl2",
        "../../../../outside/victim",
        b"",
    );
    fs::write(f.ctx.join("evil.tar"), b.into_inner().unwrap()).unwrap();
    let res = f.add(&["evil.tar"], "/dst/", &AddOptions::default());
    // Hard link targets are looked up inside the destination: `hl` finds
    // the re-rooted copy written through `link`, `hl2` (`..` clamped to
    // `outside/victim` under the destination) finds nothing: an error
    // naming the entry.
    let err = res.unwrap_err().to_string();
    assert!(err.contains("at entry \"hl2\""), "{err}");
    assert_eq!(fs::read(outside.join("victim")).unwrap(), b"untouched");
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 1);
    assert!(!f.dir.path().join("escape").exists());
    assert!(!Path::new("/abs/file").exists());
    assert!(!Path::new("/etc/evil").exists());
    assert_eq!(fs::read(f.img("/dst/escape")).unwrap(), b"x");
    assert_eq!(fs::read(f.img("/dst/abs/file")).unwrap(), b"a");
    // Written through the symlinks, re-rooted at the destination (docker
    // extracts chrooted into it): `root -> /` is `/dst`.
    assert_eq!(fs::read(f.img("/dst/etc/evil")).unwrap(), b"e");
    assert!(!f.img("/etc").exists());
    let link_target = outside.strip_prefix("/").unwrap();
    assert_eq!(
        fs::read(f.img("/dst").join(link_target).join("victim")).unwrap(),
        b"overwritten"
    );
}

/// Serves `body` for every request to `/files/...`, 404 otherwise.
fn serve(body: Vec<u8>, requests: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for stream in listener.incoming().take(requests) {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                    break;
                }
            }
            let path = request_line
                .split_whitespace()
                .nth(1)
                .unwrap_or("/")
                .to_string();
            if path.starts_with("/files/") {
                write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nLast-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\nConnection: close\r\n\r\n",
                    body.len()
                )
                .unwrap();
                stream.write_all(&body).unwrap();
            } else {
                stream
                    .write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    )
                    .unwrap();
            }
        }
    });
    format!("http://{addr}")
}

#[test]
fn urls_are_downloaded_with_name_mode_mtime_and_not_extracted() {
    let f = Fixture::new();
    let body = compress(ArchiveKind::Gzip, &sample_tar());
    let base = serve(body.clone(), 2);
    let url = format!("{base}/files/pkg.tar.gz");
    let opts = AddOptions {
        checksum: Some(Digest::of(&body)),
        ..AddOptions::default()
    };
    f.add(&[url.as_str()], "/downloads/", &opts).unwrap();
    let p = f.img("/downloads/pkg.tar.gz");
    assert_eq!(fs::read(&p).unwrap(), body);
    let m = fs::metadata(&p).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o600);
    assert_eq!(m.mtime(), 784_111_777);
    // No trailing slash: the destination is the file.
    f.add(&[url.as_str()], "/named", &AddOptions::default())
        .unwrap();
    assert_eq!(fs::read(f.img("/named")).unwrap(), body);
}

#[test]
fn checksum_mismatch_names_both_digests() {
    let f = Fixture::new();
    let base = serve(b"actual bytes".to_vec(), 1);
    let wrong = Digest::of(b"expected bytes");
    let opts = AddOptions {
        checksum: Some(wrong),
        ..AddOptions::default()
    };
    let err = f
        .add(&[format!("{base}/files/x").as_str()], "/x", &opts)
        .unwrap_err()
        .to_string();
    assert!(err.contains(&wrong.to_string()), "{err}");
    assert!(
        err.contains(&Digest::of(b"actual bytes").to_string()),
        "{err}"
    );
    assert!(!f.img("/x").exists());
}

#[test]
fn http_errors_and_unsupported_sources() {
    let f = Fixture::new();
    let base = serve(Vec::new(), 1);
    let err = f
        .add(
            &[format!("{base}/missing").as_str()],
            "/x",
            &AddOptions::default(),
        )
        .unwrap_err();
    assert!(matches!(err, AddError::Download { .. }), "{err}");
    assert!(err.to_string().contains("404"), "{err}");
    let err = f
        .add(
            &["https://example.com/repo.git"],
            "/src",
            &AddOptions::default(),
        )
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("git sources are not supported yet"),
        "{err}"
    );
    fs::write(f.ctx.join("local"), b"l").unwrap();
    let opts = AddOptions {
        checksum: Some(Digest::of(b"l")),
        ..AddOptions::default()
    };
    assert!(matches!(
        f.add(&["local"], "/l", &opts),
        Err(AddError::ChecksumNeedsUrl { .. })
    ));
}

#[test]
fn chown_and_chmod_apply_to_downloads() {
    if !nix::unistd::geteuid().is_root() {
        return;
    }
    let f = Fixture::new();
    let base = serve(b"data".to_vec(), 1);
    let opts = AddOptions {
        copy: CopyOptions {
            chown: Some((7, 8)),
            chmod: Some(0o644),
            ..CopyOptions::default()
        },
        ..AddOptions::default()
    };
    f.add(&[format!("{base}/files/d.bin").as_str()], "/srv/", &opts)
        .unwrap();
    let m = fs::metadata(f.img("/srv/d.bin")).unwrap();
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (7, 8, 0o644));
}
