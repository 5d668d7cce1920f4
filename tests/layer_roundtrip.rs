//! Layer round trips through the public API: an upper dir with every kind
//! of entry (overlay whiteouts in kernel and fuse-overlayfs form, opaque
//! dirs, hardlinks, xattrs, devices, long names) → tar → extract → tar must
//! give the same bytes; exports are deterministic and readable by gzip,
//! zstd, skopeo and umoci.

use std::ffi::CString;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use rbuild::digest::Digest;
use rbuild::layer::{
    diff_id, export_layer_threads, extract_layer, write_diff_tar, Compression, ExtractOptions,
    TarOptions,
};

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn mknod(path: &Path, mode: u32, major: u32, minor: u32) {
    let c = CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: valid C string.
    let r = unsafe { libc::mknod(c.as_ptr(), mode, libc::makedev(major, minor)) };
    assert_eq!(r, 0, "mknod {path:?}: {}", std::io::Error::last_os_error());
}

fn set_mtime(path: &Path, secs: i64) {
    let c = CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    let ts = libc::timespec {
        tv_sec: secs,
        tv_nsec: 123,
    };
    // SAFETY: valid C string and timespec array.
    let r = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            [ts, ts].as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    assert_eq!(r, 0);
}

/// An overlay-style upper dir exercising every mapping.
fn upper_dir(root: &Path) {
    fs::create_dir_all(root.join("etc/app")).unwrap();
    fs::write(root.join("etc/app/config"), b"key=value\n").unwrap();
    fs::write(root.join("etc/app.conf"), b"x").unwrap(); // sorts after "etc/app" dir contents
    let long_dir = root.join("l".repeat(90)).join("m".repeat(90));
    fs::create_dir_all(&long_dir).unwrap();
    fs::write(long_dir.join("n".repeat(120)), vec![7u8; 70_000]).unwrap();
    fs::write(root.join("bin"), b"#!/bin/sh\n").unwrap();
    fs::set_permissions(root.join("bin"), fs::Permissions::from_mode(0o4755)).unwrap();
    fs::hard_link(root.join("bin"), root.join("bin-link")).unwrap();
    fs::hard_link(root.join("bin"), root.join("etc/bin-link2")).unwrap();
    symlink("../etc/app/config", root.join("etc/link")).unwrap();
    symlink("t".repeat(200), root.join("longlink")).unwrap();
    xattr::set(root.join("bin"), "user.purpose", b"test\0bin").unwrap();
    xattr::set(root.join("bin"), "user.overlay.origin", b"dropped").unwrap();
    xattr::set(root.join("etc"), "user.dir", b"1").unwrap();
    // Kernel overlay whiteouts: 0/0 char devices, all one inode.
    if is_root() {
        mknod(&root.join("gone"), libc::S_IFCHR, 0, 0);
        fs::hard_link(root.join("gone"), root.join("etc/gone-too")).unwrap();
        mknod(&root.join("null"), libc::S_IFCHR | 0o666, 1, 3);
        std::os::unix::fs::lchown(root.join("etc/app/config"), Some(1000), Some(1001)).unwrap();
        // File capabilities (v2): permitted = CAP_DAC_OVERRIDE | CAP_FOWNER =
        // 0x0a, a '\n' byte inside a PAX record.
        let mut cap = 0x0200_0001u32.to_le_bytes().to_vec();
        cap.extend_from_slice(&[0x0a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        fs::write(root.join("ping"), b"elf").unwrap();
        xattr::set(root.join("ping"), "security.capability", &cap).unwrap();
    }
    // fuse-overlayfs whiteout form.
    fs::write(root.join("etc/.wh.removed"), b"").unwrap();
    // Opaque dirs: overlay xattr and fuse-overlayfs marker file.
    fs::create_dir(root.join("opaque")).unwrap();
    xattr::set(root.join("opaque"), "user.overlay.opaque", b"y").unwrap();
    fs::write(root.join("opaque/kept"), b"k").unwrap();
    fs::create_dir(root.join("fuse-opaque")).unwrap();
    fs::write(root.join("fuse-opaque/.wh..wh..opq"), b"").unwrap();
    let fifo = CString::new(root.join("fifo").as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: valid C string.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o640) }, 0);
    std::os::unix::net::UnixListener::bind(root.join("sock")).unwrap();
    for entry in walkdir::WalkDir::new(root).contents_first(true) {
        let entry = entry.unwrap();
        if entry.path() != root.join("sock") {
            set_mtime(entry.path(), 1_600_000_000);
        }
    }
}

