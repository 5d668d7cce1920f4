//! COPY and ADD end to end: the real binary builds, `umoci unpack` (as root)
//! reads the exported image, and the rootfs is checked file by file — as
//! root and as the unprivileged test user.

mod common;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use common::{text, tool, Runner, Sandbox};

fn owner(p: &Path) -> (u32, u32) {
    let m = fs::symlink_metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    (m.uid(), m.gid())
}

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn copy_files_dirs_globs_owners_modes_and_links() {
    for runner in Runner::all() {
        let sb = Sandbox::new(runner);
        sb.import_busybox();
        let ctx = sb.context(
            "ctx",
            &[
                ("a.txt", "A\n"),
                ("dir/x", "X\n"),
                ("dir/sub/y", "Y\n"),
                ("g1.conf", "1\n"),
                ("g2.conf", "2\n"),
                ("other.txt", "O\n"),
                ("links/h1", "H\n"),
            ],
        );
        std::os::unix::fs::symlink("h1", ctx.join("links/sym")).unwrap();
        fs::hard_link(ctx.join("links/h1"), ctx.join("links/h2")).unwrap();
        fs::set_permissions(ctx.join("dir/x"), fs::Permissions::from_mode(0o750)).unwrap();
        if runner == Runner::Rootless {
            tool("chown", &["-hR", "rbtest:rbtest", ctx.to_str().unwrap()]);
        }
        sb.write(
            "ctx/Containerfile",
            "FROM busybox\n\
             COPY a.txt /f/renamed\n\
             COPY a.txt /into/\n\
             COPY dir /contents\n\
             COPY dir/ /slash/\n\
             COPY *.conf /globbed/\n\
             COPY --chown=1000:1000 a.txt /own/num\n\
             COPY --chown=app:staff dir /own/named/\n\
             COPY --chmod=0640 a.txt /mode/f\n\
             COPY links /links/\n",
        );
        sb.ok(&["bud", "-t", "copied", ctx.to_str().unwrap()]);
        let root = sb.unpack("copied");

        assert_eq!(read(&root.join("f/renamed")), "A\n");
        assert_eq!(read(&root.join("into/a.txt")), "A\n");
        // A directory source copies its contents, never the directory itself.
        assert_eq!(read(&root.join("contents/x")), "X\n");
        assert_eq!(read(&root.join("contents/sub/y")), "Y\n");
        assert!(!root.join("contents/dir").exists(), "{runner:?}");
        assert_eq!(read(&root.join("slash/sub/y")), "Y\n");
        assert_eq!(mode(&root.join("contents/x")), 0o750);
        let mut globbed: Vec<_> = fs::read_dir(root.join("globbed"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        globbed.sort();
        assert_eq!(globbed, ["g1.conf", "g2.conf"]);
        // Default owner is root, whoever ran the build.
        assert_eq!(owner(&root.join("f/renamed")), (0, 0), "{runner:?}");
        assert_eq!(owner(&root.join("own/num")), (1000, 1000), "{runner:?}");
        // Names resolve through the image's /etc/passwd and /etc/group.
        assert_eq!(owner(&root.join("own/named/x")), (1000, 50), "{runner:?}");
        assert_eq!(owner(&root.join("own/named/sub")), (1000, 50), "{runner:?}");
        assert_eq!(
            owner(&root.join("own/named/sub/y")),
            (1000, 50),
            "{runner:?}"
        );
        assert_eq!(mode(&root.join("mode/f")), 0o640);
        assert_eq!(
            fs::read_link(root.join("links/sym")).unwrap(),
            Path::new("h1"),
            "{runner:?}: symlink kept"
        );
        let h1 = fs::metadata(root.join("links/h1")).unwrap();
        let h2 = fs::metadata(root.join("links/h2")).unwrap();
        assert_eq!(h1.ino(), h2.ino(), "{runner:?}: hardlink kept");
    }
}

#[test]
fn containerignore_with_exceptions() {
    for runner in Runner::all() {
        let sb = Sandbox::new(runner);
        sb.import_busybox();
        sb.build(
            "ignored",
            "FROM busybox\nCOPY . /ctx/\n",
            &[
                (
                    ".containerignore",
                    "*.log\n!keep.log\nsecret/\n!secret/allowed\n**/*.tmp\n",
                ),
                ("a.log", "no"),
                ("keep.log", "yes"),
                ("secret/key", "no"),
                ("secret/allowed", "yes"),
                ("deep/er/x.tmp", "no"),
                ("deep/er/x.txt", "yes"),
            ],
            &[],
        );
        let root = sb.unpack("ignored");
        assert!(root.join("ctx/keep.log").exists(), "{runner:?}");
        assert!(root.join("ctx/deep/er/x.txt").exists(), "{runner:?}");
        assert!(!root.join("ctx/a.log").exists(), "{runner:?}");
        assert!(!root.join("ctx/secret/key").exists(), "{runner:?}");
        // An exception re-includes a file inside an ignored directory.
        assert!(root.join("ctx/secret/allowed").exists(), "{runner:?}");
        assert!(!root.join("ctx/deep/er/x.tmp").exists(), "{runner:?}");
    }
}

#[test]
fn add_local_tar_gz_is_extracted_copy_is_not() {
    for runner in Runner::all() {
        let sb = Sandbox::new(runner);
        sb.import_busybox();
        let ctx = sb.context("ctx", &[("payload/d/file", "inside\n")]);
        let status = Command::new("tar")
            .args(["--owner=0", "--group=0", "-czf"])
            .arg(ctx.join("app.tar.gz"))
            .arg("-C")
            .arg(ctx.join("payload"))
            .arg("d")
            .status()
            .unwrap();
        assert!(status.success());
        sb.write(
            "ctx/Containerfile",
            "FROM busybox\nADD app.tar.gz /opt/\nCOPY app.tar.gz /raw/\n",
        );
        sb.ok(&["bud", "-t", "added", ctx.to_str().unwrap()]);
        let root = sb.unpack("added");
        assert_eq!(read(&root.join("opt/d/file")), "inside\n", "{runner:?}");
        assert!(root.join("raw/app.tar.gz").is_file(), "{runner:?}");
    }
}

/// Serves `body` for every GET on 127.0.0.1 until the listener is dropped
/// with the process; returns the port.
fn serve(body: &'static [u8]) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            // Read the request head up to the blank line.
            while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                if line == "\r\n" || line == "\n" {
                    break;
                }
                line.clear();
            }
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body);
            let _ = stream.flush();
        }
    });
    port
}