fn tar_of(dir: &Path, opts: &TarOptions) -> Vec<u8> {
    let mut out = Vec::new();
    write_diff_tar(dir, opts, &mut out).unwrap();
    out
}

fn list(tar_bytes: &[u8]) -> Vec<(String, tar::EntryType, Option<String>)> {
    let mut ar = tar::Archive::new(tar_bytes);
    ar.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                String::from_utf8(e.path_bytes().into_owned()).unwrap(),
                e.header().entry_type(),
                e.link_name_bytes()
                    .map(|l| String::from_utf8(l.into_owned()).unwrap()),
            )
        })
        .collect()
}

#[test]
fn diff_maps_overlay_to_oci_and_round_trips_bit_for_bit() {
    let tmp = tempfile::tempdir().unwrap();
    let upper = tmp.path().join("upper");
    fs::create_dir(&upper).unwrap();
    upper_dir(&upper);
    let opts = TarOptions::default();
    let first = tar_of(&upper, &opts);
    let entries = list(&first);
    let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();

    // Depth-first, byte order per directory; the socket is left out.
    assert!(!names.iter().any(|n| n.contains("sock")), "{names:?}");
    let pos = |n: &str| {
        names
            .iter()
            .position(|x| *x == n)
            .unwrap_or_else(|| panic!("{n} missing in {names:?}"))
    };
    assert!(pos("etc/") < pos("etc/app/config") && pos("etc/app/config") < pos("etc/app.conf"));
    // Opaque dirs: the marker right after the directory; the fuse marker file is not doubled.
    assert_eq!(pos("opaque/.wh..wh..opq"), pos("opaque/") + 1);
    assert_eq!(pos("fuse-opaque/.wh..wh..opq"), pos("fuse-opaque/") + 1);
    assert_eq!(
        names.iter().filter(|n| n.ends_with(".wh..wh..opq")).count(),
        2
    );
    assert!(names.contains(&"etc/.wh.removed"));
    // Hardlinks: first name in walk order is the file.
    let link = |n: &str| entries.iter().find(|e| e.0 == n).unwrap().clone();
    assert_eq!(link("bin").1, tar::EntryType::Regular);
    assert_eq!(link("bin-link").1, tar::EntryType::Link);
    assert_eq!(link("bin-link").2.as_deref(), Some("bin"));
    assert_eq!(link("etc/bin-link2").2.as_deref(), Some("bin"));
    if is_root() {
        // Whiteouts sharing one inode are whiteouts, not hardlinks.
        assert_eq!(link(".wh.gone").1, tar::EntryType::Regular);
        assert_eq!(link("etc/.wh.gone-too").1, tar::EntryType::Regular);
        assert_eq!(link("null").1, tar::EntryType::Char);
    }

    // Extract: whiteouts and opaque dirs in overlay form.
    let dest = tmp.path().join("extracted");
    let stats = extract_layer(&first[..], &dest, &ExtractOptions::default()).unwrap();
    assert_eq!(stats.diff_id, Digest::of(&first));
    assert_eq!(stats.diff_size, first.len() as u64);
    let removed = fs::symlink_metadata(dest.join("etc/removed")).unwrap();
    assert!(std::os::unix::fs::FileTypeExt::is_char_device(
        &removed.file_type()
    ));
    assert_eq!(removed.rdev(), 0);
    assert_eq!(
        xattr::get(dest.join("opaque"), "user.overlay.opaque")
            .unwrap()
            .as_deref(),
        Some(&b"y"[..])
    );
    assert_eq!(
        xattr::get(dest.join("fuse-opaque"), "user.overlay.opaque")
            .unwrap()
            .as_deref(),
        Some(&b"y"[..])
    );
    assert!(!dest.join("fuse-opaque/.wh..wh..opq").exists());
    assert_eq!(
        xattr::get(dest.join("bin"), "user.purpose")
            .unwrap()
            .as_deref(),
        Some(&b"test\0bin"[..])
    );
    assert_eq!(
        xattr::get(dest.join("bin"), "user.overlay.origin").unwrap(),
        None
    );
    let bin = fs::metadata(dest.join("bin")).unwrap();
    assert_eq!(bin.mode() & 0o7777, 0o4755);
    assert_eq!(bin.nlink(), 3);
    assert_eq!(
        bin.ino(),
        fs::metadata(dest.join("etc/bin-link2")).unwrap().ino()
    );
    assert_eq!(bin.mtime(), 1_600_000_000);
    assert_eq!(
        fs::read_link(dest.join("etc/link")).unwrap(),
        Path::new("../etc/app/config")
    );
    if is_root() {
        let cfg = fs::metadata(dest.join("etc/app/config")).unwrap();
        assert_eq!((cfg.uid(), cfg.gid()), (1000, 1001));
        let cap = xattr::get(dest.join("ping"), "security.capability").unwrap();
        assert_eq!(
            cap,
            xattr::get(upper.join("ping"), "security.capability").unwrap()
        );
        assert_eq!(stats.whiteouts, 3);
    }
    assert_eq!(
        fs::metadata(dest.join("etc")).unwrap().mtime(),
        1_600_000_000
    );

    // And back: the same bytes.
    let second = tar_of(&dest, &opts);
    if first != second {
        let (a, b) = (list(&first), list(&second));
        panic!("round trip differs:\n{a:#?}\n{b:#?}");
    }
}

#[test]
fn diff_id_is_deterministic_and_clamped() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    fs::create_dir(&a).unwrap();
    upper_dir(&a);
    let clamp = TarOptions {
        mtime_clamp: Some(1_000_000),
    };
    let (d1, n1) = diff_id(&a, &clamp).unwrap();
    let bytes = tar_of(&a, &clamp);
    assert_eq!(d1, Digest::of(&bytes));
    assert_eq!(n1, bytes.len() as u64);
    let mut ar = tar::Archive::new(&bytes[..]);
    for e in ar.entries().unwrap() {
        assert!(e.unwrap().header().mtime().unwrap() <= 1_000_000);
    }
    // Touching a file changes nothing under the clamp; without it, it does.
    let (plain1, _) = diff_id(&a, &TarOptions::default()).unwrap();
    set_mtime(&a.join("bin"), 1_700_000_000);
    assert_eq!(diff_id(&a, &clamp).unwrap().0, d1);
    assert_ne!(diff_id(&a, &TarOptions::default()).unwrap().0, plain1);
}

fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn exports_are_thread_independent_and_tools_read_them() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("layer");
    fs::create_dir(&dir).unwrap();
    upper_dir(&dir);
    // Several compression blocks of mixed data.
    let mut x: u64 = 1;
    let noise: Vec<u8> = (0..3_500_000)
        .map(|i| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            if i % 3 == 0 {
                b'a'
            } else {
                (x >> 56) as u8
            }
        })
        .collect();
    fs::write(dir.join("noise"), &noise).unwrap();
    let opts = TarOptions {
        mtime_clamp: Some(1_650_000_000),
    };
    let tar_bytes = tar_of(&dir, &opts);
    for (compression, tool) in [
        (Compression::Gzip, "gzip"),
        (Compression::Zstd, "zstd"),
        (Compression::None, "cat"),
    ] {
        let mut one = Vec::new();
        let e1 = export_layer_threads(&dir, &opts, compression, 1, &mut one).unwrap();
        let mut four = Vec::new();
        let e4 = export_layer_threads(&dir, &opts, compression, 4, &mut four).unwrap();
        assert_eq!(
            one, four,
            "{compression} output depends on the thread count"
        );
        assert_eq!(e1, e4);
        assert_eq!(e1.diff_id, Digest::of(&tar_bytes));
        assert_eq!(e1.diff_size, tar_bytes.len() as u64);
        assert_eq!(e1.blob_digest, Digest::of(&one));
        assert_eq!(e1.blob_size, one.len() as u64);
        let file = tmp.path().join(format!("blob.{compression}"));
        fs::write(&file, &one).unwrap();
        let back = if tool == "cat" {
            run(Command::new("cat").arg(&file))
        } else {
            run(Command::new(tool).arg("-dc").arg(&file))
        };
        assert!(back == tar_bytes, "{tool} -d does not give the tar back");
        // Extraction sniffs the compression and recomputes both digests.
        let dest = tmp.path().join(format!("x-{compression}"));
        let st = extract_layer(
            fs::File::open(&file).unwrap(),
            &dest,
            &ExtractOptions::default(),
        )
        .unwrap();
        assert_eq!((st.diff_id, st.blob_digest), (e1.diff_id, e1.blob_digest));
    }
}