#[test]
fn add_http_url_with_checksum() {
    const BODY: &[u8] = b"downloaded bytes\n";
    let port = serve(BODY);
    let good = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(BODY))
    };
    for runner in Runner::all() {
        let sb = Sandbox::new(runner);
        sb.import_busybox();
        let url = format!("http://127.0.0.1:{port}/files/dl.txt");
        sb.build(
            "fetched",
            &format!("FROM busybox\nADD --checksum=sha256:{good} {url} /dl/\n"),
            &[],
            &[],
        );
        let root = sb.unpack("fetched");
        assert_eq!(
            fs::read(root.join("dl/dl.txt")).unwrap(),
            BODY,
            "{runner:?}"
        );

        let bad = "0".repeat(64);
        let ctx = sb.context(
            "bad",
            &[(
                "Containerfile",
                &format!("FROM busybox\nADD --checksum=sha256:{bad} {url} /dl/\n"),
            )],
        );
        let out = sb.fails(&["bud", "-t", "badsum", ctx.to_str().unwrap()]);
        let msg = text(&out);
        assert!(
            msg.contains("checksum") || msg.contains("digest"),
            "{runner:?}: {msg}"
        );
        assert!(sb.rbuild(&["inspect", "badsum"]).status.code() != Some(0));
    }
}

#[test]
fn copy_from_stage_and_image_and_heredoc() {
    for runner in Runner::all() {
        let sb = Sandbox::new(runner);
        sb.import_busybox();
        sb.build(
            "fromed",
            "FROM busybox AS builder\n\
             RUN echo built > /out && chown 1000:1000 /out\n\
             FROM busybox\n\
             COPY --from=builder /out /from-stage\n\
             COPY --from=busybox /etc/group /from-image-group\n\
             COPY <<EOF /here.txt\n\
             hello heredoc\n\
             EOF\n",
            &[],
            &[],
        );
        let root = sb.unpack("fromed");
        assert_eq!(read(&root.join("from-stage")), "built\n", "{runner:?}");
        // COPY --from keeps the source's owners (docker's rule without --chown).
        assert_eq!(owner(&root.join("from-stage")), (1000, 1000), "{runner:?}");
        assert!(read(&root.join("from-image-group")).contains("staff:x:50:app"));
        assert_eq!(
            read(&root.join("here.txt")),
            "hello heredoc\n",
            "{runner:?}"
        );
    }
}