/// Writes an OCI layout holding one image whose only layer is `blob`.
fn oci_layout(root: &Path, blob: &[u8], exported: &rbuild::layer::Exported) {
    let blobs = root.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    fs::write(
        root.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    fs::write(blobs.join(exported.blob_digest.hex()), blob).unwrap();
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [exported.diff_id.to_string()]},
    });
    let config = serde_json::to_vec(&config).unwrap();
    let config_digest = Digest::of(&config);
    fs::write(blobs.join(config_digest.hex()), &config).unwrap();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest.to_string(), "size": config.len()},
        "layers": [{"mediaType": exported.compression.oci_media_type(), "digest": exported.blob_digest.to_string(), "size": exported.blob_size}],
    });
    let manifest = serde_json::to_vec(&manifest).unwrap();
    let manifest_digest = Digest::of(&manifest);
    fs::write(blobs.join(manifest_digest.hex()), &manifest).unwrap();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest.to_string(), "size": manifest.len(), "annotations": {"org.opencontainers.image.ref.name": "t"}}],
    });
    fs::write(root.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}

#[test]
fn umoci_unpacks_gzip_and_skopeo_decompresses_zstd() {
    if !is_root() {
        eprintln!("skipped: umoci unpack without --rootless needs root");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("layer");
    fs::create_dir(&dir).unwrap();
    fs::create_dir_all(dir.join("usr/bin")).unwrap();
    fs::write(dir.join("usr/bin/tool"), b"#!/bin/sh\necho hi\n").unwrap();
    fs::set_permissions(dir.join("usr/bin/tool"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::hard_link(dir.join("usr/bin/tool"), dir.join("usr/bin/tool2")).unwrap();
    std::os::unix::fs::lchown(dir.join("usr/bin/tool"), Some(1234), Some(4321)).unwrap();
    symlink("bin/tool", dir.join("usr/tool")).unwrap();
    fs::write(dir.join("big"), vec![42u8; 2_500_000]).unwrap();
    let opts = TarOptions::default();
    let tar_bytes = tar_of(&dir, &opts);

    // gzip → umoci unpack.
    let mut gz = Vec::new();
    let exported = export_layer_threads(&dir, &opts, Compression::Gzip, 2, &mut gz).unwrap();
    assert_eq!(exported.diff_id, Digest::of(&tar_bytes));
    let layout = tmp.path().join("oci-gz");
    oci_layout(&layout, &gz, &exported);
    let bundle = tmp.path().join("bundle");
    run(Command::new("umoci")
        .arg("unpack")
        .arg("--image")
        .arg(format!("{}:t", layout.display()))
        .arg(&bundle));
    let rootfs = bundle.join("rootfs");
    let tool = fs::metadata(rootfs.join("usr/bin/tool")).unwrap();
    assert_eq!(
        (tool.uid(), tool.gid(), tool.mode() & 0o7777, tool.nlink()),
        (1234, 4321, 0o755, 2)
    );
    assert_eq!(fs::read(rootfs.join("big")).unwrap(), vec![42u8; 2_500_000]);
    assert_eq!(
        fs::read_link(rootfs.join("usr/tool")).unwrap(),
        Path::new("bin/tool")
    );

    // zstd and gzip → skopeo (Go's decompressors) copy --dest-decompress
    // gives back the tar. A random file makes gzip store some segments raw.
    let mut x: u64 = 99;
    let random: Vec<u8> = (0..300_000)
        .map(|_| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            (x >> 56) as u8
        })
        .collect();
    fs::write(dir.join("random"), &random).unwrap();
    let tar_bytes = tar_of(&dir, &opts);
    for compression in [Compression::Zstd, Compression::Gzip] {
        let mut blob = Vec::new();
        let exported = export_layer_threads(&dir, &opts, compression, 2, &mut blob).unwrap();
        let layout = tmp.path().join(format!("oci-{compression}"));
        oci_layout(&layout, &blob, &exported);
        let out = tmp.path().join(format!("dir-out-{compression}"));
        run(Command::new("skopeo")
            .args(["copy", "--dest-decompress"])
            .arg(format!("oci:{}:t", layout.display()))
            .arg(format!("dir:{}", out.display())));
        let mut found = false;
        for entry in fs::read_dir(&out).unwrap() {
            let mut bytes = Vec::new();
            fs::File::open(entry.unwrap().path())
                .unwrap()
                .read_to_end(&mut bytes)
                .unwrap();
            found |= bytes == tar_bytes;
        }
        assert!(
            found,
            "skopeo did not decompress the {compression} layer to the original tar"
        );
    }
}

/// Inside a user namespace (as a rootless build runs), whiteouts can be
/// made but device nodes cannot: devices are skipped, whiteouts kept.
#[test]
fn extraction_in_a_user_namespace_keeps_whiteouts_and_skips_devices() {
    if std::env::var_os("RBUILD_LAYER_USERNS_CHILD").is_some() {
        let src = std::env::var_os("RBUILD_LAYER_SRC").unwrap();
        let dest = std::env::var_os("RBUILD_LAYER_DEST").unwrap();
        let stats = extract_layer(
            fs::File::open(src).unwrap(),
            Path::new(&dest),
            &ExtractOptions::default(),
        )
        .unwrap();
        assert_eq!((stats.whiteouts, stats.devices_skipped), (1, 1));
        return;
    }
    if !is_root() {
        eprintln!("skipped: needs root to build the device-node fixture");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("layer");
    fs::create_dir(&dir).unwrap();
    mknod(&dir.join("null"), libc::S_IFCHR | 0o666, 1, 3);
    mknod(&dir.join("deleted"), libc::S_IFCHR, 0, 0);
    fs::write(dir.join("file"), b"x").unwrap();
    let src = tmp.path().join("layer.tar");
    fs::write(&src, tar_of(&dir, &TarOptions::default())).unwrap();
    let dest = tmp.path().join("dest");
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("unshare")
        .args(["--user", "--map-root-user", "--"])
        .arg(exe)
        .args([
            "--exact",
            "extraction_in_a_user_namespace_keeps_whiteouts_and_skips_devices",
            "--nocapture",
        ])
        .env("RBUILD_LAYER_USERNS_CHILD", "1")
        .env("RBUILD_LAYER_SRC", &src)
        .env("RBUILD_LAYER_DEST", &dest)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 passed"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let wh = fs::symlink_metadata(dest.join("deleted")).unwrap();
    assert!(std::os::unix::fs::FileTypeExt::is_char_device(&wh.file_type()) && wh.rdev() == 0);
    assert!(!dest.join("null").exists());
    assert_eq!(fs::read(dest.join("file")).unwrap(), b"x");
}

/// A plain unprivileged user (no user namespace, single-id rootless mode)
/// can still extract a layer: Linux >= 5.8 lets anyone make the 0/0
/// whiteout device, device nodes are skipped with a warning, and owners are
/// left alone when not preserved.
#[test]
fn unprivileged_extraction_makes_whiteouts_and_skips_devices() {
    if std::env::var_os("RBUILD_LAYER_UNPRIV_CHILD").is_some() {
        let src = std::env::var_os("RBUILD_LAYER_SRC").unwrap();
        let dest = std::env::var_os("RBUILD_LAYER_DEST").unwrap();
        let stats = extract_layer(
            fs::File::open(src).unwrap(),
            Path::new(&dest),
            &ExtractOptions {
                preserve_owners: false,
            },
        )
        .unwrap();
        assert_eq!((stats.whiteouts, stats.devices_skipped), (1, 1));
        // With owners preserved, the foreign owner is a clear error.
        let err = extract_layer(
            fs::File::open(std::env::var_os("RBUILD_LAYER_SRC").unwrap()).unwrap(),
            &Path::new(&dest).join("again"),
            &ExtractOptions::default(),
        )
        .unwrap_err();
        assert!(
            matches!(err, rbuild::layer::LayerError::Chown { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("/etc/subuid"), "{err}");
        return;
    }
    let has_user = Command::new("id")
        .arg("rbtest")
        .output()
        .is_ok_and(|o| o.status.success());
    if !is_root() || !has_user {
        eprintln!("skipped: needs root and the rbtest user");
        return;
    }
    // A world-readable copy of this test binary, run as rbtest.
    let tmp = tempfile::tempdir().unwrap();
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o777)).unwrap();
    let exe = tmp.path().join("tests");
    fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
    fs::set_permissions(&exe, fs::Permissions::from_mode(0o755)).unwrap();
    let layer = tmp.path().join("layer");
    fs::create_dir(&layer).unwrap();
    mknod(&layer.join("deleted"), libc::S_IFCHR, 0, 0);
    mknod(&layer.join("null"), libc::S_IFCHR | 0o666, 1, 3);
    fs::write(layer.join("owned"), b"x").unwrap();
    std::os::unix::fs::lchown(layer.join("owned"), Some(4242), Some(4242)).unwrap();
    let src = tmp.path().join("layer.tar");
    fs::write(&src, tar_of(&layer, &TarOptions::default())).unwrap();
    fs::set_permissions(&src, fs::Permissions::from_mode(0o644)).unwrap();
    let dest = tmp.path().join("dest");
    let out = Command::new("runuser")
        .args(["-u", "rbtest", "--"])
        .arg(&exe)
        .args([
            "--exact",
            "unprivileged_extraction_makes_whiteouts_and_skips_devices",
            "--nocapture",
        ])
        .env("RBUILD_LAYER_UNPRIV_CHILD", "1")
        .env("RBUILD_LAYER_SRC", &src)
        .env("RBUILD_LAYER_DEST", &dest)
        .env("HOME", tmp.path())
        .env("XDG_RUNTIME_DIR", tmp.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let wh = fs::symlink_metadata(dest.join("deleted")).unwrap();
    assert!(std::os::unix::fs::FileTypeExt::is_char_device(&wh.file_type()) && wh.rdev() == 0);
    assert!(!dest.join("null").exists());
}