/// Serves each `(path, body)`; any other path is a 404. Every 200 carries
/// a `Last-Modified` of 2015-10-21T07:28:00Z.
fn serve_routes(routes: Vec<(&'static str, Vec<u8>)>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            let _ = reader.read_line(&mut request);
            let mut line = String::new();
            while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                if line == "\r\n" || line == "\n" {
                    break;
                }
                line.clear();
            }
            let path = request.split_whitespace().nth(1).unwrap_or("").to_string();
            let found = routes.iter().find(|(p, _)| *p == path);
            let (status, body): (&str, &[u8]) = match found {
                Some((_, body)) => ("200 OK", body),
                None => ("404 Not Found", b"not found\n"),
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nLast-Modified: Wed, 21 Oct 2015 07:28:00 GMT\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body);
        }
    });
    port
}

#[test]
fn add_url_names_mtime_no_extraction_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("d")).unwrap();
    fs::write(dir.path().join("d/inner"), "inner\n").unwrap();
    let out = Command::new("tar")
        .arg("-czf")
        .arg("-")
        .arg("-C")
        .arg(dir.path())
        .arg("d")
        .output()
        .unwrap();
    assert!(out.status.success());
    let port = serve_routes(vec![
        ("/get/file.txt", b"remote\n".to_vec()),
        ("/get/archive.tar.gz", out.stdout.clone()),
    ]);
    for runner in Runner::all() {
        let sb = Sandbox::new(runner);
        sb.import_busybox();
        let base = format!("http://127.0.0.1:{port}/get");
        sb.build(
            "urls",
            &format!(
                "FROM busybox\n\
                 ADD {base}/file.txt /named\n\
                 ADD {base}/file.txt /into/\n\
                 ADD {base}/archive.tar.gz /tars/\n\
                 ADD --chown=1000:1000 {base}/file.txt /owned/\n"
            ),
            &[],
            &[],
        );
        let root = sb.unpack("urls");
        assert_eq!(read(&root.join("named")), "remote\n", "{runner:?}");
        assert_eq!(read(&root.join("into/file.txt")), "remote\n");
        // A remote archive is not extracted (docker's rule).
        assert_eq!(
            fs::read(root.join("tars/archive.tar.gz")).unwrap(),
            out.stdout
        );
        assert!(!root.join("tars/d").exists(), "{runner:?}");
        assert_eq!(
            owner(&root.join("owned/file.txt")),
            (1000, 1000),
            "{runner:?}"
        );
        // Mode 0600 and the server's Last-Modified as mtime, as docker does.
        assert_eq!(mode(&root.join("named")), 0o600, "{runner:?}");
        let mtime = fs::metadata(root.join("named")).unwrap().mtime();
        assert_eq!(mtime, 1_445_412_480, "{runner:?}");

        let ctx = sb.context(
            "missing",
            &[(
                "Containerfile",
                &format!("FROM busybox\nADD {base}/nope.txt /x\n"),
            )],
        );
        let failed = sb.fails(&["bud", "-t", "m", ctx.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&failed.stderr);
        assert!(
            err.contains("404") && err.contains("nope.txt"),
            "{runner:?}: {err}"
        );
        assert!(err.contains("Containerfile:2"), "{err}");
    }
}

#[test]
fn context_symlinks_never_reach_host_files() {
    let host_secret = "/etc/hostname";
    for runner in Runner::all() {
        let sb = Sandbox::new(runner);
        sb.import_busybox();
        let ctx = sb.context("ctx", &[("d/keep", "k\n")]);
        std::os::unix::fs::symlink(host_secret, ctx.join("abs")).unwrap();
        std::os::unix::fs::symlink("/", ctx.join("rootlink")).unwrap();
        std::os::unix::fs::symlink("../../../../../..", ctx.join("d/up")).unwrap();
        if runner == Runner::Rootless {
            tool("chown", &["-hR", "rbtest:rbtest", ctx.to_str().unwrap()]);
        }
        // Named sources resolve inside the context: none of these exist there.
        for src in ["abs", "rootlink/etc/hostname", "d/up/etc/hostname"] {
            sb.write(
                "ctx/Containerfile",
                format!("FROM busybox\nCOPY {src} /x\n"),
            );
            let out = sb.fails(&["bud", "-t", "escape", ctx.to_str().unwrap()]);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains("not found in the build context"),
                "{runner:?}: {src}: {err}"
            );
        }
        // Copying the whole context copies the links as links.
        sb.write("ctx/Containerfile", "FROM busybox\nCOPY . /all/\n");
        sb.ok(&["bud", "-t", "links", ctx.to_str().unwrap()]);
        let root = sb.unpack("links");
        assert_eq!(
            fs::read_link(root.join("all/abs")).unwrap(),
            Path::new(host_secret)
        );
        assert!(fs::symlink_metadata(root.join("all/rootlink"))
            .unwrap()
            .is_symlink());
        assert!(fs::symlink_metadata(root.join("all/d/up"))
            .unwrap()
            .is_symlink());
    }
}
